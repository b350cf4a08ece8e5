"""`CalibratedModel`: one calibration, many int8 files (TensorFlow's QuantizationDebugger).

Selective int8 re-quantizes it with parts left float (well under a second per
candidate, not a conversion), and `tfmm.export.inspect.layer_errors` ranks its
tensors by their int8 error.
"""

import csv
import io
import warnings

import numpy as np
import tensorflow as tf

from tfmm._quiet import native_stderr_captured
from tfmm.errors import ExportError

__all__ = ["CalibratedModel"]


class CalibratedModel:
    """A calibrated TFLite model that can be quantized with parts left float.

    Args:
        converter: A `TFLiteConverter` with `optimizations` and
            `representative_dataset` set; it is modified (build a fresh one for
            any other conversion).
        calibration: The callable behind `representative_dataset` (dicts).
        fully_quantize: int8 inputs / outputs for float tensors.
        per_channel_dense: One weight scale per output unit of dense layers
            (see `export_tflite`).

    Raises:
        ExportError: Calibration failed.
    """

    def __init__(self, converter, calibration, *, fully_quantize=True, per_channel_dense=False):
        self.fully_quantize = fully_quantize
        self.per_channel_dense = per_channel_dense
        self._calibration = calibration

        def debug_dataset():
            order = [d["name"] for d in self._debugger._quant_interpreter.get_input_details()]
            for example in calibration():
                yield [np.asarray(example[_input_key(name, example)]) for name in order]

        try:
            with native_stderr_captured(), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                self._debugger = tf.lite.experimental.QuantizationDebugger(
                    converter=converter, debug_dataset=debug_dataset
                )
        except Exception as e:
            raise ExportError(f"Calibrating for selective int8 failed: {str(e).splitlines()[0]}") from e

    @classmethod
    def from_saved_model(cls, saved_model_dir, calibration, **options):
        """Calibrate a fresh converter of `saved_model_dir`'s serving signature.

        Args:
            saved_model_dir: What `export_saved_model` wrote.
            calibration: The callable behind `representative_dataset` (dicts).
            **options: `fully_quantize`, `per_channel_dense`.

        Returns:
            A `CalibratedModel`.

        Example:
            >>> calibrated = CalibratedModel.from_saved_model(saved, calibration)  # doctest: +SKIP
        """
        from tfmm.export.options import new_converter

        return cls(new_converter(saved_model_dir, calibration), calibration, **options)

    def quantize(self, *, denylisted_nodes=(), denylisted_ops=()):
        """Return the bytes of the int8 model with the given nodes / op types float."""
        # What `QuantizationDebugger.get_nondebug_quantized_model` does, plus the
        # dense-layer option it does not pass on.
        from tensorflow.lite.python import convert

        with native_stderr_captured(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return convert.mlir_quantize(
                self._debugger.calibrated_model,
                fully_quantize=self.fully_quantize,
                denylisted_nodes=list(denylisted_nodes) or None,
                denylisted_ops=list(denylisted_ops) or None,
                disable_per_channel_for_dense_layers=not self.per_channel_dense,
            )

    def ranked_tensors(self):
        """Return `[(tensor_name, op_name, rmse_over_scale)]`, largest error first."""
        with native_stderr_captured(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self._debugger.options = tf.lite.experimental.QuantizationDebugOptions()
            self._debugger.run()
            buffer = io.StringIO()
            self._debugger.layer_statistics_dump(buffer)
        rows = []
        for row in csv.DictReader(io.StringIO(buffer.getvalue())):
            scale = float(row["scale"]) or 1.0
            error = float(np.sqrt(float(row["mean_squared_error"])) / scale)
            if np.isfinite(error):
                rows.append((row["tensor_name"], row["op_name"], error))
        return sorted(rows, key=lambda r: -r[2])


def _input_key(tensor_name, example):
    """Map `serving_default_text:0` to the example's key `text`."""
    base = tensor_name.split(":")[0]
    for key in example:
        if base == key or base.endswith("_" + key):
            return key
    raise ExportError(f"No calibration input matches the model input {tensor_name!r}.")
