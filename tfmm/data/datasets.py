"""Any accepted data form -> numpy arrays or a batched `tf.data.Dataset`.

The one place tfmm turns "a dataset, a `(features, labels)` tuple or a dict of
arrays" into what a stage needs: `as_arrays` (verification, calibration),
`from_arrays` / `as_dataset` (training and evaluation).
"""

import numpy as np
import tensorflow as tf

from tfmm.data.arrays import named_features, validate_arrays
from tfmm.errors import DataError

__all__ = ["as_arrays", "as_dataset", "from_arrays"]


def _dataset_examples(dataset):
    """Yield `(features, label-or-None)` one example at a time from a dataset."""
    spec = dataset.element_spec
    features_spec = spec[0] if isinstance(spec, tuple) else spec
    if not isinstance(features_spec, dict):
        raise DataError("A dataset must yield feature dicts, or (features, labels) pairs.")
    batched = any(s.shape.rank and s.shape[0] is None for s in features_spec.values())
    for element in dataset.as_numpy_iterator():
        x, y = element[:2] if isinstance(element, tuple) else (element, None)
        if not batched:
            yield x, y
            continue
        for i in range(len(next(iter(x.values())))):
            yield {k: v[i] for k, v in x.items()}, (None if y is None else y[i])


def as_arrays(data, *, limit=None, model=None):
    """Turn any accepted data form into numpy `(features, labels)`.

    Args:
        data: A dict of arrays, a `(features, labels)` tuple, or a
            `tf.data.Dataset` (batched or not) of feature dicts or
            `(features, labels)` pairs.
        limit: Keep only the first `limit` examples (a dataset is read no further).
        model: Optional model whose input order names features given as a list
            (list-input models) or as one array (one-input models).

    Returns:
        `(features, labels)`: a dict of arrays, and labels or None.

    Raises:
        DataError: `data` is none of those forms.

    Example:
        >>> x, y = tfmm.data.as_arrays(tfmm.data.from_arrays(features, labels), limit=10)  # doctest: +SKIP
    """
    if isinstance(data, tuple) and len(data) == 2 and isinstance(data[0], (dict, list, tuple, np.ndarray)):
        features, labels = named_features(data[0], model), data[1]
    elif isinstance(data, (dict, list)):
        features, labels = named_features(data, model), None
    elif isinstance(data, tf.data.Dataset):
        examples = []
        for example in _dataset_examples(data):
            if limit is not None and len(examples) >= limit:
                break
            examples.append(example)
        if not examples:
            return {}, None
        features = {k: np.stack([x[k] for x, _ in examples]) for k in examples[0][0]}
        has_labels = examples[0][1] is not None
        labels = np.stack([y for _, y in examples]) if has_labels else None
    else:
        raise DataError(
            "tfmm expects a dict of arrays (or, with a model, a list in its input order), "
            f"(features, labels) or a tf.data.Dataset. Received: {type(data).__name__}"
        )
    if not isinstance(features, dict):
        raise DataError(
            f"Features must be a dict keyed by input name. Received: {type(features).__name__}; for a model "
            "with one input or list inputs, pass `model=` so tfmm can name them."
        )
    if limit is not None:
        features = {k: np.asarray(v)[:limit] for k, v in features.items()}
        labels = None if labels is None else np.asarray(labels)[:limit]
    return features, labels


def from_arrays(
    features,
    labels=None,
    *,
    batch_size=32,
    shuffle=False,
    seed=0,
    cache=True,
    drop_remainder=False,
    model=None,
    num_classes=None,
    task="multiclass",
):
    """Make a batched `tf.data.Dataset` of `(features, labels)` from numpy arrays.

    Args:
        features: Dict `{input_name: array}` (image / text / audio).
        labels: Labels, or None for a features-only dataset.
        batch_size: Examples per batch.
        shuffle: Reshuffle every epoch (deterministically from `seed`).
        seed: Shuffle seed.
        cache: Cache the elements in memory after the first pass.
        drop_remainder: Drop the last, smaller batch.
        model: Optional model whose input names, shapes and dtypes are enforced.
        num_classes: Optional: labels must lie in `[0, num_classes)`.
        task: `"multiclass"` or `"multilabel"`.

    Returns:
        A prefetched `tf.data.Dataset` of `({name: tensor}, labels)` batches (or
        feature dicts alone when `labels` is None).

    Raises:
        DataError: As `validate_arrays`, or `batch_size` is not positive.

    Example:
        >>> x, y = tfmm.data.load_av_digits("train")
        >>> ds = tfmm.data.from_arrays(x, y, batch_size=64, shuffle=True)
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size <= 0:
        raise DataError(f"`batch_size` must be a positive integer. Received: {batch_size!r}")
    features, labels = validate_arrays(
        features, labels, model=model, num_classes=num_classes, task=task
    )
    elements = features if labels is None else (features, labels)
    ds = tf.data.Dataset.from_tensor_slices(elements)
    if cache:
        ds = ds.cache()
    if shuffle:
        size = len(next(iter(features.values())))
        ds = ds.shuffle(size, seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size, drop_remainder=drop_remainder)
    return ds.prefetch(tf.data.AUTOTUNE)


def as_dataset(data, name="data", *, model=None, batch_size=32, shuffle=False, seed=0):
    """Return `data` as a batched `tf.data.Dataset` of `(features, labels)`.

    The one place tfmm accepts "a dataset or arrays" for training and evaluation
    (`optimize`, `distill`, the stages).

    Args:
        data: A `tf.data.Dataset` of `(features, labels)` batches (returned as it
            is), a `(features, labels)` tuple of arrays, or None.
        name: The argument's name, used in error messages.
        model: Optional model whose input names, shapes, dtypes, token ids and
            classes the arrays are checked against before any graph runs.
        batch_size: Batch size for arrays.
        shuffle: Shuffle arrays every epoch.
        seed: Shuffle seed.

    Returns:
        A `tf.data.Dataset`, or None when `data` is None.

    Raises:
        DataError: `data` is of another kind, or its arrays are bad (see
            `validate_arrays`).

    Example:
        >>> x, y = tfmm.data.load_av_digits("validation")
        >>> ds = tfmm.data.as_dataset((x, y), "validation_data")
    """
    if data is None or isinstance(data, tf.data.Dataset):
        return data
    if isinstance(data, tuple) and len(data) == 2:
        return from_arrays(data[0], data[1], batch_size=batch_size, shuffle=shuffle, seed=seed, model=model)
    raise DataError(
        f"`{name}` must be a tf.data.Dataset of (features, labels) batches or a "
        f"(features, labels) tuple of arrays. Received: {type(data).__name__}"
    )
