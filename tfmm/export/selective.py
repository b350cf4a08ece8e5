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

import dataclasses
import os

from tfmm._files import scratch_dir
from tfmm.errors import ExportError
from tfmm.export.calibrated import CalibratedModel
from tfmm.export.inspect import inspect_tflite

__all__ = ["Selection", "CalibratedModel", "select_for_accuracy", "select_for_latency", "select_int8"]

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


def _scored(content, score, say=None):
    """`score(path)` of a candidate file, or None (said, then skipped) when LiteRT cannot prepare it."""
    with scratch_dir("candidate") as folder:
        path = os.path.join(folder, "candidate.tflite")
        with open(path, "wb") as f:
            f.write(content)
        try:
            return score(path)
        except ExportError as e:
            if say is not None:
                say(f"candidate skipped: LiteRT cannot prepare it ({str(e).splitlines()[0][:200]})")
            return None


def _figure(value):
    return "fails to prepare" if value is None else f"{value:.4f}"


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
    baseline = _scored(content, accuracy_of, say)
    trials = [((), baseline)]
    if baseline is not None and baseline >= target:
        return content, Selection("accuracy", (), baseline, baseline, target, tuple(trials))
    ranked = [name for name, _, _ in calibrated.ranked_tensors()]

    def attempt(k):
        candidate = finish(calibrated.quantize(denylisted_nodes=ranked[:k]))
        accuracy = _scored(candidate, accuracy_of, say)
        trials.append((tuple(ranked[:k]), accuracy))
        say(f"{k} tensor(s) float: accuracy {_figure(accuracy)} (target {target:.4f})")
        return candidate, (-1.0 if accuracy is None else accuracy)  # a file that does not prepare never wins

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
            f"{_figure(baseline)} and every ranked tensor left float gave {_figure(trials[-1][1])}. "
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
    baseline = _scored(content, latency_of, say)
    best = float("inf") if baseline is None else baseline  # any candidate that prepares beats one that does not
    op_types = _scored(content, lambda path: inspect_tflite(path).op_histogram) or {}  # the full-int8 file's ops
    kept, trials = [], [((), baseline)]
    for op in sorted(op for op in op_types if op not in _BOUNDARY_OPS):
        candidate = finish(calibrated.quantize(denylisted_ops=kept + [op]))
        latency = _scored(candidate, latency_of, say)
        trials.append((tuple(kept + [op]), latency))
        say(f"{op} float: p50 {_figure(latency)} ms (best so far {best:.3f} ms)")
        if latency is not None and latency < best * _FASTER:
            kept.append(op)
            best, content = latency, candidate
    return content, Selection("latency", tuple(kept), baseline, best, None, tuple(trials))


def select_int8(saved_model_dir, calibration, model, config, validation_data=None, *, progress=None):
    """Run the selective search an `ExportConfig` asks for; return `(content, Selection)`.

    With `config.max_accuracy_drop`, the target is the Keras model's accuracy on
    `validation_data` minus the drop (`select_for_accuracy`); with
    `config.prefer == "latency"`, op types are kept float where that is faster
    on this CPU (`select_for_latency`). Candidates are compacted when
    `config.compact`.

    Args:
        saved_model_dir: What `export_saved_model` wrote for `model`.
        calibration: The representative-dataset callable.
        model: The Keras model (the accuracy reference).
        config: A selective `tfmm.export.ExportConfig` (int8).
        validation_data: `(features, labels)` for the accuracy search.
        progress: Optional callable taking a message per candidate.

    Returns:
        `(content, Selection)`: the chosen file's bytes and what was kept float.

    Raises:
        ExportError: Calibration failed, or the accuracy target cannot be met.

    Example:
        >>> content, selection = select_int8(saved, calibration, model, config, (x_val, y_val))  # doctest: +SKIP
    """
    from tfmm._metrics import keras_accuracy
    from tfmm.data import as_arrays
    from tfmm.export.benchmark import benchmark_tflite
    from tfmm.export.compact import compact_tflite
    from tfmm.export.verify import verify_tflite
    from tfmm.export.xnnpack import widen_degenerate_scales

    calibrated = CalibratedModel.from_saved_model(saved_model_dir, calibration, fully_quantize=config.int8_io,
                                                  per_channel_dense=config.per_channel_dense)
    def finish(content):  # compacted, and with the output scales XNNPACK refuses widened, as export does
        content = compact_tflite(content) if config.compact else content
        return widen_degenerate_scales(content)[0]

    if config.max_accuracy_drop is not None:
        features, labels = as_arrays(validation_data, model=model)
        target = keras_accuracy(model, (features, labels)) - config.max_accuracy_drop
        return select_for_accuracy(
            calibrated, lambda path: verify_tflite(path, (features, labels)).accuracy, target,
            progress=progress, finish=finish,
        )
    return select_for_latency(
        calibrated, lambda path: benchmark_tflite(path, runs=100).p50_ms, progress=progress, finish=finish,
    )
