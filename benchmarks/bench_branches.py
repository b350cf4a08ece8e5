"""`make bench` section `branches`: single-modality models, per-branch int8 / float32 latency."""

import os

from common import interleaved_p50, keras_accuracy, measure_file, train_default


def section_branches(args, tmp):
    """Single-modality models: the fusion gain and the per-branch int8 / float32 latency."""
    from tfmm.export import export_tflite

    out = {}
    for modality in ("image", "text", "audio"):
        model, data, _ = train_default(args.epochs, modalities=(modality,))
        row = {"keras_accuracy": keras_accuracy(model, data["test"])}
        for mode in ("float32", "int8"):
            result = export_tflite(model, os.path.join(tmp, f"{modality}_{mode}.tflite"), quantization=mode,
                                   representative_data=data["validation"][0])
            row[mode] = measure_file(result, model, data["test"], threads=(1,))
        turns = interleaved_p50({mode: os.path.join(tmp, f"{modality}_{mode}.tflite") for mode in ("float32", "int8")})
        for mode, t in turns.items():
            row[mode]["p50_ms_1t_turns"] = t["p50_ms"]
        out[modality] = row
        print(modality, row, flush=True)
    return out
