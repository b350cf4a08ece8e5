"""Real files for the reliability tests: PNG images, WAV clips and CSV / JSONL manifests."""

import csv
import json

import numpy as np
import tensorflow as tf

COLUMNS = ("image", "text", "audio", "label")
WORDS = ("zero", "one", "two", "three")


def write_png(path, pixels):
    tf.io.write_file(str(path), tf.io.encode_png(tf.constant(pixels, dtype=tf.uint8)))


def write_wav(path, samples, rate=8000):
    tf.io.write_file(str(path), tf.audio.encode_wav(tf.constant(samples[:, None], tf.float32), rate))


def make_files(folder, n=48, classes=4, seed=0, size=16, samples=512):
    """`n` learnable records: the class sets the image's bright quadrant, the word and the tone."""
    rng = np.random.default_rng(seed)
    records = []
    for i in range(n):
        label = i % classes
        image = rng.integers(0, 40, size=(size, size, 1))
        q = size // 2
        image[(label // 2) * q:(label // 2 + 1) * q, (label % 2) * q:(label % 2 + 1) * q] += 200
        write_png(folder / f"img{i}.png", image)
        tone = 0.5 * np.sin(np.arange(samples) * (label + 1) * 0.2) + rng.normal(0, 0.05, samples)
        write_wav(folder / f"clip{i}.wav", tone.astype("float32"))
        records.append({"image": f"img{i}.png", "text": WORDS[label], "audio": f"clip{i}.wav", "label": label})
    return records


def write_csv(path, records, columns=COLUMNS, encoding="utf-8"):
    with open(path, "w", newline="", encoding=encoding) as f:
        writer = csv.DictWriter(f, fieldnames=list(columns), extrasaction="ignore")
        writer.writeheader()
        writer.writerows(records)
    return str(path)


def write_jsonl(path, records):
    with open(path, "w", encoding="utf-8") as f:
        for r in records:
            f.write(json.dumps(r) + "\n")
    return str(path)
