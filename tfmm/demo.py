"""The end-to-end demo behind `tfmm demo`.

It trains the `small` preset on the bundled AV-digits dataset, optimizes it
(prune 75% + sparsity-preserving QAT), exports float32 / dynamic-range / int8
TFLite files of the float model and an int8 file of the optimized one, verifies
each on the test split with the LiteRT interpreter, benchmarks them (1 thread)
and writes a report (`report/report.html`, `report.md`, `results.json`).
"""

import json
import os
import tempfile
import time

from tfmm._files import atomic_write_text

__all__ = ["run_demo"]

QUICK_OPTIMIZE_EXAMPLES = 1500


def run_demo(out_dir="tfmm-demo", *, quick=False, epochs=None, seed=0, limit=None, verbose=1):
    """Train the default multimodal model and write it with its results.

    Args:
        out_dir: Folder for `model.keras` with its sidecars (`model.yaml`,
            `model.vocab.json`; `tfmm.artifacts`' one naming rule), the
            `.tflite` files and `results.json`.
        quick: Two training epochs instead of ten, one per optimization stage
            (on 1,500 examples) instead of two, and no post-training int8 file
            of the float model (under 3 minutes on 2 cores).
        epochs: Override the number of training epochs.
        seed: Random seed for data, weights and shuffling.
        limit: Use only the first `limit` examples of each split (smoke runs).
        verbose: Keras progress output (0 silent, 1 progress bar, 2 one line per epoch).

    Returns:
        A dict of results (`data`, `train_examples`, `test_accuracy`, `params`,
        `seconds`, `model_path`, `optimization` (stage figures), `report` (the
        HTML path) and `variants`: one entry per TFLite file with its size, gzip
        size, test accuracy, agreement with Keras and p50 latency).

    Example:
        >>> results = tfmm.demo.run_demo("/tmp/demo", quick=True)  # doctest: +SKIP
    """
    from tfmm._keras import keras
    from tfmm.artifacts import save_model
    from tfmm.data import av_digits_tokenizer, from_arrays, load_av_digits
    from tfmm.evaluate import keras_accuracy
    from tfmm.models import build_multimodal_model, compile_model, get_preset

    start = time.perf_counter()
    keras.utils.set_random_seed(seed)
    os.makedirs(out_dir, exist_ok=True)
    tokenizer = av_digits_tokenizer()
    config = get_preset("small", vocab_size=tokenizer.vocab_size)
    epochs = epochs or (2 if quick else 10)
    (x_train, y_train), (x_val, y_val), (x_test, y_test) = (
        _head(load_av_digits(split), limit) for split in ("train", "validation", "test"))
    model = compile_model(build_multimodal_model(config))
    model.fit(
        from_arrays(x_train, y_train, batch_size=32, shuffle=True, seed=seed),
        validation_data=from_arrays(x_val, y_val, batch_size=256),
        epochs=epochs,
        verbose=verbose,
    )
    accuracy = keras_accuracy(model, (x_test, y_test))
    n_train, n_test = len(y_train), len(y_test)
    train_seconds = time.perf_counter() - start
    # Quick mode skips post-training int8 of the float model and fine-tunes on a
    # subset without per-stage validation: the optimized int8 file is what matters.
    modes = ("float32", "dynamic") if quick else ("float32", "dynamic", "int8")
    variants = _export_variants(model, out_dir, x_val, (x_test, y_test), tokenizer, quick, modes=modes)
    subset = slice(0, QUICK_OPTIMIZE_EXAMPLES if quick else None)
    optimized = _optimize(model, ({k: v[subset] for k, v in x_train.items()}, y_train[subset]),
                          None if quick else (x_val, y_val), seed, quick, verbose)
    variants += _export_variants(optimized.model, out_dir, x_val, (x_test, y_test), tokenizer, quick,
                                 modes=("int8",), label="prune+QAT ", prefix="optimized")
    model_path = os.path.join(out_dir, "model.keras")
    save_model(model, model_path, tokenizer=tokenizer, config=config)  # + model.yaml, model.vocab.json
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
        "optimization": {stage: {k: v for k, v in figures.items() if k in ("metrics", "sparsity", "seconds")}
                         for stage, figures in optimized.report["stages"].items()},
    }
    results["report"] = _write_report(results, optimized, train_seconds, out_dir)
    atomic_write_text(os.path.join(out_dir, "results.json"), json.dumps(results, indent=2))
    return results


