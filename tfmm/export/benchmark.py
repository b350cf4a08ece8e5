"""Latency on this CPU: `benchmark_tflite` (one file) and `compare_latency` (several, in turns).

These machines are shared and noisy: the drift between two moments minutes apart
can exceed the difference between two files. `compare_latency` times every file
once per round, in turns, so the drift hits all alike, and reports the median
over rounds with its spread.
"""

import dataclasses
import time

import numpy as np

from tfmm._args import positive_int
from tfmm.errors import ConfigError
from tfmm.export.interpreter import TFLiteRunner

__all__ = ["LatencyComparison", "LatencyReport", "benchmark_tflite", "compare_latency"]


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


def benchmark_tflite(path, *, num_threads=1, runs=100, warmup=10, inputs=None, seed=0, xnnpack=True):
    """Time single-example inference of a `.tflite` file (LiteRT, XNNPACK on).

    These machines are noisy: compare medians of files measured in one run.

    Args:
        path: The `.tflite` file.
        num_threads: Interpreter threads.
        runs: Timed runs.
        warmup: Untimed runs first (XNNPACK packs weights on the first call).
        inputs: Optional example `{name: array (1, ...)}`; random by default.
        seed: Seed for the random example.
        xnnpack: Run with LiteRT's default XNNPACK delegate (False: builtin kernels).

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
    times = _timer(path, num_threads, inputs, seed, warmup, xnnpack)(runs)
    return LatencyReport(
        p50_ms=float(np.percentile(times, 50)),
        p90_ms=float(np.percentile(times, 90)),
        mean_ms=float(times.mean()),
        runs=runs,
        num_threads=num_threads,
    )


def _timer(path, num_threads, inputs, seed, warmup, xnnpack=True):
    """A function `runs -> array of ms` timing `path` (interpreter built and warmed up once)."""
    runner = TFLiteRunner(path, num_threads=num_threads, xnnpack=xnnpack)
    feed = inputs if inputs is not None else _example_inputs(runner, seed)
    # Quantize once: only the interpreter call is timed.
    feed = {k: runner._quantize(feed[k], d) for k, d in runner.input_details.items()}
    call = runner.invoke  # includes the state reset an app does before each example
    for _ in range(warmup):
        call(feed)

    def timed(runs):
        times = np.empty(runs)
        for i in range(runs):
            start = time.perf_counter()
            call(feed)
            times[i] = (time.perf_counter() - start) * 1000.0
        return times

    return timed


@dataclasses.dataclass(frozen=True)
class LatencyComparison:
    """One file's latency from `compare_latency`, in milliseconds.

    Attributes:
        p50_ms: Median over rounds of each round's p50.
        low_ms: Fastest round's p50.
        high_ms: Slowest round's p50.
        rounds: Each round's p50, in order.
        ratio: `p50_ms` divided by the first file's `p50_ms`.
        num_threads: Interpreter threads.
    """

    p50_ms: float
    low_ms: float
    high_ms: float
    rounds: tuple
    ratio: float
    num_threads: int

    def to_dict(self):
        """Return a JSON-safe dict."""
        return {**dataclasses.asdict(self), "rounds": list(self.rounds)}


def compare_latency(paths, *, rounds=5, runs=100, warmup=10, num_threads=1, seed=0, xnnpack=True):
    """Time several `.tflite` files in interleaved turns; report medians with spread.

    Each round times every file with `runs` single-example runs (same random
    example per file); a file's figure is the median over rounds of its p50,
    and `ratio` compares it with the first file (put the reference first).

    Args:
        paths: `{name: path}` (ordered) or a list of paths (named by path).
        rounds: Rounds of turns (>= 1; 5 or more for a stable median).
        runs: Timed runs per file and round.
        warmup: Untimed runs per file before the first round.
        num_threads: Interpreter threads.
        seed: Seed for the random examples.
        xnnpack: Run with LiteRT's default XNNPACK delegate (False: builtin kernels);
            a `(path, xnnpack)` pair in `paths` sets it for one file.

    Returns:
        `{name: LatencyComparison}` in the order given.

    Raises:
        ConfigError: Empty `paths`, or `rounds` / `runs` / `num_threads` not positive.
        ExportError: A file cannot be read.

    Example:
        >>> turns = tfmm.export.compare_latency({"float32": "f.tflite", "int8": "q.tflite"})  # doctest: +SKIP
        >>> round(turns["int8"].ratio, 2)  # doctest: +SKIP
        0.61
    """
    if not isinstance(paths, dict):
        paths = {str(p): p for p in (paths or ())}
    if not paths:
        raise ConfigError("`paths` must name at least one .tflite file, e.g. {'float32': 'f.tflite'}.")
    positive_int(rounds, "rounds")
    positive_int(runs, "runs")
    positive_int(warmup, "warmup", minimum=0)
    timers = {}
    for name, path in paths.items():
        path, delegate = path if isinstance(path, tuple) else (path, xnnpack)
        timers[name] = _timer(path, num_threads, None, seed, warmup, delegate)
    per_round = {name: [] for name in paths}
    for _ in range(rounds):
        for name, timed in timers.items():
            per_round[name].append(float(np.percentile(timed(runs), 50)))
    first = float(np.median(per_round[next(iter(paths))]))
    return {name: LatencyComparison(p50_ms=float(np.median(r)), low_ms=min(r), high_ms=max(r), rounds=tuple(r),
                                    ratio=float(np.median(r)) / first, num_threads=num_threads)
            for name, r in per_round.items()}
