"""Data: `tf.data` pipelines, calibration data and the bundled AV-digits dataset.

Every pipeline yields `({"image": ..., "text": ..., "audio": ...}, label)` with
the dtypes the models expect (float32 image / audio, int32 token ids).

Example:
    >>> x, y = tfmm.data.load_av_digits("train")
    >>> train = tfmm.data.from_arrays(x, y, batch_size=64, shuffle=True)
"""

from tfmm.data.arrays import INPUT_DTYPES, input_specs, validate_arrays
from tfmm.data.av_digits import AVDigitsInfo, av_digits_tokenizer, load_av_digits
from tfmm.data.calibration import representative_dataset
from tfmm.data.datasets import as_arrays, as_dataset, from_arrays
from tfmm.data.limits import DataLimits
from tfmm.data.manifest import DataWarning, ManifestData, from_manifest, read_manifest
from tfmm.data.sources import DataSplits, load_splits
from tfmm.data.synthetic import make_synthetic
from tfmm.data.text import TextTokenizer

__all__ = [
    "AVDigitsInfo",
    "DataLimits",
    "DataSplits",
    "DataWarning",
    "INPUT_DTYPES",
    "ManifestData",
    "TextTokenizer",
    "as_arrays",
    "as_dataset",
    "av_digits_tokenizer",
    "from_arrays",
    "from_manifest",
    "input_specs",
    "load_av_digits",
    "load_splits",
    "make_synthetic",
    "read_manifest",
    "representative_dataset",
    "validate_arrays",
]
