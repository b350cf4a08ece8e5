"""Shared pieces of the benchmark scripts: the model, the variants, the output.

Every figure in the README comes from a script here; each writes JSON and a
Markdown table under `benchmarks/results/` with the command, machine and date.
"""

import datetime
import json
import math
import os
import platform
import sys
import time

import numpy as np

import tfmm  # noqa: F401  (selects Keras 2 before TensorFlow loads)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(REPO, "benchmarks", "results")


def machine():
    """Return the facts that make a figure reproducible."""
    import tensorflow as tf

    return {
        "command": "python " + " ".join([os.path.relpath(os.path.abspath(sys.argv[0]), REPO)] + sys.argv[1:]),
        "date": datetime.date.today().isoformat(),
        "cpu_cores": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "tfmm": tfmm.__version__,
    }


def train_default(epochs, *, modalities=("image", "text", "audio"), preset="small", seed=0, callbacks=()):
    """Train the preset on AV-digits; return `(model, data, seconds_per_epoch)`."""
    from tfmm._keras import keras
    from tfmm.data import av_digits_tokenizer, from_arrays, load_av_digits
    from tfmm.models import build_multimodal_model, compile_model, get_preset

    keras.utils.set_random_seed(seed)
    tokenizer = av_digits_tokenizer()
    config = get_preset(preset, vocab_size=tokenizer.vocab_size, modalities=modalities)
    data = {split: load_av_digits(split, modalities=modalities) for split in ("train", "validation", "test")}
    model = compile_model(build_multimodal_model(config))
    start = time.perf_counter()
    model.fit(from_arrays(*data["train"], batch_size=32, shuffle=True, seed=seed), epochs=epochs, verbose=0,
              callbacks=list(callbacks))
    return model, data, (time.perf_counter() - start) / epochs


def keras_accuracy(model, data):
    """Top-1 accuracy of a Keras model on `(features, labels)` (`tfmm.evaluate.keras_accuracy`)."""
    from tfmm.evaluate import keras_accuracy as accuracy

    return accuracy(model, data)


def measure_file(result, model, test, *, runs=300, threads=(1,)):
    """Verify and benchmark one `ExportResult` (`tfmm.evaluate.measure_file`); return its flat figures."""
    from tfmm.evaluate import measure_file as measure

    row = measure(result, model, test, runs=runs, threads=threads).to_row()
    return {k: v for k, v in row.items() if k not in ("path", "mode", "p50_ms", "p90_ms", "reference_accuracy")}


def interleaved_p50(paths, *, rounds=5, runs=200, num_threads=1):
    """Time `.tflite` files in turns: each round runs every file once; median over rounds.

    On a shared machine the drift between two moments minutes apart can exceed
    the difference between two files; timed in turns, the drift hits all alike.

    Args:
        paths: `{name: path}`.
        rounds: Rounds; every round times each file with `runs` runs.
        runs: Timed runs per file and round (after the benchmark's warm-up).
        num_threads: Interpreter threads.

    Returns:
        `{name: {"p50_ms": median over rounds, "rounds": [p50 per round]}}`.
    """
    from tfmm.export import compare_latency

    turns = compare_latency(paths, rounds=rounds, runs=runs, num_threads=num_threads)
    return {name: {"p50_ms": t.p50_ms, "rounds": [round(x, 4) for x in t.rounds]} for name, t in turns.items()}


def mcnemar_p(b, c):
    """Two-sided exact McNemar p-value for paired classifiers.

    Args:
        b: Examples only the first classifier gets right.
        c: Examples only the second classifier gets right.

    Returns:
        The probability, if both were equally accurate, of a split of the
        `b + c` discordant examples at least as uneven as this one.

    Example:
        >>> round(mcnemar_p(0, 5), 4)
        0.0625
    """
    n = b + c
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, k) for k in range(min(b, c) + 1)) / 2**n
    return min(1.0, 2 * tail)


def write(name, payload, table):
    """Write `results/<name>.json` and `results/<name>.md` (the table plus provenance)."""
    from tfmm._files import atomic_write_text

    os.makedirs(RESULTS, exist_ok=True)
    payload = {"machine": machine(), **payload}
    atomic_write_text(os.path.join(RESULTS, f"{name}.json"), json.dumps(payload, indent=2, default=str))
    facts = payload["machine"]
    header = (
        f"Command: `{facts['command']}`  \n"
        f"Machine: {facts['cpu_cores']} cores, {facts['platform']}, TF {facts['tensorflow']}, "
        f"tfmm {facts['tfmm']}; {facts['date']}\n\n"
    )
    atomic_write_text(os.path.join(RESULTS, f"{name}.md"), header + table + "\n")
    return os.path.join(RESULTS, f"{name}.md")


def markdown_table(columns, rows):
    """Render rows (lists) under column names as a Markdown table."""
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def EpochTimer():  # noqa: N802  (reads like the callback class it returns)
    """A Keras callback recording wall time per epoch (the first includes tracing)."""
    from tfmm._keras import keras

    class _EpochTimer(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.times = []

        def on_epoch_begin(self, epoch, logs=None):
            self._start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.times.append(time.perf_counter() - self._start)

    return _EpochTimer()


def steady(times):
    """Epoch time without the tracing of the first epoch (when there are more)."""
    return float(np.median(times[1:] if len(times) > 1 else times))


def datasets(data, seed=0):
    from tfmm.data import from_arrays

    return (from_arrays(*data["train"], batch_size=32, shuffle=True, seed=seed),
            from_arrays(*data["validation"], batch_size=256))
