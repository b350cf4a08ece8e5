"""Write the three Colab-ready notebooks from the cells below (outputs empty).

Usage: python notebooks/build_notebooks.py

Each notebook installs tfmm when it is missing (Colab), reads `TFMM_NOTEBOOK_QUICK=1`
to run a tiny version (the test suite executes them that way with nbclient), and
uses only the bundled data: nothing is downloaded at run time.
"""

import os

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = os.path.dirname(os.path.abspath(__file__))

SETUP = '''# Colab: install tfmm from an uploaded wheel (`pip wheel --no-deps .` in a clone makes one), a clone
# beside this notebook, or TFMM_SOURCE (any pip argument: a path, a wheel, a git URL of your copy).
# Skipped where tfmm is installed.
import glob, importlib.util, os, subprocess, sys
if importlib.util.find_spec("tfmm") is None:
    wheels = sorted(glob.glob("tfmm-*.whl")) + sorted(glob.glob("/content/tfmm-*.whl"))
    clones = [d for d in (".", "tfmm", "/content/tfmm", "..") if os.path.isfile(os.path.join(d, "setup.cfg"))
              and os.path.isdir(os.path.join(d, "tfmm"))]
    source = os.environ.get("TFMM_SOURCE") or (wheels[-1] if wheels else clones[0] if clones else None)
    if source is None:
        raise SystemExit("tfmm is not installed: upload the tfmm-*.whl wheel to the session's files, or clone "
                         "the repository next to this notebook, or set TFMM_SOURCE, then run this cell again.")
    subprocess.check_call([sys.executable, "-m", "pip", "install", "-q", source])

import tfmm  # first: it selects Keras 2 (tf_keras), which TFMOT needs
import numpy as np

QUICK = os.environ.get("TFMM_NOTEBOOK_QUICK") == "1"  # the test suite runs a tiny version
PRESET, EPOCHS, N_TRAIN, N_TEST = ("small", 3, 1500, 300) if QUICK else ("small", 10, None, None)
WORK = "tfmm-notebook-files"
os.makedirs(WORK, exist_ok=True)
print("tfmm", tfmm.__version__, "| quick" if QUICK else "| full run")'''

LOAD = '''from tfmm.data import av_digits_tokenizer, from_arrays, load_av_digits

def take(split, n=None):
    x, y = load_av_digits(split)
    n = n or len(y)
    return {k: v[:n] for k, v in x.items()}, y[:n]

x_train, y_train = take("train", N_TRAIN)
x_val, y_val = take("validation", N_TEST)
x_test, y_test = take("test", N_TEST)
tokenizer = av_digits_tokenizer()
print({k: (v.shape, v.dtype.name) for k, v in x_train.items()}, len(y_train), "training examples")'''

TRAIN = '''from tfmm._keras import keras
from tfmm.models import build_multimodal_model, compile_model, get_preset

keras.utils.set_random_seed(0)
config = get_preset(PRESET, vocab_size=tokenizer.vocab_size)
model = compile_model(build_multimodal_model(config))
model.fit(from_arrays(x_train, y_train, batch_size=32, shuffle=True), validation_data=(x_val, y_val),
          epochs=EPOCHS, verbose=2)
float_accuracy = float(np.mean(model.predict(x_test, verbose=0).argmax(-1) == y_test))
print(f"test accuracy {float_accuracy:.3f}, {model.count_params():,} parameters")'''

