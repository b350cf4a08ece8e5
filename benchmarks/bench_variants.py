"""`make bench` section `variants`: the default model through every export and optimization variant.

Also the int8 file's breakdown: where its bytes go, per-op-type latency (the file
with only that op type in float, timed in turns) and the worst int8 tensors.
"""

import os

from common import EpochTimer, datasets, interleaved_p50, keras_accuracy, measure_file, steady, train_default


def section_variants(args, tmp):
    """The default model through every export and optimization variant."""
    from tfmm._keras import keras
    from tfmm.export import export_tflite
    from tfmm.data import av_digits_tokenizer
    from tfmm.models import build_multimodal_model, compile_model, get_preset, student_config
    from tfmm.optimization import optimize

    timer = EpochTimer()
    model, data, _ = train_default(args.epochs, callbacks=[timer])
    float_epoch = steady(timer.times)
    keras_acc = keras_accuracy(model, data["test"])
    weights = model.get_weights()
    calib = data["validation"][0]
    out = {"keras_float_accuracy": keras_acc, "float_epoch_s": float_epoch, "files": {}, "epochs": {}}

    exported = {}

    def export(name, m, **options):
        result = export_tflite(m, os.path.join(tmp, f"{len(out['files'])}.tflite"),
                               representative_data=calib, **options)
        out["files"][name] = measure_file(result, m, data["test"], threads=(1, 2))
        exported[name] = result
        print(name, out["files"][name], flush=True)

    export("TFLite float32", model, quantization="float32")
    export("dynamic range", model, quantization="dynamic")
    export("float16", model, quantization="float16")
    export("PTQ int8 (full integer)", model, layer_errors=True)
    export("PTQ int8, per-channel dense", model, per_channel_dense=True)
    export("PTQ int8 prefer=latency", model, prefer="latency")
    out["breakdown"] = _breakdown(model, calib, exported["PTQ int8 (full integer)"], tmp)
    train, validation = datasets(data)
    teacher = os.path.join(tmp, "teacher.keras")
    model.save(teacher)
    e = args.qat_epochs
    prune, quantize = {"target_sparsity": 0.75, "epochs": e}, {"epochs": e}
    cluster = {"number_of_clusters": 16, "epochs": e}
    recipes = (
        ("QAT int8", {"quantize": quantize}),
        ("prune 75% + PQAT int8", {"prune": prune, "quantize": quantize}),
        ("cluster 16 + CQAT int8", {"cluster": cluster, "quantize": quantize}),
        ("prune 75% + cluster 16 + PCQAT int8", {"prune": prune, "cluster": cluster, "quantize": quantize}),
        ("distilled half-width student + prune 75% + PQAT int8",
         {"distill": {"teacher": teacher, "epochs": args.epochs}, "prune": prune, "quantize": quantize}),
    )
    for name, recipe in recipes:
        keras.utils.set_random_seed(0)
        start = model
        if "distill" in recipe:
            teacher_config = get_preset("small", vocab_size=av_digits_tokenizer().vocab_size)
            start = compile_model(build_multimodal_model(student_config(teacher_config, width=0.5)))
        else:
            model.set_weights(weights)
        timer = EpochTimer()
        result = optimize(start, recipe, train, validation_data=validation, callbacks=[timer], verbose=0)
        out["epochs"][name] = {"epoch_s": timer.times, "qat_epoch_s": steady(timer.times[-e:])}
        export(name, result.model)
        stages = result.report["stages"]
        out["files"][name].update(
            sparsity=stages["quantize"]["sparsity"], keras_accuracy=keras_accuracy(result.model, data["test"]),
            params=int(result.model.count_params()),
            max_unique_values=max((stages["quantize"].get("unique_values") or {0: 0}).values()),
        )
    for name, t in interleaved_p50({n: r.path for n, r in exported.items()}).items():
        out["files"][name]["p50_ms_1t_turns"] = t["p50_ms"]
        out["files"][name]["p50_ms_1t_rounds"] = t["rounds"]
    return out


def _breakdown(model, calib, int8, tmp):
    """Why the int8 file misses its size / latency targets: bytes, per-op-type latency, worst tensors."""
    from ai_edge_litert.tools import flatbuffer_utils

    from tfmm.data import representative_dataset
    from tfmm.export import export_saved_model
    from tfmm.export.selective import CalibratedModel

    graph = flatbuffer_utils.read_model_from_bytearray(bytearray(open(int8.path, "rb").read()))
    weights = sum(len(b.data) for b in graph.buffers if b.data is not None)
    sizes = {"file_bytes": int8.size_bytes, "weight_bytes": weights, "graph_bytes": int8.size_bytes - weights,
             "ops": len(graph.subgraphs[0].operators), "tensors": len(graph.subgraphs[0].tensors)}
    # Per op type: the full-int8 file with only that type computing in float (measured in one run).
    saved = export_saved_model(model, os.path.join(tmp, "breakdown_sm"), rnn_layout="unrolled")
    calibrated = CalibratedModel.from_saved_model(saved, representative_dataset(calib, num_samples=100, model=model))
    paths, ops = {}, {}

    def keep(name, content):
        paths[name] = os.path.join(tmp, f"breakdown_{len(paths)}.tflite")
        with open(paths[name], "wb") as f:
            f.write(content)

    keep("full int8", calibrated.quantize())
    for op in sorted(int8.summary.op_histogram):
        if op in ("DELEGATE", "QUANTIZE", "DEQUANTIZE"):
            continue
        ops[op] = {"count": int8.summary.op_histogram[op]}
        try:
            keep(op, calibrated.quantize(denylisted_ops=[op]))
        except Exception as e:  # an op type the quantizer cannot leave float alone
            ops[op]["error"] = str(e).splitlines()[0][:120]
    turns = interleaved_p50(paths, rounds=5)  # all candidates in turns: the drift leaves the ratios
    for op in ops:
        if op in turns:
            ops[op]["p50_ms_float"] = turns[op]["p50_ms"]
    worst = [dict(e) for e in int8.layer_errors[:5]]
    return {"size": sizes, "int8_p50_ms": turns["full int8"]["p50_ms"], "op_float": ops, "worst_tensors": worst}
