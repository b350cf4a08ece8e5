"""The LSTM during QAT: left float (tfmm's policy) vs weights-only fake quantization.

Usage: python benchmarks/lstm_qat.py [--epochs 4] [--qat-epochs 2]

Trains the `small` preset on AV-digits, then runs the same QAT fine-tuning twice:
once with tfmm's default LSTM policy (float during QAT; the converter calibrates
it) and once with a weights-only `WeightsQuantizeConfig` on the LSTM kernel and
recurrent kernel. Each QAT model is exported to int8 (default layout), verified
on the test split and timed. This is the measurement behind the LSTM policy.
"""

import argparse
import os
import tempfile

from common import keras_accuracy, markdown_table, measure_file, train_default, write

WEIGHTS_ONLY = dict(
    prunable=("kernel", "recurrent_kernel"),
    quantize="weights",
    weight_attrs=("cell.kernel", "cell.recurrent_kernel"),
    quantize_output=False,
)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--qat-epochs", type=int, default=2)
    args = parser.parse_args()
    from tfmm._keras import keras
    from tfmm.data import from_arrays
    from tfmm.export import export_tflite
    from tfmm.optimization import LayerPolicy, get_layer_policy, optimize, register_layer_policy

    model, data, _ = train_default(args.epochs)
    weights = model.get_weights()
    float_accuracy = keras_accuracy(model, data["test"])
    float_policy = get_layer_policy(keras.layers.LSTM(4))
    figures, rows = {}, []
    train = from_arrays(*data["train"], batch_size=32, shuffle=True, seed=0)
    validation = from_arrays(*data["validation"], batch_size=256)
    with tempfile.TemporaryDirectory() as tmp:
        for name, policy in (("LSTM float (tfmm policy)", float_policy),
                             ("LSTM weights-only QAT", LayerPolicy(**WEIGHTS_ONLY))):
            register_layer_policy(keras.layers.LSTM, policy)
            try:
                keras.utils.set_random_seed(0)
                model.set_weights(weights)
                result = optimize(model, {"quantize": {"epochs": args.qat_epochs}}, train,
                                  validation_data=validation, verbose=0)
            finally:
                register_layer_policy(keras.layers.LSTM, float_policy)
            qat_keras = keras_accuracy(result.model, data["test"])
            exported = export_tflite(result.model, os.path.join(tmp, "m.tflite"),
                                     representative_data=data["validation"][0])
            row = measure_file(exported, result.model, data["test"])
            row["qat_keras_accuracy"] = qat_keras
            row["lstm_layer"] = [l.__class__.__name__ for l in result.model.layers if "lstm" in l.name]
            figures[name] = row
            print(name, row, flush=True)
            rows.append([name, f"{qat_keras * 100:.1f}", f"{row['accuracy'] * 100:.1f}",
                         f"{row['agreement'] * 100:.1f}", f"{row['size_bytes']:,}",
                         f"{row['p50_ms_1t']:.3f}", ", ".join(sorted(row["float_ops"])) or "-"])
    table = f"Float Keras test accuracy before QAT: {float_accuracy * 100:.1f}%.\n\n" + markdown_table(
        ["LSTM during QAT", "QAT Keras acc %", "int8 acc %", "int8 agrees with QAT Keras %", "bytes",
         "p50 ms (1 thread)", "float ops in int8 file"],
        rows,
    )
    print(write("lstm_qat", {"epochs": args.epochs, "float_keras_accuracy": float_accuracy, "qat_epochs": args.qat_epochs, "variants": figures}, table))


if __name__ == "__main__":
    main()