NB1 = [
    new_markdown_cell("# 1. Build and train a multimodal model\n\n"
                      "An image + text + audio classifier from `tfmm.models`: a ResNet image branch, an "
                      "Embedding + LSTM text branch and a Conv1D audio branch, fused and trained on the "
                      "bundled AV-digits dataset. Every builder returns a flat `tf_keras` functional model "
                      "with named dict inputs, so TFMOT and the TFLite converter can work on it."),
    new_code_cell(SETUP),
    new_markdown_cell("## The data\nAV-digits ships inside the package: a corrupted handwritten digit, a "
                      "noisy spoken digit and a misspelt number word per example."),
    new_code_cell(LOAD),
    new_markdown_cell("## A config, a model\nConfigs are frozen dataclasses that round-trip through YAML."),
    new_code_cell('''from tfmm.models import MultimodalConfig, get_preset
config = get_preset(PRESET, vocab_size=tokenizer.vocab_size, fusion="gated")
print(config.to_yaml())
config.to_yaml(os.path.join(WORK, "config.yaml"))
assert MultimodalConfig.from_yaml(os.path.join(WORK, "config.yaml")) == config'''),
    new_code_cell(TRAIN),
    new_markdown_cell("## Any subset of modalities\nThe same builder makes single-modality models, so the "
                      "fusion gain can be measured."),
    new_code_cell('''for modality in ("image", "audio"):
    cfg = get_preset(PRESET, modalities=(modality,))
    single = compile_model(build_multimodal_model(cfg))
    single.fit({modality: x_train[modality]}, y_train, epochs=EPOCHS, batch_size=32, verbose=0)
    acc = float(np.mean(single.predict({modality: x_test[modality]}, verbose=0).argmax(-1) == y_test))
    print(f"{modality:>6} only: test accuracy {acc:.3f}")
print(f" fused: test accuracy {float_accuracy:.3f}")'''),
    new_code_cell('''model.save(os.path.join(WORK, "model.keras"))
restored = tfmm.models.load_model(os.path.join(WORK, "model.keras"))
np.testing.assert_allclose(restored.predict(x_test, verbose=0), model.predict(x_test, verbose=0), atol=1e-6)
print("saved and reloaded with identical predictions")'''),
]

NB2 = [
    new_markdown_cell("# 2. Prune + QAT the whole multimodal model\n\n"
                      "First what raw TFMOT does with this model, then the same steps with tfmm."),
    new_code_cell(SETUP),
    new_code_cell(LOAD),
    new_code_cell(TRAIN),
    new_markdown_cell("## Raw TFMOT\n`quantize_model` on a model with an int32 token input, and pruning with "
                      "the default `frequency=100` on a short fine-tune."),
    new_code_cell('''import tensorflow_model_optimization as tfmot
try:
    tfmot.quantization.keras.quantize_model(model)
    print("quantize_model worked")
except Exception as e:  # measured on TF 2.21 + TFMOT 0.8.1: it does not
    print("quantize_model failed:", type(e).__name__, str(e).splitlines()[0][:200])

steps = int(np.ceil(len(y_train) / 32))
schedule = tfmot.sparsity.keras.PolynomialDecay(0.0, 0.75, 0, steps)
try:
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    raw = tfmot.sparsity.keras.prune_low_magnitude(copy, pruning_schedule=schedule)
    raw.compile("adam", "sparse_categorical_crossentropy")
    raw.fit(x_train, y_train, epochs=1, batch_size=32, verbose=0,
            callbacks=[tfmot.sparsity.keras.UpdatePruningStep()])
    kernels = [w.numpy() for w in raw.weights if "kernel" in w.name and "mask" not in w.name]
    print("raw pruning sparsity:", round(float(np.mean(np.concatenate([k.ravel() for k in kernels]) == 0)), 3))
except Exception as e:
    print("prune_low_magnitude failed:", type(e).__name__, str(e).splitlines()[0][:200])'''),
    new_markdown_cell("## tfmm\nOne recipe: prune to 75% (schedule derived from the real step count), strip, "
                      "then sparsity-preserving QAT. The report lists every layer left float, with its reason."),
    new_code_cell('''from tfmm.optimization import optimize, sparsity_report
recipe = {"prune": {"target_sparsity": 0.75, "epochs": 1 if QUICK else 2},
          "quantize": {"epochs": 1 if QUICK else 2}}
result = optimize(model, recipe, (x_train, y_train), validation_data=(x_val, y_val), verbose=2)
stages = result.report["stages"]
print("sparsity after prune:", round(stages["prune"]["sparsity"], 3), "after QAT:", round(stages["quantize"]["sparsity"], 3))
for layer in stages["quantize"]["float_layers"]:
    print(f"  float: {layer['layer']:<22} {layer['reason'][:90]}")
qat_accuracy = float(np.mean(result.model.predict(x_test, verbose=0).argmax(-1) == y_test))
print(f"test accuracy: float {float_accuracy:.3f} -> pruned + QAT {qat_accuracy:.3f}")
assert abs(stages["quantize"]["sparsity"] - 0.75) < 0.02'''),
    new_code_cell('''tfmm.artifacts.save_model(result.model, os.path.join(WORK, "optimized.tfmm"))  # QAT: .tfmm, not .keras
print("saved", os.path.join(WORK, "optimized.tfmm"))'''),
    new_markdown_cell("## The optimized model as a verified int8 file\nExported, then run on the LiteRT "
                      "interpreter over the test split and compared with the Keras model."),
    new_code_cell('''from tfmm.export import export_tflite, verify_tflite
path = os.path.join(WORK, "optimized_int8.tflite")
exported = export_tflite(result.model, path, representative_data=x_val, tokenizer=tokenizer)
report = verify_tflite(exported.path, (x_test, y_test), reference_model=result.model)
print(f"{exported.size_bytes:,} bytes, float ops: {exported.float_ops or 'none'}")
print(f"int8 verified: accuracy {report.accuracy:.3f}, agreement {report.agreement:.3f} ({path})")'''),
]

