"""`export_tflite`: a Keras model (float, pruned or QAT) -> a verified-ready `.tflite`.

What the plain converter gets wrong on our models, and what this does instead:
- `from_keras_model` fails on the LSTM ("TensorListReserve ... element_shape to be
  static"): tfmm converts a batch-1 signature with the model's input names, saved
  as a SavedModel so calibration finds its signature.
- A masked LSTM converts to a `WHILE` loop whose int8 conversion crashes; the
  fused LSTM op keeps state between invocations. tfmm lays RNNs out as fused ops
  (small files) or unrolled (fast int8), see `tfmm.export.rnn`.
- Internal tensor names are a quarter of an int8 file with an unrolled LSTM:
  they are dropped (`tfmm.export.compact`); signature names stay.
- float64 calibration data fails inside the converter: data is cast to the
  model's input dtypes (`tfmm.data.representative_dataset`).
- Pruning wrappers are stripped; QAT wrappers are kept (their ranges are used).

Length: most of it is `export_tflite`'s docstring (every option with its measured
trade-off); modes live in `tfmm.export.options`, the selective search in `selective`.
"""

import dataclasses
import os
import re
import time
import warnings

import numpy as np
import tensorflow as tf

from tfmm._choices import MODES, PREFERENCES
from tfmm._args import require_model
from tfmm._keras import check_keras2
from tfmm._quiet import native_stderr_captured
from tfmm._files import atomic_write_bytes, check_output_path, scratch_dir
from tfmm import __version__
from tfmm.artifacts import write_sidecars
from tfmm.export.metadata import embed_metadata
from tfmm.data import representative_dataset
from tfmm.errors import ConfigError, ExportError
from tfmm.export.compact import compact_tflite
from tfmm.export.inspect import TFLiteSummary, inspect_tflite, layer_errors as measure_layer_errors
from tfmm.export.interpreter import TFLiteRunner
from tfmm.export.options import ExportConfig, new_converter
from tfmm.export.saved_model import export_saved_model
from tfmm.export.selective import select_int8
from tfmm.export.xnnpack import ops_xnnpack_rejects, widen_degenerate_scales

__all__ = ["ExportResult", "ExportWarning", "MODES", "PREFERENCES", "export_tflite", "export_saved_model"]


