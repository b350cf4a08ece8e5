"""Image-only PTQ int8: raw TFMOT's converter path vs tfmm, latency measured interleaved.

Usage: python benchmarks/interleaved_latency.py [--epochs 1] [--rounds 9]

A quick focused check (one training epoch) of what `make bench`'s raw TFMOT
table also measures: on a shared 2-core machine the drift between two moments
can exceed the difference between two files, so every round times each file in
turn (300 runs, 1 thread), and the median over rounds is reported. Adds the
per-channel-dense variant. Training length hardly matters for latency (same graph).
Writes `benchmarks/results/interleaved_latency.{json,md}`.
"""

import argparse
import os
import tempfile

from common import interleaved_p50, markdown_table, train_default, write

from bench_raw_tfmot import _convert_raw


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args()
    from tfmm.export import export_tflite

    model, data, _ = train_default(args.epochs, modalities=("image",))
    calib = data["validation"][0]
    with tempfile.TemporaryDirectory() as tmp:
        paths = {
            "raw TFMOT (from_keras_model, int8 I/O)": _convert_raw(model, calib["image"], os.path.join(tmp, "raw.tflite")),
            "tfmm export_tflite (int8)": export_tflite(model, os.path.join(tmp, "tfmm.tflite"),
                                                       representative_data=calib).path,
            "tfmm, per_channel_dense=True": export_tflite(model, os.path.join(tmp, "pc.tflite"),
                                                          representative_data=calib, per_channel_dense=True).path,
        }
        turns = interleaved_p50(paths, rounds=args.rounds, runs=300)
        sizes = {name: os.path.getsize(path) for name, path in paths.items()}
        ops = {name: _op_counts(path) for name, path in paths.items()}
    first = next(iter(paths))
    rounds = {name: t["rounds"] for name, t in turns.items()}
    medians = {name: t["p50_ms"] for name, t in turns.items()}
    slower = {name: sum(a > b for a, b in zip(rounds[name], rounds[first])) for name in paths}
    same = {name: "" if ops[name] == ops[first] else " (other types)" for name in paths}
    rows = [[name, f"{sizes[name]:,}", f"{sum(ops[name].values())}{same[name]}",
             f"{medians[name]:.4f}", f"{medians[name] / medians[first]:.3f}",
             f"{slower[name]} of {len(rounds[name])}" if name != first else "-",
             " ".join(f"{x:.4f}" for x in rounds[name])] for name in paths]
    table = markdown_table(["file", "bytes", "ops", "median p50 ms", "x raw", "slower than raw in", "p50 per round"],
                           rows)
    print(write("interleaved_latency", {"rounds": rounds, "sizes": sizes, "medians": medians, "ops": ops,
                                        "slower_rounds": slower}, table))


def _op_counts(path):
    """`{op type: count}` of a `.tflite` file."""
    from tfmm.export import inspect_tflite

    return dict(sorted(inspect_tflite(path).op_histogram.items()))


if __name__ == "__main__":
    main()
