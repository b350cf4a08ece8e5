"""`export_tflite`: a Keras model (float, pruned or QAT) -> a verified-ready `.tflite`.

What the plain converter gets wrong on our models, and what this does instead:
- `from_keras_model` fails on the LSTM ("TensorListReserve ... element_shape to be
  static"): tfmm converts a batch-1 signature with the model's input names, saved
  as a SavedModel so calibration finds its signature.
- The fused LSTM op disagrees with Keras after training, and a masked LSTM makes
  int8 conversion crash: tfmm unrolls recurrent layers over the fixed sequence
  length first (same weights), which converts to plain ops that match Keras.
- float64 calibration data fails inside the converter: data is cast to the
  model's input dtypes (`tfmm.data.representative_dataset`).
- Pruning wrappers are stripped; QAT wrappers are kept (their ranges are used).
"""

import dataclasses
import os
import shutil
import tempfile
import time
import warnings

import tensorflow as tf

from tfmm._keras import check_keras2, hub_custom_objects, keras, tfmot, unwrap
from tfmm._quiet import native_stderr_captured
from tfmm.config import atomic_write_bytes, atomic_write_text
from tfmm.data import representative_dataset
from tfmm.errors import ConfigError, ExportError
from tfmm.export.inspect import TFLiteSummary, inspect_tflite

__all__ = ["ExportResult", "MODES", "export_tflite", "export_saved_model"]

MODES = ("float32", "dynamic", "float16", "int8", "int16x8")
_NEEDS_CALIBRATION = ("int8", "int16x8")
_RNN_CLASSES = ("LSTM", "GRU", "SimpleRNN")


@dataclasses.dataclass(frozen=True)
class ExportResult:
    """What `export_tflite` wrote.

    Attributes:
        path: The `.tflite` file.
        mode: The quantization mode.
        size_bytes: File size.
        gzip_bytes: Size after gzip.
        summary: The `TFLiteSummary` (inputs / outputs with dtypes and
            quantization, op histogram, ops left float).
        conversion_seconds: Time the conversion took.
        side_files: Files written next to the model (vocabulary, labels).
    """

    path: str
    mode: str
    size_bytes: int
    gzip_bytes: int
    summary: TFLiteSummary
    conversion_seconds: float
    side_files: tuple = ()

    @property
    def float_ops(self):
        """Ops that still compute in float (empty for a fully integer file)."""
        return self.summary.float_ops

    def to_dict(self):
        """Return a JSON-safe dict."""
        return dataclasses.asdict(self)


def prepare_for_export(model, *, unroll_rnn=True):
    """Return the model to convert: pruning wrappers stripped, RNNs unrolled.

    Args:
        model: A `tf_keras` model (plain, pruned or QAT).
        unroll_rnn: Rebuild LSTM / GRU layers with `unroll=True` (same weights).

    Returns:
        A model computing the same function (the same object when nothing changes).

    Example:
        >>> ready = tfmm.export.prepare_for_export(model)  # doctest: +SKIP
    """
    from tensorflow_model_optimization.python.core.sparsity.keras import pruning_wrapper

    if any(isinstance(l, pruning_wrapper.PruneLowMagnitude) for l in model.layers):
        model = tfmot().sparsity.keras.strip_pruning(model)

    def rolled(layer):
        inner = unwrap(layer)
        cell_owner = getattr(inner, "forward_layer", inner)  # Bidirectional
        return type(cell_owner).__name__ in _RNN_CLASSES and not cell_owner.unroll

    if not unroll_rnn or not any(rolled(l) for l in model.layers):
        return model

    def clone(layer):
        config = layer.get_config()
        if rolled(layer):
            if "layer" in config and isinstance(config["layer"], dict):  # Bidirectional
                config["layer"]["config"]["unroll"] = True
                if config.get("backward_layer"):
                    config["backward_layer"]["config"]["unroll"] = True
            else:
                config["unroll"] = True
        return layer.__class__.from_config(config)

    with tfmot().quantization.keras.quantize_scope(hub_custom_objects()):
        unrolled = keras.models.clone_model(model, clone_function=clone)
    unrolled.set_weights(model.get_weights())
    return unrolled


def _signature(model):
    specs = {
        t.name.split(":")[0]: tf.TensorSpec((1, *t.shape[1:]), t.dtype, name=t.name.split(":")[0])
        for t in model.inputs
    }
    names = list(model.output_names)

    @tf.function
    def serve(inputs):
        outputs = model(inputs, training=False)
        outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
        return dict(zip(names, outputs))

    return serve.get_concrete_function(specs)


def export_saved_model(model, path, *, unroll_rnn=True):
    """Save `model` as a SavedModel with a batch-1 `serving_default` signature.

    The signature's inputs are named like the model's inputs (`image`, `text`,
    `audio`); RNNs are unrolled and pruning wrappers stripped first, as for TFLite.

    Args:
        model: A `tf_keras` model.
        path: Destination folder (replaced atomically if it exists).
        unroll_rnn: Unroll LSTM / GRU layers.

    Returns:
        The folder path.

    Raises:
        TypeError: `model` is a Keras 3 model.
        ExportError: Saving failed (nothing is left at `path`).

    Example:
        >>> tfmm.export.export_saved_model(model, "exported/saved_model")  # doctest: +SKIP
    """
    check_keras2(model)
    path = os.path.abspath(os.fspath(path))
    model = prepare_for_export(model, unroll_rnn=unroll_rnn)
    parent = os.path.dirname(path)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(dir=parent, prefix=".tmp-savedmodel-")
    try:
        tf.saved_model.save(model, tmp, signatures={"serving_default": _signature(model)})
        if os.path.exists(path):
            shutil.rmtree(path)
        os.replace(tmp, path)
    except Exception as e:
        shutil.rmtree(tmp, ignore_errors=True)
        raise ExportError(f"Saving a SavedModel to {path!r} failed: {str(e).splitlines()[0]}") from e
    return path


