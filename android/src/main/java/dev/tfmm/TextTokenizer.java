package dev.tfmm;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Java reference of {@code tfmm.data.TextTokenizer}: the token ids the model was trained with.
 *
 * <p>Reads the {@code <model>.vocab.json} file that {@code tfmm export} writes next to the
 * {@code .tflite} file. Ids: 0 = padding, 1 = unknown, then the vocabulary in file order.
 * Like TensorFlow's {@code TextVectorization} behind the Python tokenizer: lower-casing touches
 * ASCII letters only; {@code "character"} splits into Unicode code points; {@code "whitespace"}
 * splits on runs of ASCII whitespace; texts are padded with 0 or cut to {@code sequenceLength}.
 * Plain Java (no Android classes), so it also runs on a desktop JVM; the tfmm tests compile it
 * with {@code javac} and check it against Python on 1,000 texts.
 *
 * <pre>{@code
 * TextTokenizer tokenizer = TextTokenizer.fromJson(jsonString);
 * int[] ids = tokenizer.encode("seven");  // feed as the int32 "text" input, shape [1, ids.length]
 * }</pre>
 */
public final class TextTokenizer {
  private final Map<String, Integer> ids = new HashMap<>();
  private final int sequenceLength;
  private final boolean characters;
  private final boolean lowercase;

  /**
   * @param vocabulary tokens without padding / unknown, most frequent first (ids 2, 3, ...)
   * @param sequenceLength ids per text
   * @param split {@code "character"} or {@code "whitespace"}
   * @param lowercase lower-case ASCII letters first
   */
  public TextTokenizer(List<String> vocabulary, int sequenceLength, String split, boolean lowercase) {
    if (sequenceLength <= 0) {
      throw new IllegalArgumentException("sequenceLength must be positive, got " + sequenceLength);
    }
    if (!"character".equals(split) && !"whitespace".equals(split)) {
      throw new IllegalArgumentException("split must be 'character' or 'whitespace', got " + split);
    }
    for (int i = 0; i < vocabulary.size(); i++) {
      ids.put(vocabulary.get(i), i + 2);
    }
    this.sequenceLength = sequenceLength;
    this.characters = "character".equals(split);
    this.lowercase = lowercase;
  }

  /** Builds a tokenizer from the text of a {@code .vocab.json} file. */
  @SuppressWarnings("unchecked")
  public static TextTokenizer fromJson(String json) {
    Object parsed = new Json(json).value();
    if (!(parsed instanceof Map)) {
      throw new IllegalArgumentException("not a tfmm tokenizer file: the top level is not an object");
    }
    Map<String, Object> map = (Map<String, Object>) parsed;
    Object format = map.get("format");
    if (format == null || !String.valueOf(format).startsWith("tfmm.TextTokenizer/")) {
      throw new IllegalArgumentException("not a tfmm tokenizer file: format is " + format);
    }
    List<String> vocabulary = new ArrayList<>();
    for (Object token : (List<Object>) map.get("vocabulary")) {
      vocabulary.add((String) token);
    }
    return new TextTokenizer(vocabulary, ((Number) map.get("sequence_length")).intValue(),
        (String) map.get("split"), Boolean.TRUE.equals(map.get("lowercase")));
  }

  public int sequenceLength() {
    return sequenceLength;
  }

  /** The {@code sequenceLength} ids of one text. */
  public int[] encode(String text) {
    String standardized = lowercase ? asciiLower(text) : text;
    List<String> tokens = characters ? codePoints(standardized) : whitespaceTokens(standardized);
    int[] out = new int[sequenceLength];
    for (int i = 0; i < Math.min(tokens.size(), sequenceLength); i++) {
      Integer id = ids.get(tokens.get(i));
      out[i] = id == null ? 1 : id;
    }
    return out;
  }

  private static String asciiLower(String text) {
    StringBuilder out = new StringBuilder(text.length());
    for (int i = 0; i < text.length(); i++) {
      char c = text.charAt(i);
      out.append(c >= 'A' && c <= 'Z' ? (char) (c + 32) : c);
    }
    return out.toString();
  }

  private static List<String> codePoints(String text) {
    List<String> out = new ArrayList<>();
    text.codePoints().forEach(cp -> out.add(new String(Character.toChars(cp))));
    return out;
  }

  private static boolean asciiSpace(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\u000B' || c == '\f' || c == '\r';
  }

  private static List<String> whitespaceTokens(String text) {
    List<String> out = new ArrayList<>();
    int start = -1;
    for (int i = 0; i <= text.length(); i++) {
      boolean space = i == text.length() || asciiSpace(text.charAt(i));
      if (space && start >= 0) {
        out.add(text.substring(start, i));
        start = -1;
      } else if (!space && start < 0) {
        start = i;
      }
    }
    return out;
  }

  /** A small JSON reader for the tokenizer file: objects, arrays, strings, numbers, booleans, null. */
  private static final class Json {
    private final String s;
    private int i;

    Json(String s) {
      this.s = s;
    }

    Object value() {
      skip();
      if (i >= s.length()) {
        throw error("unexpected end");
      }
      char c = s.charAt(i);
      if (c == '{') {
        Map<String, Object> map = new LinkedHashMap<>();
        i++;
        skip();
        if (s.charAt(i) == '}') {
          i++;
          return map;
        }
        while (true) {
          skip();
          String key = string();
          skip();
          expect(':');
          map.put(key, value());
          skip();
          if (s.charAt(i) == ',') {
            i++;
          } else {
            expect('}');
            return map;
          }
        }
      }
      if (c == '[') {
        List<Object> list = new ArrayList<>();
        i++;
        skip();
        if (s.charAt(i) == ']') {
          i++;
          return list;
        }
        while (true) {
          list.add(value());
          skip();
          if (s.charAt(i) == ',') {
            i++;
          } else {
            expect(']');
            return list;
          }
        }
      }
      if (c == '"') {
        return string();
      }
      if (s.startsWith("true", i)) {
        i += 4;
        return Boolean.TRUE;
      }
      if (s.startsWith("false", i)) {
        i += 5;
        return Boolean.FALSE;
      }
      if (s.startsWith("null", i)) {
        i += 4;
        return null;
      }
      int start = i;
      while (i < s.length() && "+-0123456789.eE".indexOf(s.charAt(i)) >= 0) {
        i++;
      }
      if (start == i) {
        throw error("unexpected character '" + c + "'");
      }
      return Double.parseDouble(s.substring(start, i));
    }

    private String string() {
      expect('"');
      StringBuilder out = new StringBuilder();
      while (true) {
        char c = s.charAt(i++);
        if (c == '"') {
          return out.toString();
        }
        if (c != '\\') {
          out.append(c);
          continue;
        }
        char e = s.charAt(i++);
        switch (e) {
          case 'n': out.append('\n'); break;
          case 't': out.append('\t'); break;
          case 'r': out.append('\r'); break;
          case 'b': out.append('\b'); break;
          case 'f': out.append('\f'); break;
          case 'u': out.append((char) Integer.parseInt(s.substring(i, i + 4), 16)); i += 4; break;
          default: out.append(e);
        }
      }
    }

    private void skip() {
      while (i < s.length() && Character.isWhitespace(s.charAt(i))) {
        i++;
      }
    }

    private void expect(char c) {
      if (i >= s.length() || s.charAt(i) != c) {
        throw error("expected '" + c + "'");
      }
      i++;
    }

    private IllegalArgumentException error(String what) {
      return new IllegalArgumentException("tokenizer JSON: " + what + " at character " + i);
    }
  }
}
