"""Representative (calibration) data for int8 conversion: batch-1 dicts, exact dtypes."""

import numpy as np

from tfmm.data.arrays import named_features, validate_arrays
from tfmm.data.datasets import as_arrays
from tfmm.errors import DataError

__all__ = ["representative_dataset"]


def representative_dataset(data, *, num_samples=100, model=None):
    """Return a calibration generator for `TFLiteConverter.representative_dataset`.

    Each call yields up to `num_samples` single examples as dicts
    `{input_name: array of shape (1, ...)}`, cast to the model's input dtypes
    (float32 for image / audio, int32 for token ids: float64 calibration data is
    what makes the raw converter fail with "Got value of type FLOAT64").

    Args:
        data: Dict of arrays, `(features, labels)`, or a `tf.data.Dataset`
            (batched or not) of feature dicts or `(features, labels)`; with a
            `model`, also a list of arrays in its input order (list-input
            models) or a bare array (one-input models).
        num_samples: How many examples to draw (the first ones, deterministic).
        model: Optional `tf_keras.Model`; keys, shapes and dtypes follow its inputs.

    Returns:
        A zero-argument callable returning an iterator of dicts.

    Raises:
        DataError: `num_samples` is not positive, the data is empty or malformed.

    Example:
        >>> x, _ = tfmm.data.load_av_digits("validation")
        >>> gen = tfmm.data.representative_dataset(x, num_samples=10)
        >>> next(iter(gen()))["image"].shape
        (1, 28, 28, 1)
    """
    if isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples <= 0:
        raise DataError(f"`num_samples` must be a positive integer. Received: {num_samples!r}")
    if model is not None and isinstance(data, (np.ndarray, list)):
        data = named_features(data, model)  # one array, or one array per input in order
    features, _ = as_arrays(data, limit=num_samples, model=model)
    count = len(next(iter(features.values()))) if features else 0
    if not count:
        raise DataError("representative_dataset got no examples: the data is empty.")
    features, _ = validate_arrays(features, model=model)

    def generator():
        for i in range(count):
            yield {k: v[i : i + 1] for k, v in features.items()}

    generator.num_samples = count
    return generator
