"""`benchmark_tflite`: latency of one `.tflite` file on this CPU."""

import dataclasses
import time

import numpy as np

from tfmm._args import positive_int
from tfmm.export.interpreter import TFLiteRunner

__all__ = ["LatencyReport", "benchmark_tflite"]


@dataclasses.dataclass(frozen=True)
class LatencyReport:
    """Latency of single-example inference, in milliseconds.

    Attributes:
        p50_ms: Median.
        p90_ms: 90th percentile.
        mean_ms: Mean.
        runs: Timed runs (after warm-up).
        num_threads: Interpreter threads.
    """

    p50_ms: float
    p90_ms: float
    mean_ms: float
    runs: int
    num_threads: int

    def to_dict(self):
        """Return a JSON-safe dict."""
        return dataclasses.asdict(self)


def _example_inputs(runner, seed):
    rng = np.random.default_rng(seed)
    feed = {}
    for name, detail in runner.input_details.items():
        shape, dtype = tuple(detail["shape"]), detail["dtype"]
        if np.issubdtype(dtype, np.integer) and not detail["quantization"][0]:
            feed[name] = rng.integers(0, 8, size=shape).astype(dtype)  # token ids
        else:
            feed[name] = rng.uniform(0, 1, size=shape).astype(np.float32)
    return feed


def benchmark_tflite(path, *, num_threads=1, runs=100, warmup=10, inputs=None, seed=0):
    """Time single-example inference of a `.tflite` file (LiteRT, XNNPACK on).

    These machines are noisy: compare medians of files measured in one run.

    Args:
        path: The `.tflite` file.
        num_threads: Interpreter threads.
        runs: Timed runs.
        warmup: Untimed runs first (XNNPACK packs weights on the first call).
        inputs: Optional example `{name: array (1, ...)}`; random by default.
        seed: Seed for the random example.

    Returns:
        A `LatencyReport`.

    Raises:
        ConfigError: `runs` / `num_threads` not positive, `warmup` negative.
        ExportError: The file cannot be read.

    Example:
        >>> tfmm.export.benchmark_tflite("m.tflite", num_threads=2).p50_ms  # doctest: +SKIP
        0.41
    """
    positive_int(runs, "runs")
    positive_int(warmup, "warmup", minimum=0)
    runner = TFLiteRunner(path, num_threads=num_threads)
    feed = inputs if inputs is not None else _example_inputs(runner, seed)
    # Quantize once: only the interpreter call is timed.
    feed = {k: runner._quantize(feed[k], d) for k, d in runner.input_details.items()}
    call = runner.invoke  # includes the state reset an app does before each example
    for _ in range(warmup):
        call(feed)
    times = np.empty(runs)
    for i in range(runs):
        start = time.perf_counter()
        call(feed)
        times[i] = (time.perf_counter() - start) * 1000.0
    return LatencyReport(
        p50_ms=float(np.percentile(times, 50)),
        p90_ms=float(np.percentile(times, 90)),
        mean_ms=float(times.mean()),
        runs=runs,
        num_threads=num_threads,
    )