NB3 = [
    new_markdown_cell("# 3. Export int8, verify, inspect, benchmark and hand off to Android"),
    new_code_cell(SETUP),
    new_code_cell(LOAD),
    new_code_cell(TRAIN),
    new_code_cell('''from tfmm.export import benchmark_tflite, export_tflite, inspect_tflite, verify_tflite
from tfmm.data.av_digits import CLASS_NAMES
files = {}
for mode in ("float32", "int8") if QUICK else ("float32", "dynamic", "float16", "int8"):
    path = os.path.join(WORK, f"model_{mode}.tflite")
    files[mode] = export_tflite(model, path, quantization=mode, representative_data=x_val,
                                tokenizer=tokenizer if mode == "int8" else None,
                                class_names=CLASS_NAMES if mode == "int8" else None)
print(f"{'mode':<8} {'bytes':>9} {'gzip':>9} {'accuracy':>9} {'agrees':>7} {'p50 ms':>7}")
for mode, result in files.items():
    report = verify_tflite(result.path, (x_test, y_test), reference_model=model)
    latency = benchmark_tflite(result.path, num_threads=1, runs=50)
    print(f"{mode:<8} {result.size_bytes:>9,} {result.gzip_bytes:>9,} {report.accuracy:>9.3f} "
          f"{report.agreement:>7.3f} {latency.p50_ms:>7.3f}")
    if mode == "int8":
        verified = f"int8 verified: accuracy {report.accuracy:.3f}, agreement {report.agreement:.3f} ({result.path})"
print(verified)'''),
    new_markdown_cell("## Is it really int8?"),
    new_code_cell('''summary = inspect_tflite(files["int8"].path)
for t in summary.inputs + summary.outputs:
    print(f"{t.name:<16} {t.dtype:<6} {list(t.shape)} scale={t.scale:.6g} zero_point={t.zero_point}")
print("ops:", summary.op_histogram)
print("float ops:", summary.float_ops or "none: fully integer")'''),
    new_markdown_cell("## Metadata inside the file\nTFLite Metadata: each input's meaning, normalization and "
                      "range, and the labels / vocabulary as associated files (Android Studio's ML binding reads them)."),
    new_code_cell('''from tfmm.export import read_metadata
meta = read_metadata(files["int8"].path)
print(meta["name"], "|", meta["version"])
for entry in meta["inputs"]:
    print(f"  {entry['name']:<6} {entry['description'][:70]} normalization={entry.get('normalization')}")
print("associated files:", sorted(meta["files"]), "| labels:", meta["files"]["labels.txt"].split()[:3])'''),
    new_markdown_cell("## Android hand-off\nShip the `.tflite`, `<name>.vocab.json` and `<name>.labels.txt`. "
                      "Call the `serving_default` signature runner with inputs named `image`, `text`, `audio`; "
                      "quantize image / audio with the scale and zero point above, feed token ids as int32, "
                      "and call `resetVariableTensors()` before each example if the file has a fused LSTM. "
                      "`android/src/main/java/dev/tfmm/TextTokenizer.java` turns text into the same ids as Python."),
    new_code_cell('''import json
print(sorted(os.listdir(WORK)))
vocabulary = json.load(open(os.path.join(WORK, "model_int8.vocab.json")))
print("vocabulary:", vocabulary["vocabulary"][:12], "... sequence_length", vocabulary["sequence_length"])
print("labels:", open(os.path.join(WORK, "model_int8.labels.txt")).read().split()[:10])
ids = tokenizer(["seven"])
print("'seven' ->", ids[0][:8], ids.dtype)'''),
]


def main():
    for name, cells in (("01_build_and_train.ipynb", NB1), ("02_prune_and_qat.ipynb", NB2),
                        ("03_export_int8_android.ipynb", NB3)):
        notebook = new_notebook(cells=cells, metadata={
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
            "colab": {"provenance": []},
        })
        nbformat.write(notebook, os.path.join(HERE, name))
        print("wrote", name)


if __name__ == "__main__":
    main()
