"""Selective int8: keep the fewest ops float that buy back accuracy or latency.

Both searches start from one calibrated model (`tf.lite.experimental.
QuantizationDebugger`), so each candidate file costs a re-quantization (well under
a second), not a conversion:
- `select_for_accuracy`: rank the int8 tensors by their error against float
  (RMSE in units of the tensor's scale), then keep the top-k float, k = 1, 2,
  4, ... and a bisection, until the verified accuracy is within the budget.
- `select_for_latency`: for each op type in the int8 file, keep it float if that
  makes the file measurably faster on this CPU (p50, one thread).
"""

import csv
import dataclasses
import io
import os
import warnings

import numpy as np
import tensorflow as tf

from tfmm._quiet import native_stderr_captured
from tfmm._files import scratch_dir
from tfmm.errors import ExportError
from tfmm.export.inspect import inspect_tflite

__all__ = ["Selection", "CalibratedModel", "select_for_accuracy", "select_for_latency"]

_BOUNDARY_OPS = ("QUANTIZE", "DEQUANTIZE", "DELEGATE")
_FASTER = 0.95  # a candidate must beat the current file by 5% (noise on these machines)


@dataclasses.dataclass(frozen=True)
class Selection:
    """What a selective search kept float, and why.

    Attributes:
        goal: `"accuracy"` or `"latency"`.
        kept_float: Tensor names (accuracy) or op types (latency) left float.
        baseline: Full-int8 figure (accuracy, or p50 ms).
        final: The chosen file's figure.
        target: The accuracy that had to be reached (accuracy search only).
        trials: `[(kept_float, figure), ...]` in the order tried.
    """

    goal: str
    kept_float: tuple
    baseline: float
    final: float
    target: float = None
    trials: tuple = ()

    def to_dict(self):
        """Return a JSON-safe dict."""
        return dataclasses.asdict(self)


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
        converter = tf.lite.TFLiteConverter.from_saved_model(saved_model_dir, signature_keys=["serving_default"])
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = calibration
        return cls(converter, calibration, **options)

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


def _scored(content, score):
    with scratch_dir("candidate") as folder:
        path = os.path.join(folder, "candidate.tflite")
        with open(path, "wb") as f:
            f.write(content)
        return score(path)


def select_for_accuracy(calibrated, accuracy_of, target, *, progress=None, finish=None):
    """Keep the fewest highest-error tensors float until accuracy >= `target`.

    Args:
        calibrated: A `CalibratedModel`.
        accuracy_of: Callable `path -> accuracy` (verified on the interpreter).
        target: Accuracy to reach.
        progress: Optional callable taking a message.
        finish: Optional `bytes -> bytes` applied to each candidate (compaction).

    Returns:
        `(content, Selection)`.

    Raises:
        ExportError: Even with every ranked tensor float the target is missed.
    """
    say = progress or (lambda message: None)
    finish = finish or (lambda content: content)
    content = finish(calibrated.quantize())
    baseline = _scored(content, accuracy_of)
    trials = [((), baseline)]
    if baseline >= target:
        return content, Selection("accuracy", (), baseline, baseline, target, tuple(trials))
    ranked = [name for name, _, _ in calibrated.ranked_tensors()]

    def attempt(k):
        candidate = finish(calibrated.quantize(denylisted_nodes=ranked[:k]))
        accuracy = _scored(candidate, accuracy_of)
        trials.append((tuple(ranked[:k]), accuracy))
        say(f"{k} tensor(s) float: accuracy {accuracy:.4f} (target {target:.4f})")
        return candidate, accuracy

    low, k, found = 0, 1, None
    while k <= len(ranked):
        candidate, accuracy = attempt(k)
        if accuracy >= target:
            found = (k, candidate, accuracy)
            break
        low, k = k, k * 2
    if found is None and low < len(ranked):
        candidate, accuracy = attempt(len(ranked))
        if accuracy >= target:
            found = (len(ranked), candidate, accuracy)
    if found is None:
        raise ExportError(
            f"Selective int8 could not reach accuracy {target:.4f}: full int8 gave "
            f"{baseline:.4f} and every ranked tensor left float gave {trials[-1][1]:.4f}. "
            "Raise `max_accuracy_drop`, fine-tune with QAT (tfmm.optimization), or use "
            "quantization='dynamic'."
        )
    high, content, accuracy = found
    while high - low > 1:  # the fewest float tensors that still reach the target
        middle = (low + high) // 2
        candidate, candidate_accuracy = attempt(middle)
        if candidate_accuracy >= target:
            high, content, accuracy = middle, candidate, candidate_accuracy
        else:
            low = middle
    return content, Selection("accuracy", tuple(ranked[:high]), baseline, accuracy, target, tuple(trials))


def select_for_latency(calibrated, latency_of, *, progress=None, finish=None):
    """Keep an op type float when that makes the file faster on this CPU.

    Args:
        calibrated: A `CalibratedModel`.
        latency_of: Callable `path -> p50 ms`.
        progress: Optional callable taking a message.
        finish: Optional `bytes -> bytes` applied to each candidate (compaction).

    Returns:
        `(content, Selection)`; `final` / `baseline` are p50 milliseconds.
    """
    say = progress or (lambda message: None)
    finish = finish or (lambda content: content)
    content = finish(calibrated.quantize())
    baseline = best = _scored(content, latency_of)
    op_types = _scored(content, lambda path: inspect_tflite(path).op_histogram)  # the full-int8 file's ops
    kept, trials = [], [((), baseline)]
    for op in sorted(op for op in op_types if op not in _BOUNDARY_OPS):
        candidate = finish(calibrated.quantize(denylisted_ops=kept + [op]))
        latency = _scored(candidate, latency_of)
        trials.append((tuple(kept + [op]), latency))
        say(f"{op} float: p50 {latency:.3f} ms (best so far {best:.3f} ms)")
        if latency < best * _FASTER:
            kept.append(op)
            best, content = latency, candidate
    return content, Selection("latency", tuple(kept), baseline, best, None, tuple(trials))