def _configure(converter, mode, calibration, int8_io):
    if mode == "float32":
        return
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if mode == "float16":
        converter.target_spec.supported_types = [tf.float16]
    elif mode == "int8":
        converter.representative_dataset = calibration
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        if int8_io:
            converter.inference_input_type = tf.int8  # float inputs only; token ids stay int32
            converter.inference_output_type = tf.int8
    elif mode == "int16x8":
        converter.representative_dataset = calibration
        converter.target_spec.supported_ops = [
            tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8
        ]


def export_tflite(
    model,
    path,
    *,
    quantization="int8",
    representative_data=None,
    num_calibration_samples=100,
    int8_io=True,
    unroll_rnn=True,
    tokenizer=None,
    class_names=None,
):
    """Convert a Keras model to a `.tflite` file and describe what came out.

    Args:
        model: A `tf_keras` model: float, pruned (wrappers are stripped) or QAT.
        path: Destination `.tflite` path; written atomically.
        quantization: `"float32"`, `"dynamic"` (int8 weights, float activations),
            `"float16"`, `"int8"` (full integer; int8 inputs / outputs for float
            modalities, token ids stay int32) or `"int16x8"` (int16 activations).
        representative_data: Calibration data for `int8` / `int16x8`: arrays,
            `(features, labels)` or a dataset (cast to the model's input dtypes).
        num_calibration_samples: Examples used for calibration.
        int8_io: With `int8`, make float inputs and outputs int8 too (what NPUs and
            microcontrollers want). False keeps float32 I/O around an int8 body.
        unroll_rnn: Unroll LSTM / GRU layers before converting (recommended: the
            fused LSTM op disagrees with Keras and masked LSTMs crash int8 conversion).
        tokenizer: Optional `tfmm.data.TextTokenizer`, saved next to the model as
            `<name>.vocab.json` for the app.
        class_names: Optional class names, saved as `<name>.labels.txt`.

    Returns:
        An `ExportResult`.

    Raises:
        TypeError: `model` is a Keras 3 model.
        ConfigError: Unknown mode, a path not ending in `.tflite`, or missing
            calibration data.
        ExportError: The converter failed (no file is left behind).

    Example:
        >>> x, y = tfmm.data.load_av_digits("validation")
        >>> result = tfmm.export.export_tflite(model, "model_int8.tflite",
        ...                                    representative_data=x)  # doctest: +SKIP
        >>> result.summary.inputs[0].dtype  # doctest: +SKIP
        'int8'
    """
    check_keras2(model)
    path = os.fspath(path)
    if quantization not in MODES:
        raise ConfigError(f"`quantization` must be one of {list(MODES)}. Received: {quantization!r}")
    if not path.endswith(".tflite"):
        raise ConfigError(f"`path` must end in .tflite. Received: {path!r}")
    if quantization in _NEEDS_CALIBRATION and representative_data is None:
        raise ConfigError(
            f"quantization={quantization!r} needs `representative_data` (about 100 typical "
            "examples, e.g. the validation features) to calibrate activation ranges."
        )
    int_inputs = [t.name.split(":")[0] for t in model.inputs if t.dtype.is_integer]
    if quantization == "int16x8" and int_inputs:
        raise ExportError(
            f"int16x8 cannot be calibrated for integer inputs {int_inputs} with TF "
            f"{tf.__version__}: the converter fails with 'Max and min for dynamic tensors "
            "should be recorded'. Use 'int8' (token ids stay int32) or export a model "
            "without the text branch."
        )
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    calibration = None
    if quantization in _NEEDS_CALIBRATION:
        calibration = representative_dataset(
            representative_data, num_samples=num_calibration_samples, model=model
        )
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        saved = export_saved_model(model, os.path.join(tmp, "saved_model"), unroll_rnn=unroll_rnn)
        converter = tf.lite.TFLiteConverter.from_saved_model(saved, signature_keys=["serving_default"])
        _configure(converter, quantization, calibration, int8_io)
        try:
            # The converter logs from C++ and warns about its internal calibration
            # interpreter; both are noise unless it fails (then they are replayed).
            with native_stderr_captured(), warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=".*tf.lite.Interpreter is deprecated")
                content = converter.convert()
        except Exception as e:
            lines = [l for l in str(e).splitlines() if "error" in l.lower()] or str(e).splitlines()
            raise ExportError(
                f"Converting {model.name!r} to {quantization} TFLite failed: {lines[0].strip()[:500]}"
            ) from e
    seconds = time.perf_counter() - start
    atomic_write_bytes(path, content)
    side = []
    stem = path[: -len(".tflite")]
    if tokenizer is not None:
        side.append(tokenizer.save(stem + ".vocab.json"))
    if class_names is not None:
        side.append(atomic_write_text(stem + ".labels.txt", "\n".join(map(str, class_names)) + "\n"))
    summary = inspect_tflite(path)
    return ExportResult(
        path=path,
        mode=quantization,
        size_bytes=summary.size_bytes,
        gzip_bytes=summary.gzip_bytes,
        summary=summary,
        conversion_seconds=round(seconds, 2),
        side_files=tuple(side),
    )
