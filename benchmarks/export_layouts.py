"""How the RNN layout and selective int8 change size, accuracy and latency.

Usage: python benchmarks/export_layouts.py [--epochs 4]

Trains the `small` preset on AV-digits, then exports: float32 (fused LSTM),
float32 (unrolled), full int8 (unrolled, the default; again with per-channel dense
weights), full int8 (fused LSTM),
int8 with `max_accuracy_drop=0.005` on the fused layout, and int8 with
`prefer="latency"`. Each file is verified on the test split and timed (1 thread).
"""

import argparse
import os
import tempfile

from common import keras_accuracy, markdown_table, measure_file, train_default, write

VARIANTS = [
    ("float32 (fused LSTM)", dict(quantization="float32")),
    ("float32 (unrolled)", dict(quantization="float32", rnn_layout="unrolled")),
    ("int8 (unrolled, default)", dict()),
    ("int8 (unrolled), per-channel dense", dict(per_channel_dense=True)),
    ("int8 (fused LSTM)", dict(rnn_layout="fused")),
    ("int8 fused, max_accuracy_drop=0.005", dict(rnn_layout="fused", max_accuracy_drop=0.005)),
    ("int8 prefer=latency", dict(prefer="latency")),
]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=4)
    args = parser.parse_args()
    from tfmm.export import export_tflite

    model, data, _ = train_default(args.epochs)
    keras_test = keras_accuracy(model, data["test"])
    rows, figures = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        for i, (name, options) in enumerate(VARIANTS):
            if "max_accuracy_drop" in options:
                options = dict(options, validation_data=data["validation"])
            result = export_tflite(model, os.path.join(tmp, f"v{i}.tflite"),
                                   representative_data=data["validation"][0], **options)
            figures[name] = row = measure_file(result, model, data["test"])
            print(name, row, flush=True)
    base = figures["float32 (fused LSTM)"]
    for name, row in figures.items():
        rows.append([
            name, f"{row['size_bytes']:,}", f"{row['size_bytes'] / base['size_bytes']:.3f}",
            f"{row['gzip_bytes']:,}", f"{row['accuracy'] * 100:.1f}", f"{row['agreement'] * 100:.1f}",
            f"{row['p50_ms_1t']:.3f}", f"{row['p50_ms_1t'] / base['p50_ms_1t']:.2f}",
            ", ".join(row["kept_float"]) or "-",
        ])
    table = (
        f"Keras float test accuracy: {keras_test * 100:.1f}% ({args.epochs} epochs).\n\n"
        + markdown_table(
            ["variant", "bytes", "x float32", "gzip bytes", "test acc %", "agrees with Keras %",
             "p50 ms (1 thread)", "x float32 p50", "kept float"],
            rows,
        )
    )
    print(write("export_layouts", {"epochs": args.epochs, "keras_test_accuracy": keras_test,
                                   "variants": figures}, table))


if __name__ == "__main__":
    main()