def _head(split, limit):
    features, labels = split
    if not limit:
        return features, labels
    return {k: v[:limit] for k, v in features.items()}, labels[:limit]


def _optimize(model, train, validation, seed, quick, verbose):
    from tfmm.artifacts import copy_model
    from tfmm.data import from_arrays
    from tfmm.optimization import optimize

    clone = copy_model(model)
    epochs = 1 if quick else 2
    recipe = {"prune": {"target_sparsity": 0.75, "epochs": epochs}, "quantize": {"epochs": epochs}}
    return optimize(
        clone, recipe, from_arrays(*train, batch_size=32, shuffle=True, seed=seed),
        validation_data=from_arrays(*validation, batch_size=256) if validation else None, verbose=verbose,
    )


def _write_report(results, optimized, train_seconds, out_dir):
    from tfmm.report import write_report

    stages = optimized.report["stages"]
    facts = {
        "data": f"{results['data']}: {results['train_examples']} train / {results['test_examples']} test",
        "model": f"{results['preset']} preset, {results['params']:,} parameters",
        "Keras float test accuracy": f"{results['test_accuracy']:.4f} after {results['epochs']} epochs",
        "training": f"{train_seconds:.0f} s",
        "optimization": ", ".join(f"{k} {v.get('seconds', 0)} s" for k, v in stages.items() if k != "float"),
        "sparsity after prune + QAT": f"{stages['quantize']['sparsity']:.4f}",
        "layers left float in QAT": ", ".join(f["layer"] for f in stages["quantize"]["float_layers"]) or "none",
        "wall time": f"{results['seconds']} s",
    }
    variants = [{"name": "keras float", "accuracy": results["test_accuracy"]}] + [
        {"name": v["mode"], "accuracy": v["test_accuracy"], "agreement": v["agreement"],
         "size_bytes": v["size_bytes"], "gzip_bytes": v["gzip_bytes"], "p50_ms": v["p50_ms"]}
        for v in results["variants"]
    ]
    return write_report(
        os.path.join(out_dir, "report"), title="tfmm demo: AV-digits, small preset", facts=facts,
        variants=variants, sparsity=stages["prune"]["layer_sparsity"], history=optimized.history,
    )


def _export_variants(model, out_dir, calibration, test, tokenizer, quick, modes=("float32", "dynamic", "int8"),
                     label="", prefix="model"):
    from tfmm.export import export_saved_model

    with tempfile.TemporaryDirectory() as tmp:
        shared = None
        if {"float32", "dynamic"} <= set(modes):  # both use the fused layout: one SavedModel
            shared = export_saved_model(model, os.path.join(tmp, "saved_model"), rnn_layout="fused")
        return [
            _export_one(model, os.path.join(out_dir, f"{prefix}_{mode}.tflite"), mode, label, calibration,
                        test, tokenizer, quick, shared if mode in ("float32", "dynamic") else None)
            for mode in modes
        ]


def _export_one(model, path, mode, label, calibration, test, tokenizer, quick, saved_model_dir):
    from tfmm.data.av_digits import CLASS_NAMES
    from tfmm.evaluate import export_and_measure

    measured = export_and_measure(
        model, path, test, runs=30 if quick else 100, progress=not quick, quantization=mode,
        representative_data=calibration, saved_model_dir=saved_model_dir,
        tokenizer=tokenizer if mode == "int8" else None, class_names=CLASS_NAMES if mode == "int8" else None,
    )
    row = measured.to_row()
    return {"mode": label + mode, "path": path, "size_bytes": row["size_bytes"], "gzip_bytes": row["gzip_bytes"],
            "test_accuracy": row["accuracy"], "agreement": row["agreement"], "p50_ms": measured.p50_ms,
            "float_ops": row["float_ops"]}
