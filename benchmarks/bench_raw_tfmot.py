"""`make bench` sections `raw_tfmot_image` and `raw_tfmot_full`: TFMOT's documented path as written.

Image-only: raw PTQ / QAT / prune + PQAT next to tfmm's, in the same run, with the
paired right/wrong counts for a McNemar test. Three-branch: each documented step,
and whether it works (a failing step is recorded, not raised: it is the finding).
"""

import os

import numpy as np
from common import datasets, interleaved_p50, keras_accuracy, measure_file, train_default


_TELLING = ("Value passed", "not supported", "requires", "expected", "Please", "Unable")


def _try(step, fn):
    try:
        value = fn()
        return {"step": step, "ok": True, "result": value}
    except Exception as e:  # recorded, not raised: a failing raw TFMOT step is a finding
        lines = [l.strip() for l in str(e).splitlines() if l.strip()]
        telling = [l for l in lines if any(t in l for t in _TELLING)] or lines or [""]
        message = telling[0].split("error: ")[-1][:300]
        return {"step": step, "ok": False, "error": f"{type(e).__name__}: {message}"}


def _named(error):
    """`"TypeError: TypeError: x"` -> `"TypeError: x"` (TF repeats the type name in some messages)."""
    name, _, rest = error.partition(": ")
    while rest.startswith(name + ": "):
        rest = rest[len(name) + 2:]
    return f"{name}: {rest}" if rest else error


def _convert_raw(model, calib, path):
    """The documented converter path: from_keras_model + representative dataset, int8 I/O."""
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([calib[i : i + 1].astype(np.float32)] for i in range(100))
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    with open(path, "wb") as f:
        f.write(converter.convert())
    return path


def _image_predictions(path, images):
    """Class predicted by a one-input `.tflite` file for each image."""
    from tfmm.export.interpreter import TFLiteRunner

    runner = TFLiteRunner(path)
    return runner.predict({next(iter(runner.input_details)): images}).argmax(-1)


def _paired(mine, theirs, test):
    """Test examples only tfmm's file gets right, and only raw TFMOT's (for a paired test)."""
    images, labels = test[0]["image"], test[1]
    a, b = _image_predictions(mine, images) == labels, _image_predictions(theirs, images) == labels
    return {"tfmm_only": int(np.sum(a & ~b)), "tfmm_only_wrong": int(np.sum(~a & b)), "examples": int(len(labels))}


def _raw_figures(path, model, test):
    from tfmm.export import benchmark_tflite, inspect_tflite

    features, labels = test
    predicted = _image_predictions(path, features["image"])
    summary = inspect_tflite(path)
    return {"path": path, "accuracy": float(np.mean(predicted == labels)),
            "agreement": float(np.mean(predicted == model.predict(features, verbose=0).argmax(-1))),
            "size_bytes": summary.size_bytes, "gzip_bytes": summary.gzip_bytes,
            "p50_ms_1t": benchmark_tflite(path, runs=300).p50_ms,
            "p90_ms_1t": benchmark_tflite(path, runs=300).p90_ms,
            "p50_ms_2t": benchmark_tflite(path, num_threads=2, runs=300).p50_ms}


