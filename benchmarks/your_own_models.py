"""Hand-written user models through tfmm: PTQ int8, and prune 50% + QAT -> int8, verified.

Usage: python benchmarks/your_own_models.py [--epochs 4]

Three list-input models a user might bring (token ids + a 3-class image task made
learnable on purpose): a GRU text branch, an attention text branch
(MultiHeadAttention + residual add + LayerNormalization), and a nested
`keras.applications.MobileNetV2` backbone (alpha 0.35, 32x32, random init, no
download). Each row: Keras test accuracy, int8 file size, its accuracy and its
agreement with the Keras model it came from. Writes
`benchmarks/results/your_own_models.{json,md}`.
"""

import argparse
import os
import tempfile

import numpy as np
from common import keras_accuracy, markdown_table, measure_file, write


def _data(n, seed, image_shape):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n).astype("int32")
    tokens = (rng.integers(1, 16, (n, 8)) + 3 * y[:, None]).astype("int32")
    pixels = (rng.normal(size=(n, *image_shape)) + 1.5 * y[:, None, None, None]).astype("float32")
    return [tokens, pixels], y


def _model(kind):
    from tfmm._keras import keras

    layers = keras.layers
    shape = (32, 32, 3) if kind == "nested MobileNetV2" else (12, 12, 1)
    tokens = keras.Input((8,), dtype="int32", name="tokens")
    pixels = keras.Input(shape, name="pixels")
    embedded = layers.Embedding(24, 16)(tokens)
    if kind == "GRU":
        text = layers.GRU(8)(embedded)
    else:
        attended = layers.MultiHeadAttention(2, 8)(embedded, embedded)
        text = layers.GlobalAveragePooling1D()(layers.LayerNormalization()(attended + embedded))
    if kind == "nested MobileNetV2":
        image = keras.applications.MobileNetV2(input_shape=shape, alpha=0.35, include_top=False, weights=None,
                                               pooling="avg")(pixels)
    else:
        image = layers.GlobalAveragePooling2D()(layers.Conv2D(8, 3, activation="relu")(pixels))
    out = layers.Dense(3, activation="softmax")(layers.Concatenate()([text, image]))
    model = keras.Model([tokens, pixels], out)
    model.compile(keras.optimizers.Adam(3e-3), "sparse_categorical_crossentropy", ["accuracy"])
    return model, shape


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=4)
    args = parser.parse_args()
    from tfmm._keras import keras
    from tfmm.export import export_tflite
    from tfmm.optimization import optimize

    rows, figures = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        for kind in ("GRU", "attention + LayerNorm + residual add", "nested MobileNetV2"):
            keras.utils.set_random_seed(0)
            model, shape = _model(kind)
            (x, y), test = _data(384, 0, shape), _data(128, 1, shape)
            model.fit(x, y, batch_size=32, epochs=args.epochs, verbose=0)
            recipe = {"prune": {"target_sparsity": 0.5, "epochs": 1}, "quantize": {"epochs": 1}}
            for name, source in (("PTQ int8", model), ("prune 50% + QAT int8", None)):
                if source is None:
                    source = optimize(model, recipe, (x, y), verbose=0).model
                result = export_tflite(source, os.path.join(tmp, f"{len(rows)}.tflite"), representative_data=x)
                row = measure_file(result, source, test, runs=50)
                row["keras_accuracy"] = keras_accuracy(source, test)
                figures[f"{kind}: {name}"] = row
                rows.append([kind, name, f"{row['keras_accuracy'] * 100:.1f}", f"{row['size_bytes']:,}",
                             f"{row['accuracy'] * 100:.1f}", f"{row['agreement'] * 100:.1f}"])
                print(rows[-1], flush=True)
    table = markdown_table(["model", "path", "Keras acc %", "int8 bytes", "int8 acc %", "agrees %"], rows)
    print(write("your_own_models", {"epochs": args.epochs, "figures": figures}, table))


if __name__ == "__main__":
    main()