class ExportWarning(UserWarning):
    """The exported file differs from a plain conversion in a way the user should know."""



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
        rnn_layout: How recurrent layers were laid out (`fused` / `unrolled`).
        selection: The `tfmm.export.selective.Selection` of a selective export
            (`prefer="latency"` or `max_accuracy_drop`), else None.
        layer_errors: With `layer_errors=True`: `({"tensor", "op", "error"}, ...)`,
            the int8 error of each tensor in units of its quantization step
            (RMSE / scale, from TensorFlow's QuantizationDebugger), largest first.
    """

    path: str
    mode: str
    size_bytes: int
    gzip_bytes: int
    summary: TFLiteSummary
    conversion_seconds: float
    side_files: tuple = ()
    rnn_layout: str = "fused"
    selection: object = None
    layer_errors: tuple = ()

    @property
    def float_ops(self):
        """Ops that still compute in float (empty for a fully integer file)."""
        return self.summary.float_ops

    def to_dict(self):
        """Return a JSON-safe dict."""
        return dataclasses.asdict(self)


def export_tflite(
    model,
    path,
    *,
    quantization="int8",
    representative_data=None,
    num_calibration_samples=100,
    int8_io=True,
    prefer="size",
    max_accuracy_drop=None,
    validation_data=None,
    rnn_layout=None,
    compact=True,
    saved_model_dir=None,
    tokenizer=None,
    class_names=None,
    layer_errors=False,
    per_channel_dense=False,
    verbose=0,
    config=None,
    metadata=True,
    polyphase=True,
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
        prefer: `"size"` (default): full integer, the smallest file; what NPUs and
            microcontrollers want. `"latency"` (int8 only): measure on this CPU and
            keep float every op type whose int8 kernel is slower than its float
            one by more than 5 % in one timing (on the x86 test machines CONV_2D
            float measured 0.85x of the full-int8 file in turns, within reach of
            that noise); `ExportResult.selection` says which were kept and what
            it gained.
        max_accuracy_drop: int8 only: the largest accuracy loss (a fraction, e.g.
            0.01) allowed against the Keras model on `validation_data`. If full
            int8 loses more, the tensors with the largest quantization error are
            kept float, the fewest that bring the loss within bounds
            (`ExportResult.selection.kept_float`).
        validation_data: `(features, labels)` for `max_accuracy_drop`.
        rnn_layout: `"fused"`: each LSTM becomes one fused op (the smallest file,
            the default for float modes). `"unrolled"`: RNNs are unrolled over the
            fixed sequence length (the default for int8 / int16x8). Measured on
            the `small` preset on AV-digits: the fused int8 LSTM lost 9.7 points of
            accuracy and ran 1.3x slower than unrolled int8, which lost 0.3.
        compact: Drop the names of internal tensors (signature names stay).
        saved_model_dir: Reuse a SavedModel that `export_saved_model(model, dir,
            rnn_layout=...)` wrote (same model, same layout) instead of writing
            one: saves about half of each conversion when exporting several modes.
        tokenizer: Optional `tfmm.data.TextTokenizer`, saved next to the model as
            `<name>.vocab.json` for the app.
        class_names: Optional class names, saved as `<name>.labels.txt`.
        metadata: Embed TFLite Metadata in the file (`tfmm.export.metadata`):
            model name and version, each input's meaning, normalization and range,
            and the labels / vocabulary (given above) as associated files.
        layer_errors: int8 only: also measure each tensor's quantization
            error on the calibration data (one more calibrated conversion with
            the QuantizationDebugger) into `ExportResult.layer_errors`.
        per_channel_dense: `int8` / `int16x8`: one weight scale per output unit of
            dense layers (the LSTM's matmuls included) instead of one per layer.
            Off by default, like TFMOT's QAT (per-tensor `Dense` kernels) so PTQ
            and QAT files quantize alike; convolutions stay per-channel either
            way. Measured on the trained `small` preset (`benchmarks/run.py`):
            per-tensor dense 4 KB smaller (0.297x vs 0.303x the float32 file)
            at the same test accuracy.
        polyphase: Compute each strided Conv1D that reads a 1-channel signal (the
            audio branch's first layer) as a stride-1 Conv1D on the samples regrouped
            by the stride: the same function; measured 3x faster in int8 on AVX2
            (`benchmarks/speed_profile.py`). False keeps the layer as written.
        verbose: 1 prints the steps of a selective search.
        config: An `ExportConfig` holding the choices above at once (then the
            keyword arguments for them are ignored).

    Returns:
        An `ExportResult`.

    Raises:
        TypeError: `model` is a Keras 3 model.
        ConfigError: Unknown mode, a path not ending in `.tflite`, missing
            calibration or validation data, or a selective option without int8.
        ExportError: The converter failed, or `max_accuracy_drop` cannot be met
            (no file is left behind).

    Example:
        >>> x, y = tfmm.data.load_av_digits("validation")
        >>> result = tfmm.export.export_tflite(model, "model_int8.tflite",
        ...                                    representative_data=x)  # doctest: +SKIP
        >>> result.summary.inputs[0].dtype  # doctest: +SKIP
        'int8'
    """
    require_model(model)
    check_keras2(model)
    if config is None:
        config = ExportConfig(
            quantization=quantization, num_calibration_samples=num_calibration_samples, int8_io=int8_io,
            prefer=prefer, max_accuracy_drop=max_accuracy_drop, rnn_layout=rnn_layout, compact=compact,
            per_channel_dense=per_channel_dense, layer_errors=layer_errors, polyphase=polyphase)
    elif not isinstance(config, ExportConfig):
        raise ConfigError(f"`config` must be a tfmm.export.ExportConfig. Received: {type(config).__name__}")
    if not isinstance(path, (str, os.PathLike)):
        raise ConfigError(f"`path` must be a file path ending in .tflite. Received: {path!r}")
    path = os.fspath(path)
    if not path.endswith(".tflite"):
        raise ConfigError(f"`path` must end in .tflite. Received: {path!r}")
    check_output_path(path, argname="path", suffixes=(".tflite",))  # before minutes of conversion
    mode = config.mode
    if mode.calibrated and representative_data is None:
        raise ConfigError(
            f"quantization={mode.name!r} needs `representative_data` (about 100 typical "
            "examples, e.g. the validation features) to calibrate activation ranges."
        )
    if config.max_accuracy_drop is not None and validation_data is None:
        raise ConfigError(
            "`max_accuracy_drop` needs `validation_data=(features, labels)` to measure "
            "the int8 file's accuracy against the Keras model."
        )
    int_inputs = [t.name.split(":")[0] for t in model.inputs if t.dtype.is_integer]
    if mode.name == "int16x8" and int_inputs:
        raise ExportError(
            f"int16x8 cannot be calibrated for integer inputs {int_inputs} with TF "
            f"{tf.__version__}: the converter fails with 'Max and min for dynamic tensors "
            "should be recorded'. Use 'int8' (token ids stay int32) or export a model "
            "without the text branch."
        )
    calibration = None
    if mode.calibrated:
        calibration = representative_dataset(
            representative_data, num_samples=config.num_calibration_samples, model=model
        )
    start = time.perf_counter()
    with scratch_dir("export") as tmp:
        saved = saved_model_dir or export_saved_model(model, os.path.join(tmp, "saved_model"),
                                                      rnn_layout=config.layout, polyphase=config.polyphase)
        selection = None
        if config.selective:
            content, selection = select_int8(saved, calibration, model, config, validation_data,
                                             progress=print if verbose else None)
        else:
            converter = mode.configure(new_converter(saved), calibration, int8_io=config.int8_io,
                                       per_channel_dense=config.per_channel_dense)
            content = _convert(converter, model, mode.name)
            if config.compact:  # selective candidates are compacted already
                content = compact_tflite(content)
        if mode.name == "int8":
            content, widened = widen_degenerate_scales(content)
            if widened:
                warnings.warn(
                    f"{len(widened)} int8 op(s) of {model.name!r} had an output range the calibration data "
                    f"never opened (XNNPACK refuses those scales); their output scale was widened: "
                    f"{'; '.join(widened[:5])}{' ...' if len(widened) > 5 else ''}. Calibrate with more "
                    "varied representative_data to avoid it.", ExportWarning, stacklevel=2)
        _check_loadable(content, os.path.join(tmp, "candidate.tflite"), model, mode.name)
        if metadata:
            content = embed_metadata(content, inspect_tflite(os.path.join(tmp, "candidate.tflite")),
                                     name=model.name, version=f"tfmm {__version__}, {mode.name}",
                                     tokenizer=tokenizer, class_names=class_names, compact=config.compact)
            _check_loadable(content, os.path.join(tmp, "candidate.tflite"), model, mode.name)
        errors = ()
        if config.layer_errors and mode.name == "int8":
            errors = measure_layer_errors(saved, calibration, fully_quantize=config.int8_io)
    seconds = time.perf_counter() - start
    atomic_write_bytes(path, content)
    side = write_sidecars(path, tokenizer=tokenizer, class_names=class_names)
    summary = inspect_tflite(path)
    return ExportResult(
        path=path,
        mode=mode.name,
        size_bytes=summary.size_bytes,
        gzip_bytes=summary.gzip_bytes,
        summary=summary,
        conversion_seconds=round(seconds, 2),
        side_files=tuple(side),
        rnn_layout=config.layout,
        selection=selection,
        layer_errors=errors,
    )


def _check_loadable(content, scratch_path, model, quantization):
    """Raise `ExportError` (before anything is written) if LiteRT cannot prepare `content`."""
    from ai_edge_litert.tools import flatbuffer_utils

    with open(scratch_path, "wb") as f:
        f.write(content)
    try:
        TFLiteRunner(scratch_path)
    except ExportError as e:
        graph = flatbuffer_utils.read_model_from_bytearray(bytearray(content))
        zero = [t for g in graph.subgraphs for t in g.tensors
                if t.quantization is not None and t.quantization.scale is not None
                and len(t.quantization.scale) and not np.all(t.quantization.scale)]
        hint = (f" {len(zero)} tensor(s) got a zero quantization scale (calibration saw only zeros "
                "there): calibrate with more varied `representative_data`, fine-tune longer, or "
                "export with quantization='dynamic'." if zero else "")
        found = re.search(r"model \((.*)\)\. Re-export", str(e), re.S)
        reason = found.group(1) if found else str(e)
        reason = re.sub(r"(failed to create XNNPACK runtime)+", r"\1: ", reason)  # LiteRT repeats it per partition
        if "XNNPACK" in reason:
            rejected = ops_xnnpack_rejects(content)
            if rejected:
                hint += " XNNPACK rejects " + "; ".join(rejected) + "."
        raise ExportError(
            f"The {quantization} file the converter made for {model.name!r} cannot be prepared by "
            f"LiteRT ({reason}); nothing was written.{hint}"
        ) from None


def _convert(converter, model, quantization):
    try:
        # The converter logs from C++ and warns about its internal calibration
        # interpreter; both are noise unless it fails (then they are replayed).
        with native_stderr_captured(), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*tf.lite.Interpreter is deprecated")
            return converter.convert()
    except Exception as e:
        lines = [l for l in str(e).splitlines() if "error" in l.lower()] or str(e).splitlines()
        raise ExportError(
            f"Converting {model.name!r} to {quantization} TFLite failed: {lines[0].strip()[:500]}"
        ) from e
