"""TFLite export, verified on the LiteRT interpreter, measured and inspected.

Example:
    >>> result = tfmm.export.export_tflite(model, "m.tflite", quantization="int8",
    ...                                    representative_data=x_val)  # doctest: +SKIP
    >>> tfmm.export.verify_tflite("m.tflite", (x_test, y_test), reference_model=model)  # doctest: +SKIP
    >>> tfmm.export.benchmark_tflite("m.tflite", num_threads=1).p50_ms  # doctest: +SKIP
"""

from tfmm.export.metadata import read_metadata
from tfmm.export.benchmark import LatencyComparison, LatencyReport, benchmark_tflite, compare_latency
from tfmm.export.inspect import TensorInfo, TFLiteSummary, gzip_size, inspect_tflite
from tfmm.export.interpreter import TFLiteRunner
from tfmm.export.compact import compact_tflite
from tfmm.export.options import MODE_TABLE, ExportConfig
from tfmm.export.conv_lowering import PolyphaseConv1D
from tfmm.export.prepare import prepare_for_export
from tfmm.export.rnn import RNN_LAYOUTS, PrefixMaskedLSTM, UnrolledBidirectional, UnrolledLSTM
from tfmm.export.selective import Selection
from tfmm.export.tflite import MODES, PREFERENCES, ExportResult, ExportWarning, export_saved_model, export_tflite
from tfmm.export.verify import VerificationReport, verify_tflite

__all__ = [
    "ExportConfig",
    "ExportResult",
    "ExportWarning",
    "LatencyComparison",
    "LatencyReport",
    "MODES",
    "MODE_TABLE",
    "PREFERENCES",
    "PolyphaseConv1D",
    "PrefixMaskedLSTM",
    "RNN_LAYOUTS",
    "Selection",
    "TFLiteRunner",
    "TFLiteSummary",
    "TensorInfo",
    "UnrolledBidirectional",
    "UnrolledLSTM",
    "VerificationReport",
    "benchmark_tflite",
    "compare_latency",
    "compact_tflite",
    "export_saved_model",
    "export_tflite",
    "gzip_size",
    "inspect_tflite",
    "prepare_for_export",
    "read_metadata",
    "verify_tflite",
]
