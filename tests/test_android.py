"""The Java reference tokenizer under android/ gives the Python tokenizer's ids (compiled with javac)."""

import os
import shutil
import subprocess

import numpy as np
import pytest

from tfmm.data import TextTokenizer, av_digits_tokenizer

ANDROID = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "android")
SOURCES = [os.path.join(ANDROID, "src", "main", "java", "dev", "tfmm", "TextTokenizer.java"),
           os.path.join(ANDROID, "src", "test", "java", "dev", "tfmm", "EncodeTexts.java")]
WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "Seven", "NINE")
ODD = ("ä", "Ä", "É", "é", "ß", "\u00a0", "😀", "\t", "\n", "  ", "\r", "\\", "x\u0301", "Ω", "\u000b")


def _texts(n, seed):
    """`n` texts: number words with typos, case, non-ASCII letters, an emoji, ASCII and non-ASCII spaces."""
    rng = np.random.default_rng(seed)
    texts = []
    for _ in range(n):
        parts = []
        for _ in range(int(rng.integers(0, 5))):
            word = list(WORDS[int(rng.integers(len(WORDS)))])
            if rng.random() < 0.4 and word:
                word[int(rng.integers(len(word)))] = ODD[int(rng.integers(len(ODD)))]
            parts.append("".join(word))
        texts.append((" " if rng.random() < 0.7 else "\t").join(parts) + (ODD[int(rng.integers(len(ODD)))]
                                                                         if rng.random() < 0.3 else ""))
    return texts


def _escape(text):
    return text.replace("\\", "\\\\").replace("\n", "\\n").replace("\t", "\\t").replace("\r", "\\r")


@pytest.fixture(scope="module")
def java(tmp_path_factory):
    javac, java_bin = shutil.which("javac"), shutil.which("java")
    if not (javac and java_bin):
        pytest.fail("javac / java not found: .ci/run installs a JDK (default-jdk-headless) when it is missing")
    classes = tmp_path_factory.mktemp("classes")
    proc = subprocess.run([javac, "-Xlint:all", "-Werror", "-d", str(classes), *SOURCES], capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return java_bin, classes


@pytest.mark.parametrize("make", [
    lambda texts: av_digits_tokenizer(),
    lambda texts: TextTokenizer.adapt(texts[:5], sequence_length=24, split="character"),
    lambda texts: TextTokenizer.adapt(texts[:300], sequence_length=6, split="whitespace"),
    lambda texts: TextTokenizer.adapt(texts[:300], sequence_length=10, split="whitespace", lowercase=False),
], ids=["av-digits", "characters", "words", "words-cased"])
def test_java_tokenizer_gives_the_python_ids_on_1000_texts(make, java, tmp_path):
    java_bin, classes = java
    texts = _texts(1000, seed=1)
    tokenizer = make(_texts(300, seed=0))
    tokenizer.save(str(tmp_path / "model.vocab.json"))
    (tmp_path / "texts.txt").write_text("\n".join(_escape(t) for t in texts) + "\n", encoding="utf-8")
    proc = subprocess.run([java_bin, "-cp", str(classes), "dev.tfmm.EncodeTexts", str(tmp_path / "model.vocab.json"),
                           str(tmp_path / "texts.txt")], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    got = np.array([[int(v) for v in line.split()] for line in proc.stdout.splitlines()], dtype="int32")
    want = tokenizer(texts)
    assert got.shape == want.shape == (1000, tokenizer.sequence_length)
    mismatched = [(texts[i], got[i].tolist(), want[i].tolist()) for i in np.flatnonzero((got != want).any(axis=1))]
    assert not mismatched, mismatched[:3]
    assert (want == 1).any() and (want > 1).any() and (want == 0).any()  # unknowns, hits and padding all seen
