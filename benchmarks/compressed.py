"""Compression that shrinks compute: channel pruning and low rank on the default model.

Usage: python benchmarks/compressed.py [--epochs 10] [--stage-epochs 3] [--rounds 5]

Trains the default model (small preset, AV-digits), then runs recipes that make the
graph smaller (`channel_prune`, `low_rank`) before QAT, exports each verified int8
file and times all files in interleaved turns against the float32 file (1 and 2
threads). The issue's goal: <= 0.25x float32 p50 and <= 0.15x its bytes within
1 point of the float model's accuracy. Writes `benchmarks/results/compressed.{json,md}`.
"""

import argparse
import os
import tempfile

from common import datasets, keras_accuracy, markdown_table, train_default, write


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--stage-epochs", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    from tfmm._keras import keras
    from tfmm.export import compare_latency, export_tflite, verify_tflite
    from tfmm.optimization import optimize

    model, data, _ = train_default(args.epochs)
    float_accuracy = keras_accuracy(model, data["test"])
    weights, calib = model.get_weights(), data["validation"][0]
    train, validation = datasets(data)
    e = args.stage_epochs
    recipes = {
        "QAT int8": {"quantize": {"epochs": e}},
        "channels 50% + QAT int8": {"channel_prune": {"fraction": 0.5, "epochs": e}, "quantize": {"epochs": e}},
        "channels 50% + low rank (energy 0.9) + QAT int8": {
            "channel_prune": {"fraction": 0.5, "epochs": e},
            "low_rank": {"energy": 0.9, "exclude": ["head_output"], "epochs": e}, "quantize": {"epochs": e}},
        "channels 70% + QAT int8": {"channel_prune": {"fraction": 0.7, "epochs": e}, "quantize": {"epochs": e}},
        # float16 weights: half the bytes, and XNNPACK computes in float32 (faster than int8 here)
        "channels 50%, float16": {"channel_prune": {"fraction": 0.5, "epochs": e}},
        "channels 70%, float16": {"channel_prune": {"fraction": 0.7, "epochs": e}},
    }
    rows, figures = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        files = {"float32": export_tflite(model, os.path.join(tmp, "f32.tflite"), quantization="float32").path,
                 "PTQ int8": export_tflite(model, os.path.join(tmp, "ptq.tflite"), representative_data=calib).path}
        accuracy = {name: verify_tflite(path, data["test"], reference_model=model).accuracy
                    for name, path in files.items()}
        params = {name: int(model.count_params()) for name in files}
        for name, recipe in recipes.items():
            keras.utils.set_random_seed(0)
            model.set_weights(weights)
            result = optimize(model, recipe, train, validation_data=validation, verbose=0)
            mode = "float16" if name.endswith("float16") else "int8"
            path = export_tflite(result.model, os.path.join(tmp, f"{len(files)}.tflite"), quantization=mode,
                                 representative_data=calib).path
            files[name] = path
            accuracy[name] = verify_tflite(path, data["test"], reference_model=result.model).accuracy
            params[name] = int(result.model.count_params())
            print(name, accuracy[name], params[name], flush=True)
        one = compare_latency(files, rounds=args.rounds, runs=200)
        two = compare_latency(files, rounds=args.rounds, runs=200, num_threads=2)
        size = {name: os.path.getsize(path) for name, path in files.items()}
    for name in files:
        drop = 100 * (float_accuracy - accuracy[name])
        met = one[name].ratio <= 0.25 and size[name] / size["float32"] <= 0.15 and drop <= 1.0
        figures[name] = {"accuracy": accuracy[name], "params": params[name], "bytes": size[name],
                         "bytes_ratio": size[name] / size["float32"], "p50_1t": one[name].to_dict(),
                         "p50_2t": two[name].to_dict(), "meets_goal": met}
        rows.append([name, f"{100 * accuracy[name]:.1f}", f"{-drop:+.1f}", f"{params[name]:,}", f"{size[name]:,}",
                     f"{size[name] / size['float32']:.3f}", f"{one[name].p50_ms:.3f}", f"{one[name].ratio:.2f}",
                     f"{two[name].ratio:.2f}", "yes" if met else "no"])
    table = markdown_table(["file", "test acc %", "pt vs Keras float", "params", "bytes", "x f32 bytes",
                            "p50 ms 1t", "x f32 p50 1t", "x f32 p50 2t", "goal met"], rows)
    table += (f"\n\nKeras float accuracy {100 * float_accuracy:.1f}% ({args.epochs} epochs). Goal: <= 0.25x float32 "
              "p50 (1 thread) and <= 0.15x its bytes within 1 point. Latency: median of "
              f"{args.rounds} interleaved rounds of 200 runs each.")
    print(write("compressed", {"keras_float_accuracy": float_accuracy, "files": figures}, table))


if __name__ == "__main__":
    main()
