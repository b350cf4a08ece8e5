package dev.tfmm;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Paths;
import java.util.List;

/**
 * Test driver: {@code java dev.tfmm.EncodeTexts vocab.json texts.txt} prints one line of ids per text.
 * Texts come one per line with backslash escapes for newline, tab, carriage return and backslash.
 */
public final class EncodeTexts {
  public static void main(String[] args) throws IOException {
    TextTokenizer tokenizer = TextTokenizer.fromJson(
        new String(Files.readAllBytes(Paths.get(args[0])), StandardCharsets.UTF_8));
    List<String> lines = Files.readAllLines(Paths.get(args[1]), StandardCharsets.UTF_8);
    StringBuilder out = new StringBuilder();
    for (String line : lines) {
      int[] ids = tokenizer.encode(unescape(line));
      for (int i = 0; i < ids.length; i++) {
        out.append(i == 0 ? "" : " ").append(ids[i]);
      }
      out.append('\n');
    }
    System.out.print(out);
  }

  private static String unescape(String line) {
    StringBuilder out = new StringBuilder();
    for (int i = 0; i < line.length(); i++) {
      char c = line.charAt(i);
      if (c == '\\' && i + 1 < line.length()) {
        char e = line.charAt(++i);
        out.append(e == 'n' ? '\n' : e == 't' ? '\t' : e == 'r' ? '\r' : e);
      } else {
        out.append(c);
      }
    }
    return out.toString();
  }
}
