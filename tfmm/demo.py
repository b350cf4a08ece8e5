"""The end-to-end demo behind `tfmm demo`.

It trains the `small` preset on the bundled AV-digits dataset, saves it with its
tokenizer, exports float32 / dynamic-range / int8 TFLite files, verifies each on
the test split with the LiteRT interpreter and benchmarks them (1 thread).
Optimization (prune + QAT) joins with the CLI issue.
"""

import json
import os
import time

import numpy as np

from tfmm.config import atomic_write_text

__all__ = ["run_demo"]


def run_demo(out_dir="tfmm-demo", *, quick=False, epochs=None, seed=0, verbose=1):
    """Train the default multimodal model and write it with its results.

    Args:
        out_dir: Folder for `model.keras`, `config.yaml`, `vocabulary.json` and
            `results.json`.
        quick: Two epochs instead of ten (under a minute of training on 2 cores).
        epochs: Override the number of training epochs.
        seed: Random seed for data, weights and shuffling.
        verbose: Keras progress output (0 silent, 1 progress bar, 2 one line per epoch).

    Returns:
        A dict of results (`data`, `train_examples`, `test_accuracy`, `params`,
        `seconds`, `model_path`, and `variants`: one entry per TFLite file with
        its size, gzip size, test accuracy, agreement with Keras and p50 latency).

    Example:
        >>> results = tfmm.demo.run_demo("/tmp/demo", quick=True)  # doctest: +SKIP
    """
    from tfmm._keras import keras
    from tfmm.data import av_digits_tokenizer, from_arrays, load_av_digits
    from tfmm.models import build_multimodal_model, compile_model, get_preset

    start = time.perf_counter()
    keras.utils.set_random_seed(seed)
    os.makedirs(out_dir, exist_ok=True)
    tokenizer = av_digits_tokenizer()
    config = get_preset("small", vocab_size=tokenizer.vocab_size)
    epochs = epochs or (2 if quick else 10)
    x_train, y_train = load_av_digits("train")
    x_val, y_val = load_av_digits("validation")
    x_test, y_test = load_av_digits("test")
    model = compile_model(build_multimodal_model(config))
    model.fit(
        from_arrays(x_train, y_train, batch_size=32, shuffle=True, seed=seed),
        validation_data=from_arrays(x_val, y_val, batch_size=256),
        epochs=epochs,
        verbose=verbose,
    )
    probs = model.predict(x_test, batch_size=256, verbose=0)
    accuracy = float(np.mean(np.argmax(probs, axis=-1) == y_test))
    n_train, n_test = len(y_train), len(y_test)
    variants = _export_variants(model, out_dir, x_val, (x_test, y_test), tokenizer, quick)
    model_path = os.path.join(out_dir, "model.keras")
    tmp_path = os.path.join(out_dir, ".tmp-model.keras")
    model.save(tmp_path)
    os.replace(tmp_path, model_path)
    config.to_yaml(os.path.join(out_dir, "config.yaml"))
    tokenizer.save(os.path.join(out_dir, "vocabulary.json"))
    results = {
        "data": "AV-digits (bundled)",
        "preset": "small",
        "train_examples": n_train,
        "test_examples": n_test,
        "epochs": epochs,
        "params": int(model.count_params()),
        "test_accuracy": accuracy,
        "seconds": round(time.perf_counter() - start, 1),
        "model_path": model_path,
        "variants": variants,
    }
    atomic_write_text(os.path.join(out_dir, "results.json"), json.dumps(results, indent=2))
    return results


def _export_variants(model, out_dir, calibration, test, tokenizer, quick):
    from tfmm.data.av_digits import CLASS_NAMES
    from tfmm.export import benchmark_tflite, export_tflite, verify_tflite

    variants = []
    for mode in ("float32", "dynamic", "int8"):
        path = os.path.join(out_dir, f"model_{mode}.tflite")
        result = export_tflite(
            model, path, quantization=mode, representative_data=calibration,
            tokenizer=tokenizer if mode == "int8" else None,
            class_names=CLASS_NAMES if mode == "int8" else None,
        )
        report = verify_tflite(path, test, reference_model=model, progress=not quick)
        latency = benchmark_tflite(path, num_threads=1, runs=30 if quick else 100)
        variants.append({
            "mode": mode,
            "path": path,
            "size_bytes": result.size_bytes,
            "gzip_bytes": result.gzip_bytes,
            "test_accuracy": report.accuracy,
            "agreement": report.agreement,
            "p50_ms": latency.p50_ms,
            "float_ops": result.float_ops,
        })
    return variants
