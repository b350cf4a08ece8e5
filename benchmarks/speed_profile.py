"""Why is the int8 file not faster? A profile of the default model on this CPU.

Usage: python benchmarks/speed_profile.py [--epochs 1] [--rounds 5]

Five measurements, every latency timed in interleaved turns (`tfmm.export.compare_latency`,
1 thread unless said; median of rounds, with the fastest / slowest round):
1. the default model (small preset): float32 vs int8 at 1 and 2 threads, and the int8 file
   without XNNPACK (is the delegate taking the int8 ops?), and both files without the polyphase
   lowering of the audio stem (`tfmm.export.conv_lowering`); op counts incl. QUANTIZE / DEQUANTIZE
   and the XNNPACK partitions;
2. per layer: every Conv / Dense / LSTM layer exported alone (float32 and int8, calibrated on
   its real input activations) and timed: where int8 loses;
3. the two 1-channel first layers alone (the audio one as written and lowered), with and without XNNPACK;
4. a width sweep of plain 3x3 convolution stacks (does int8 win anywhere on this CPU?);
5. the presets tiny / small / base, float32 vs int8, 1 and 2 threads.
Writes `benchmarks/results/speed_profile.{json,md}`.
"""

import argparse
import os
import tempfile

import numpy as np

from common import markdown_table, train_default, write

_COMPUTE = ("Conv1D", "Conv2D", "DepthwiseConv2D", "Dense", "LSTM", "GRU")


def _pair(model, calib, folder, name, polyphase=True):
    """Export `model` as float32 and int8 (`polyphase=False`: 1-channel strided Conv1D not lowered); return paths."""
    from tfmm.export import export_tflite

    return {mode: export_tflite(model, os.path.join(folder, f"{name}_{mode}.tflite"), quantization=mode,
                                representative_data=calib, polyphase=polyphase).path for mode in ("float32", "int8")}


def _turns(paths, rounds, threads=1):
    from tfmm.export import compare_latency

    return compare_latency(paths, rounds=rounds, runs=200, num_threads=threads)


def _ms(t):
    return f"{t.p50_ms:.3f} ({t.low_ms:.3f}-{t.high_ms:.3f})"


def default_model(model, calib, folder, rounds):
    from tfmm.export import inspect_tflite
    from tfmm.export.xnnpack import xnnpack_partitions

    paths = _pair(model, calib, folder, "default")
    direct = _pair(model, calib, folder, "direct", polyphase=False)
    one = _turns({"float32": paths["float32"], "int8": paths["int8"],
                  "int8, audio stem not lowered": direct["int8"], "float32, audio stem not lowered": direct["float32"],
                  "int8, no XNNPACK": (paths["int8"], False), "float32, no XNNPACK": (paths["float32"], False)},
                 rounds)
    two = _turns(paths, rounds, threads=2)
    ops = {mode: inspect_tflite(path).op_histogram for mode, path in paths.items()}
    rows = [[name, _ms(t), f"{t.ratio:.2f}"] for name, t in one.items()]
    rows += [[f"{name}, 2 threads", _ms(t), f"{t.ratio:.2f}"] for name, t in two.items()]
    counts = {mode: (sum(c.values()), c.get("QUANTIZE", 0), c.get("DEQUANTIZE", 0), xnnpack_partitions(paths[mode]))
              for mode, c in ops.items()}
    table = markdown_table(["file", "p50 ms (fastest-slowest round)", "x float32"], rows)
    table += "\n\n" + markdown_table(["file", "ops", "QUANTIZE", "DEQUANTIZE", "XNNPACK partitions"],
                                     [[mode, *counts[mode]] for mode in counts])
    return table, {"latency_1t": {k: v.to_dict() for k, v in one.items()},
                   "latency_2t": {k: v.to_dict() for k, v in two.items()}, "ops": ops}


def per_layer(model, calib, folder, rounds):
    """Each compute layer alone, float32 vs int8, calibrated on its real input activations."""
    from tfmm._keras import keras
    from tfmm.models import flatten_model

    model = flatten_model(model)
    rows, figures = [], []
    for layer in model.layers:
        if type(layer).__name__ not in _COMPUTE or isinstance(layer.input, (list, tuple)):
            continue
        inputs = keras.Model(model.inputs, layer.input).predict(calib, verbose=0, batch_size=32)[:32]
        dtype = layer.input.dtype.name
        x = keras.Input(layer.input.shape[1:], name="x", dtype=dtype)
        clone = type(layer).from_config(layer.get_config())
        alone = keras.Model(x, clone(x))
        clone.set_weights(layer.get_weights())
        paths = _pair(alone, inputs.astype(dtype), folder, layer.name)
        t = _turns(paths, rounds)
        figures.append({"layer": layer.name, "class_name": type(layer).__name__,
                        "output_shape": list(layer.output.shape[1:]),
                        "float32_ms": t["float32"].p50_ms, "int8_ms": t["int8"].p50_ms,
                        "ratio": t["int8"].ratio})
    figures.sort(key=lambda f: -f["float32_ms"])
    for f in figures:
        rows.append([f["layer"], f["class_name"], "x".join(str(d) for d in f["output_shape"]),
                     f"{1000 * f['float32_ms']:.0f}", f"{1000 * f['int8_ms']:.0f}", f"{f['ratio']:.2f}"])
    total = [sum(f[k] for f in figures) for k in ("float32_ms", "int8_ms")]
    rows.append(["**sum**", "", "", f"{1000 * total[0]:.0f}", f"{1000 * total[1]:.0f}", f"{total[1] / total[0]:.2f}"])
    table = markdown_table(["layer", "class", "output", "float32 us", "int8 us", "int8 x float32"], rows)
    return table, figures