def section_raw_tfmot_image(args, tmp):
    """Image-only model: TFMOT's documented QAT and prune -> PQAT paths vs tfmm, same run."""
    from tfmm._keras import keras, tfmot
    from tfmm.artifacts import copy_model
    from tfmm.export import export_tflite
    from tfmm.optimization import optimize

    model, data, _ = train_default(args.epochs, modalities=("image",))
    x_train, y_train = data["train"]
    calib = data["validation"][0]["image"]
    q = tfmot().quantization.keras
    sparsity = tfmot().sparsity.keras
    out = {"keras_float_accuracy": keras_accuracy(model, data["test"])}

    def fresh():
        return copy_model(model)

    def raw_qat():
        qat = q.quantize_model(fresh())
        qat.compile(keras.optimizers.Adam(2e-4), "sparse_categorical_crossentropy", ["accuracy"])
        qat.fit(x_train, y_train, batch_size=32, epochs=args.qat_epochs, verbose=0)
        return _raw_figures(_convert_raw(qat, calib, os.path.join(tmp, "raw_qat.tflite")), qat, data["test"])

    def raw_pqat():
        steps = int(np.ceil(len(y_train) / 32)) * args.qat_epochs
        pruned = sparsity.prune_low_magnitude(fresh(), pruning_schedule=sparsity.PolynomialDecay(
            0.0, 0.75, 0, int(steps * 0.7), frequency=max(1, steps // 20)))
        pruned.compile(keras.optimizers.Adam(5e-4), "sparse_categorical_crossentropy", ["accuracy"])
        pruned.fit(x_train, y_train, batch_size=32, epochs=args.qat_epochs, verbose=0,
                   callbacks=[sparsity.UpdatePruningStep()])
        stripped = sparsity.strip_pruning(pruned)
        annotated = q.quantize_annotate_model(stripped)
        pqat = q.quantize_apply(annotated, tfmot().experimental.combine.Default8BitPrunePreserveQuantizeScheme())
        pqat.compile(keras.optimizers.Adam(2e-4), "sparse_categorical_crossentropy", ["accuracy"])
        pqat.fit(x_train, y_train, batch_size=32, epochs=args.qat_epochs, verbose=0)
        figures = _raw_figures(_convert_raw(pqat, calib, os.path.join(tmp, "raw_pqat.tflite")), pqat, data["test"])
        kernels = [w.numpy() for w in stripped.weights if w.name.endswith("kernel:0")]
        figures["sparsity"] = float(np.mean(np.concatenate([k.ravel() for k in kernels]) == 0))
        return figures

    def raw_ptq():
        return _raw_figures(_convert_raw(fresh(), calib, os.path.join(tmp, "raw_ptq.tflite")), model, data["test"])

    out["raw"] = [_try("PTQ int8", raw_ptq), _try("QAT int8", raw_qat), _try("prune 75% + PQAT int8", raw_pqat)]
    files = {f"TFMOT {r['step']}": r["result"]["path"] for r in out["raw"] if r["ok"]}
    train, validation = datasets(data)
    tfmm_rows = {}
    m = fresh()
    result = export_tflite(m, os.path.join(tmp, "tfmm_ptq.tflite"), representative_data=data["validation"][0])
    tfmm_rows["PTQ int8"] = measure_file(result, m, data["test"], threads=(1, 2))
    files["tfmm PTQ int8"] = result.path
    for name, recipe in (("QAT int8", {"quantize": {"epochs": args.qat_epochs}}),
                         ("prune 75% + PQAT int8", {"prune": {"target_sparsity": 0.75, "epochs": args.qat_epochs},
                                                    "quantize": {"epochs": args.qat_epochs}})):
        keras.utils.set_random_seed(0)
        optimized = optimize(fresh(), recipe, train, validation_data=validation, verbose=0)
        result = export_tflite(optimized.model, os.path.join(tmp, f"tfmm_{len(tfmm_rows)}.tflite"),
                               representative_data=data["validation"][0])
        tfmm_rows[name] = measure_file(result, optimized.model, data["test"], threads=(1, 2))
        files[f"tfmm {name}"] = result.path
        tfmm_rows[name]["sparsity"] = optimized.report["stages"]["quantize"]["sparsity"]
    m = fresh()
    result = export_tflite(m, os.path.join(tmp, "tfmm_f32.tflite"), quantization="float32")
    tfmm_rows["float32"] = measure_file(result, m, data["test"], threads=(1, 2))
    files["tfmm float32"] = result.path
    out["tfmm"] = tfmm_rows
    turns = interleaved_p50(files)
    out["turns"] = {name: t["p50_ms"] for name, t in turns.items()}
    out["turns_rounds"] = {name: t["rounds"] for name, t in turns.items()}
    out["paired"] = {r["step"]: _paired(files[f"tfmm {r['step']}"], files[f"TFMOT {r['step']}"], data["test"])
                     for r in out["raw"] if r["ok"]}
    print("raw image", out, flush=True)
    return out


def _raw_prune_sparsity(model):
    from tfmm._keras import keras, tfmot
    from tfmm.data import load_av_digits

    x, y = load_av_digits("train")
    x, y = {k: v[:1280] for k, v in x.items()}, y[:1280]  # 40 steps of 32
    sparsity = tfmot().sparsity.keras
    pruned = sparsity.prune_low_magnitude(
        keras.models.clone_model(model), pruning_schedule=sparsity.PolynomialDecay(0.0, 0.7, 0, 40))
    pruned.compile("adam", "sparse_categorical_crossentropy")
    pruned.fit(x, y, batch_size=32, epochs=1, verbose=0, callbacks=[sparsity.UpdatePruningStep()])
    kernels = [w.numpy() for w in sparsity.strip_pruning(pruned).weights if w.name.endswith("kernel:0")]
    return round(float(np.mean(np.concatenate([k.ravel() for k in kernels]) == 0)), 4)


def section_raw_tfmot_full(args, tmp):
    """The 3-branch model: each documented TFMOT step as written, and whether it works."""
    import tensorflow as tf

    from tfmm._keras import tfmot
    from tfmm.models import build_multimodal_model, get_preset

    model = build_multimodal_model(get_preset("small", vocab_size=51))
    q = tfmot().quantization.keras
    steps = [
        _try("quantize_model(model)", lambda: bool(q.quantize_model(model))),
        _try("TFLiteConverter.from_keras_model(model).convert() (float)",
             lambda: len(tf.lite.TFLiteConverter.from_keras_model(model).convert())),
        _try("prune_low_magnitude(model), PolynomialDecay(0, 0.7, 0, 40), default frequency, fit 40 steps "
             "-> sparsity", lambda: _raw_prune_sparsity(model)),
        _try("quantize_apply(quantize_annotate_model(model))",
             lambda: bool(q.quantize_apply(q.quantize_annotate_model(model)))),
    ]
    for s in steps:
        print(s, flush=True)
    return {"steps": steps, "tfmm": "tfmm runs each of these on the same model: see the variants section"}
