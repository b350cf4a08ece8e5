"""Measure AV-digits difficulty: fused vs single-modality test accuracy.

    python scripts/measure_av_digits.py [--epochs 10] [--preset small]

Trains the preset once on all three modalities and once on each modality alone
(same epochs, seed, optimizer), evaluates on the test split, and writes
`tfmm/data/av_digits_measured.json` and the figures table of `tfmm/data/AV_DIGITS.md`.
"""

import argparse
import datetime
import json
import os
import platform
import sys
import time

import tfmm  # noqa: F401  (before TensorFlow)

import numpy as np
import tensorflow as tf

from tfmm._keras import keras
from tfmm._files import atomic_write_text
from tfmm.data import av_digits_tokenizer, from_arrays, load_av_digits
from tfmm.models import build_multimodal_model, compile_model, get_preset

HERE = os.path.dirname(os.path.abspath(__file__))
DATA_DIR = os.path.join(HERE, "..", "tfmm", "data")
RUNS = (("image", "text", "audio"), ("image",), ("text",), ("audio",))


def train_and_test(modalities, preset, epochs, seed):
    keras.utils.set_random_seed(seed)
    config = get_preset(preset, modalities=modalities, vocab_size=av_digits_tokenizer().vocab_size)
    model = compile_model(build_multimodal_model(config))
    x_train, y_train = load_av_digits("train", modalities=modalities)
    x_val, y_val = load_av_digits("validation", modalities=modalities)
    x_test, y_test = load_av_digits("test", modalities=modalities)
    train = from_arrays(x_train, y_train, batch_size=32, shuffle=True, seed=seed)
    start = time.perf_counter()
    history = model.fit(
        train, validation_data=from_arrays(x_val, y_val, batch_size=256), epochs=epochs, verbose=2
    )
    seconds = time.perf_counter() - start
    probs = model.predict(x_test, batch_size=256, verbose=0)
    return {
        "modalities": list(modalities),
        "test_accuracy": float(np.mean(probs.argmax(-1) == y_test)),
        "best_validation_accuracy": float(max(history.history["val_accuracy"])),
        "train_seconds": round(seconds, 1),
        "params": int(model.count_params()),
    }


def write_card_table(results, command):
    card = os.path.join(DATA_DIR, "AV_DIGITS.md")
    fused = results["runs"][0]["test_accuracy"]
    lines = [
        "<!-- measured:start (written by scripts/measure_av_digits.py) -->",
        f"Measured {results['date']} with `{command}` "
        f"({results['preset']} preset, {results['epochs']} epochs, seed {results['seed']}, "
        f"TF {results['tensorflow']}, {results['cores']} cores):",
        "",
        "| model | test accuracy | vs fused |",
        "|---|---|---|",
    ]
    for run in results["runs"]:
        name = " + ".join(run["modalities"])
        delta = run["test_accuracy"] - fused
        lines.append(
            f"| {name} | {100 * run['test_accuracy']:.1f}% | "
            f"{'—' if len(run['modalities']) == 3 else f'{100 * delta:+.1f} pt'} |"
        )
    lines.append("<!-- measured:end -->")
    text = open(card, encoding="utf-8").read()
    start, end = text.index("<!-- measured:start"), text.index("<!-- measured:end -->")
    end += len("<!-- measured:end -->")
    atomic_write_text(card, text[:start] + "\n".join(lines) + text[end:])


def main(argv=None):
    parser = argparse.ArgumentParser(description="Measure AV-digits fused vs single-modality accuracy.")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--preset", default="small")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args(argv)
    command = "python scripts/measure_av_digits.py" + (
        f" --epochs {args.epochs}" if args.epochs != 10 else ""
    ) + (f" --preset {args.preset}" if args.preset != "small" else "")
    runs = []
    for modalities in RUNS:
        run = train_and_test(modalities, args.preset, args.epochs, args.seed)
        print(json.dumps(run), flush=True)
        runs.append(run)
    results = {
        "date": datetime.date.today().isoformat(),
        "command": command,
        "preset": args.preset,
        "epochs": args.epochs,
        "seed": args.seed,
        "tensorflow": tf.__version__,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "runs": runs,
    }
    if not args.no_write:
        atomic_write_text(
            os.path.join(DATA_DIR, "av_digits_measured.json"), json.dumps(results, indent=2)
        )
        write_card_table(results, command)
    return 0


if __name__ == "__main__":
    sys.exit(main())
