"""`inspect_tflite`: what is inside a `.tflite` file, and is it really int8?"""

import collections
import dataclasses
import gzip
import os

import numpy as np

from tfmm.errors import ExportError
from tfmm.export.interpreter import TFLiteRunner

__all__ = ["TFLiteSummary", "TensorInfo", "inspect_tflite", "gzip_size", "layer_errors"]

_BOUNDARY_OPS = {"QUANTIZE", "DEQUANTIZE", "DELEGATE"}


@dataclasses.dataclass(frozen=True)
class TensorInfo:
    """One input or output of a signature.

    Attributes:
        name: Signature name (`image`, `text`, `audio`, or the output name).
        dtype: numpy dtype name (`int8`, `int32`, `float32`, ...).
        shape: Shape, batch included.
        scale: Quantization scale (0.0 when not quantized).
        zero_point: Quantization zero point.
    """

    name: str
    dtype: str
    shape: tuple
    scale: float
    zero_point: int


@dataclasses.dataclass(frozen=True)
class TFLiteSummary:
    """What `inspect_tflite` finds.

    Attributes:
        path: The file.
        size_bytes: File size.
        gzip_bytes: Size after gzip (level 9): what a download or an APK costs.
        inputs: `TensorInfo` of each signature input.
        outputs: `TensorInfo` of each signature output.
        op_histogram: `{op name: count}`.
        float_ops: `{op name: count}` of ops computing in float (outputs float32),
            QUANTIZE / DEQUANTIZE boundaries excluded. Empty: fully integer.
    """

    path: str
    size_bytes: int
    gzip_bytes: int
    inputs: tuple
    outputs: tuple
    op_histogram: dict
    float_ops: dict

    @property
    def is_fully_integer(self):
        """True when no op computes in float."""
        return not self.float_ops

    def to_dict(self):
        """Return a JSON-safe dict."""
        return dataclasses.asdict(self)


def gzip_size(path):
    """Return the gzip-compressed size (level 9) of a file in bytes.

    Args:
        path: Any file.

    Returns:
        An int.

    Raises:
        ExportError: No file at `path`.

    Example:
        >>> tfmm.export.gzip_size("model.tflite")  # doctest: +SKIP
        81234
    """
    if not isinstance(path, (str, os.PathLike)) or not os.path.isfile(path):
        raise ExportError(f"No file at {path!r}: pass the path of an exported .tflite file.")
    with open(path, "rb") as f:
        return len(gzip.compress(f.read(), compresslevel=9))


def _tensor_info(name, detail):
    scale, zero_point = detail["quantization"]
    return TensorInfo(
        name=name,
        dtype=np.dtype(detail["dtype"]).name,
        shape=tuple(int(d) for d in detail["shape"]),
        scale=float(scale),
        zero_point=int(zero_point),
    )


def inspect_tflite(path):
    """Summarize a `.tflite` file: signature tensors, op histogram, float ops, sizes.

    Args:
        path: The `.tflite` file.

    Returns:
        A `TFLiteSummary`.

    Raises:
        ExportError: The file is missing or not a readable TFLite model.

    Example:
        >>> summary = tfmm.export.inspect_tflite("model_int8.tflite")  # doctest: +SKIP
        >>> summary.is_fully_integer, summary.inputs[0].dtype  # doctest: +SKIP
        (False, 'int8')
    """
    runner = TFLiteRunner(path)
    dtypes = {t["index"]: np.dtype(t["dtype"]).name for t in runner.interpreter.get_tensor_details()}
    histogram, float_ops = collections.Counter(), collections.Counter()
    for op in runner.ops():
        name = op["op_name"]
        histogram[name] += 1
        outputs = [dtypes.get(int(i)) for i in op["outputs"] if int(i) >= 0]
        if name not in _BOUNDARY_OPS and any(d in ("float32", "float16") for d in outputs):
            float_ops[name] += 1
    return TFLiteSummary(
        path=os.fspath(path),
        size_bytes=os.path.getsize(path),
        gzip_bytes=gzip_size(path),
        inputs=tuple(_tensor_info(k, v) for k, v in sorted(runner.input_details.items())),
        outputs=tuple(_tensor_info(k, v) for k, v in sorted(runner.output_details.items())),
        op_histogram=dict(sorted(histogram.items())),
        float_ops=dict(sorted(float_ops.items())),
    )


def layer_errors(saved_model_dir, calibration, *, fully_quantize=True):
    """Measure the int8 error of every quantized tensor of an exported model.

    The error is the RMSE between the float and the int8 tensor on the
    calibration data, in units of the tensor's quantization step (TensorFlow's
    QuantizationDebugger); a fresh calibrated converter is used.

    Args:
        saved_model_dir: What `tfmm.export.export_saved_model` wrote.
        calibration: The representative-dataset callable (batch-1 dicts).
        fully_quantize: int8 inputs / outputs, as in the exported file.

    Returns:
        `({"tensor", "op", "error"}, ...)`, largest error first.

    Raises:
        ExportError: Calibration failed.

    Example:
        >>> worst = layer_errors(saved, calibration)[0]  # doctest: +SKIP
    """
    from tfmm.export.calibrated import CalibratedModel

    ranked = CalibratedModel.from_saved_model(saved_model_dir, calibration, fully_quantize=fully_quantize).ranked_tensors()
    return tuple({"tensor": tensor, "op": op, "error": round(error, 4)} for tensor, op, error in ranked)
