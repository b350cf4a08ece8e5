"""Accuracy and the export -> verify -> benchmark chain, written once.

`tfmm demo`, `tfmm export` and `make bench` all measure an exported file the
same way: verify it on the test split against the Keras model (LiteRT
interpreter), then time it at one or more thread counts.
"""

import dataclasses

from tfmm._metrics import keras_accuracy
from tfmm.errors import ConfigError

__all__ = ["FileMeasurement", "export_and_measure", "keras_accuracy", "measure_file"]


@dataclasses.dataclass(frozen=True)
class FileMeasurement:
    """An exported file, verified and timed.

    Attributes:
        export: The `tfmm.export.ExportResult`.
        verification: The `tfmm.export.VerificationReport` on the test data.
        latency: `{num_threads: LatencyReport}`.
    """

    export: object
    verification: object
    latency: dict

    @property
    def p50_ms(self):
        """p50 latency at the first thread count measured."""
        return next(iter(self.latency.values())).p50_ms

    def to_row(self):
        """Return the flat, JSON-safe figures tfmm's tables and reports use.

        Returns:
            A dict: `path`, `mode`, `size_bytes`, `gzip_bytes`, `accuracy`,
            `agreement`, `reference_accuracy`, `conversion_s`, `float_ops`,
            `rnn_layout`, `kept_float`, and `p50_ms_<n>t` / `p90_ms_<n>t` per
            thread count (`p50_ms` / `p90_ms` for the first).

        Example:
            >>> measurement.to_row()["p50_ms_1t"]  # doctest: +SKIP
            0.41
        """
        result, report = self.export, self.verification
        row = {
            "path": result.path, "mode": result.mode, "size_bytes": result.size_bytes,
            "gzip_bytes": result.gzip_bytes, "accuracy": report.accuracy, "agreement": report.agreement,
            "reference_accuracy": report.reference_accuracy, "conversion_s": result.conversion_seconds,
            "float_ops": result.float_ops, "rnn_layout": result.rnn_layout,
            "kept_float": list(result.selection.kept_float) if result.selection else [],
        }
        for threads, latency in self.latency.items():
            row[f"p50_ms_{threads}t"] = round(latency.p50_ms, 4)
            row[f"p90_ms_{threads}t"] = round(latency.p90_ms, 4)
        first = next(iter(self.latency.values()))
        row.update(p50_ms=round(first.p50_ms, 4), p90_ms=round(first.p90_ms, 4))
        return row


def measure_file(result, model, test, *, runs=100, threads=(1,), progress=False):
    """Verify an exported file on `test` against `model`, then time it.

    Args:
        result: An `ExportResult` (from `tfmm.export.export_tflite`).
        model: The Keras model it was exported from (the reference).
        test: `(features, labels)` to verify on.
        runs: Timed runs per thread count.
        threads: Thread counts to time at.
        progress: Show a progress bar while verifying.

    Returns:
        A `FileMeasurement`.

    Raises:
        ExportError: The file does not run.
        DataError: Bad test data.

    Example:
        >>> m = tfmm.evaluate.measure_file(result, model, (x_test, y_test))  # doctest: +SKIP
        >>> m.verification.agreement  # doctest: +SKIP
        0.993
    """
    from tfmm.export import benchmark_tflite, verify_tflite

    if not threads:
        raise ConfigError(f"`threads` must name at least one thread count, e.g. (1,). Received: threads={threads!r}")
    report = verify_tflite(result.path, test, reference_model=model, progress=progress)
    latency = {n: benchmark_tflite(result.path, num_threads=n, runs=runs) for n in threads}
    return FileMeasurement(export=result, verification=report, latency=latency)


def export_and_measure(model, path, test, *, runs=100, threads=(1,), progress=False, **export_options):
    """Export `model` to `path`, then verify and time the file (`measure_file`).

    Args:
        model: A `tf_keras` model.
        path: The `.tflite` file to write.
        test: `(features, labels)` to verify on.
        runs: Timed runs per thread count.
        threads: Thread counts to time at.
        progress: Show a progress bar while verifying.
        **export_options: Passed to `tfmm.export.export_tflite` (`quantization`,
            `representative_data`, `tokenizer`, ...).

    Returns:
        A `FileMeasurement`.

    Raises:
        ConfigError: Bad export options.
        ExportError: Conversion failed or the file does not run.

    Example:
        >>> m = tfmm.evaluate.export_and_measure(model, "m.tflite", (x_test, y_test),
        ...                                      quantization="int8", representative_data=x_val)  # doctest: +SKIP
    """
    from tfmm.export import export_tflite

    result = export_tflite(model, path, **export_options)
    return measure_file(result, model, test, runs=runs, threads=threads, progress=progress)
