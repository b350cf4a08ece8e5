"""Representative (calibration) data for int8 conversion: batch-1 dicts, exact dtypes."""

import itertools

import numpy as np
import tensorflow as tf

from tfmm.data.arrays import validate_arrays
from tfmm.errors import DataError

__all__ = ["representative_dataset"]


def _unbatched_examples(data):
    """Yield feature dicts of numpy arrays, one example each, from any accepted input."""
    if isinstance(data, tuple) and len(data) == 2 and isinstance(data[0], dict):
        data = data[0]
    if isinstance(data, dict):
        n = len(next(iter(data.values())))
        for i in range(n):
            yield {k: np.asarray(v)[i] for k, v in data.items()}
        return
    if isinstance(data, tf.data.Dataset):
        spec = data.element_spec
        if isinstance(spec, tuple):
            data = data.map(lambda x, *_: x)
            spec = spec[0]
        if not isinstance(spec, dict):
            raise DataError(
                "A dataset for calibration must yield feature dicts (or (features, labels))."
            )
        batched = any(s.shape.rank and s.shape[0] is None for s in spec.values())
        for element in data.as_numpy_iterator():
            if batched:
                for i in range(len(next(iter(element.values())))):
                    yield {k: v[i] for k, v in element.items()}
            else:
                yield element
        return
    raise DataError(
        "representative_dataset expects a dict of arrays, (features, labels) or a "
        f"tf.data.Dataset. Received: {type(data).__name__}"
    )


def representative_dataset(data, *, num_samples=100, model=None):
    """Return a calibration generator for `TFLiteConverter.representative_dataset`.

    Each call yields up to `num_samples` single examples as dicts
    `{input_name: array of shape (1, ...)}`, cast to the model's input dtypes
    (float32 for image / audio, int32 for token ids: float64 calibration data is
    what makes the raw converter fail with "Got value of type FLOAT64").

    Args:
        data: Dict of arrays, `(features, labels)`, or a `tf.data.Dataset`
            (batched or not) of feature dicts or `(features, labels)`.
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
    examples = list(itertools.islice(_unbatched_examples(data), num_samples))
    if not examples:
        raise DataError("representative_dataset got no examples: the data is empty.")
    stacked = {k: np.stack([e[k] for e in examples]) for k in examples[0]}
    features, _ = validate_arrays(stacked, model=model)

    def generator():
        for i in range(len(examples)):
            yield {k: v[i : i + 1] for k, v in features.items()}

    generator.num_samples = len(examples)
    return generator