def first_layers(folder, rounds):
    """The default model's two 1-channel first convolutions alone: XNNPACK vs TFLite's builtin kernels."""
    from tfmm._keras import keras

    rng = np.random.default_rng(0)
    audio = ((8000, 1), lambda x: keras.layers.Conv1D(16, 25, strides=4, padding="same", activation="relu")(x))
    cases = {"audio_block1_conv: Conv1D(16, 25, strides=4) on 8000x1, as written": (*audio, False),
             "the same, lowered by export: Conv1D(16, 7) on the samples regrouped 2000x4": (*audio, True),
             "image_stem_conv: Conv2D(16, 3) on 28x28x1": (
                 (28, 28, 1), lambda x: keras.layers.Conv2D(16, 3, padding="same", activation="relu")(x), True)}
    rows, figures = [], {}
    for i, (name, (shape, layer, polyphase)) in enumerate(cases.items()):
        keras.utils.set_random_seed(0)
        x = keras.Input(shape, name="x")
        paths = _pair(keras.Model(x, layer(x)), rng.normal(size=(16, *shape)).astype("float32"), folder,
                      f"first{i}", polyphase=polyphase)
        t = _turns({"float32": paths["float32"], "int8": paths["int8"], "int8, builtin": (paths["int8"], False),
                    "float32, builtin": (paths["float32"], False)}, rounds)
        figures[name] = {k: v.to_dict() for k, v in t.items()}
        rows.append([name] + [f"{1000 * t[k].p50_ms:.0f}" for k in t] + [f"{t['int8'].ratio:.2f}"])
    return markdown_table(["layer alone", "float32 XNNPACK us", "int8 XNNPACK us", "int8 builtin us",
                           "float32 builtin us", "int8 x float32 (XNNPACK)"], rows), figures


def width_sweep(folder, rounds):
    """Four 3x3 convolutions (same padding, ReLU) at 14x14: float32 vs int8 by width."""
    from tfmm._keras import keras

    rows, figures = [], []
    rng = np.random.default_rng(0)
    for width in (8, 16, 32, 64, 128):
        keras.utils.set_random_seed(0)
        x = keras.Input((14, 14, width), name="x")
        h = x
        for _ in range(4):
            h = keras.layers.Conv2D(width, 3, padding="same", activation="relu")(h)
        calib = rng.normal(size=(16, 14, 14, width)).astype("float32")
        t = _turns(_pair(keras.Model(x, h), calib, folder, f"w{width}"), rounds)
        figures.append({"width": width, "float32_ms": t["float32"].p50_ms, "int8_ms": t["int8"].p50_ms,
                        "ratio": t["int8"].ratio})
        rows.append([width, f"{t['float32'].p50_ms:.3f}", f"{t['int8'].p50_ms:.3f}", f"{t['int8'].ratio:.2f}"])
    return markdown_table(["channels", "float32 p50 ms", "int8 p50 ms", "int8 x float32"], rows), figures


def presets(data, folder, rounds):
    from tfmm.data import av_digits_tokenizer
    from tfmm.models import build_multimodal_model, get_preset

    rows, figures = [], {}
    calib = {k: v[:64] for k, v in data["validation"][0].items()}
    for preset in ("tiny", "small", "base"):
        model = build_multimodal_model(get_preset(preset, vocab_size=av_digits_tokenizer().vocab_size))
        paths = _pair(model, calib, folder, preset)
        one, two = _turns(paths, rounds), _turns(paths, rounds, threads=2)
        figures[preset] = {"params": int(model.count_params()), "1t": {k: v.to_dict() for k, v in one.items()},
                           "2t": {k: v.to_dict() for k, v in two.items()}}
        rows.append([preset, f"{model.count_params():,}", _ms(one["float32"]), _ms(one["int8"]),
                     f"{one['int8'].ratio:.2f}", f"{two['int8'].ratio:.2f}"])
    table = markdown_table(["preset", "params", "float32 p50 ms 1t", "int8 p50 ms 1t", "int8 x f32 1t",
                            "int8 x f32 2t"], rows)
    return table, figures


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    model, data, _ = train_default(args.epochs)
    calib = {k: v[:64] for k, v in data["validation"][0].items()}
    sections, payload = [], {}
    with tempfile.TemporaryDirectory() as folder:
        for title, run in [
            ("Default model (small preset), 1 thread unless said", lambda: default_model(model, calib, folder,
                                                                                        args.rounds)),
            ("Per layer, each exported alone (us, 1 thread; sorted by float32 time)",
             lambda: per_layer(model, calib, folder, 3)),
            ("The 1-channel first layers: XNNPACK vs TFLite's builtin kernels",
             lambda: first_layers(folder, args.rounds)),
            ("Width sweep: four 3x3 convolutions at 14x14", lambda: width_sweep(folder, args.rounds)),
            ("Presets (untrained weights: latency does not depend on them)",
             lambda: presets(data, folder, args.rounds)),
        ]:
            print(f"== {title}", flush=True)
            table, figures = run()
            print(table, flush=True)
            sections.append(f"## {title}\n\n{table}")
            payload[title] = figures
    print(write("speed_profile", payload, "\n\n".join(sections)))


if __name__ == "__main__":
    main()
