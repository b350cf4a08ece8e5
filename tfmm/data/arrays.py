"""In-memory features -> validated, dtype-correct arrays (checked against a model)."""

import numpy as np

from tfmm.errors import DataError

__all__ = ["INPUT_DTYPES", "input_specs", "named_features", "validate_arrays"]

# What the builders' inputs expect: floats for pixels and samples, int32 token ids.
INPUT_DTYPES = {"image": "float32", "text": "int32", "audio": "float32"}


def input_specs(model):
    """Return `{input_name: (shape_without_batch, dtype)}` of a Keras model's inputs.

    Args:
        model: A `tf_keras.Model` with named inputs.

    Returns:
        A dict such as `{"image": ((28, 28, 1), "float32"), "text": ((24,), "int32")}`.

    Example:
        >>> specs = tfmm.data.input_specs(model)  # doctest: +SKIP
    """
    return {
        t.name.split(":")[0]: (tuple(t.shape[1:]), t.dtype.name) for t in model.inputs
    }


def token_limits(model):
    """Return `{input_name: vocabulary size}` for integer inputs that feed an Embedding.

    Args:
        model: A `tf_keras.Model`.

    Returns:
        A dict; inputs whose first consumer is not an `Embedding` are left out.

    Example:
        >>> tfmm.data.arrays.token_limits(model)  # doctest: +SKIP
        {'text': 40}
    """
    from tfmm._keras import keras, unwrap

    limits = {}
    for tensor in model.inputs:
        if not tensor.dtype.is_integer:
            continue
        name = tensor.name.split(":")[0]
        for layer in model.layers:
            inner = unwrap(layer)
            if not isinstance(inner, keras.layers.Embedding):
                continue
            inbound = [t for node in layer.inbound_nodes for t in _flat(node.input_tensors)]
            if any(t is tensor or getattr(t, "name", None) == tensor.name for t in inbound):
                limits[name] = int(inner.input_dim)
    return limits


def _flat(value):
    if isinstance(value, (list, tuple)):
        return [t for v in value for t in _flat(v)]
    if isinstance(value, dict):
        return [t for v in value.values() for t in _flat(v)]
    return [value]


def model_classes(model):
    """The number of classes a one-output classifier predicts, or None."""
    shape = model.outputs[0].shape if len(model.outputs) == 1 else None
    return int(shape[-1]) if shape is not None and shape.rank == 2 and shape[-1] and shape[-1] > 1 else None


def _check_ids(name, array, vocab_size):
    if array.size == 0:
        return
    low, high = int(array.min()), int(array.max())
    if low < 0 or (vocab_size is not None and high >= vocab_size):
        bad = low if low < 0 else high
        example = int(np.flatnonzero((array < 0).any(axis=tuple(range(1, array.ndim))) if low < 0
                                     else (array >= vocab_size).any(axis=tuple(range(1, array.ndim))))[0])
        allowed = f"[0, {vocab_size - 1}]" if vocab_size is not None else ">= 0"
        raise DataError(
            f"`{name}` holds token id {bad} (example {example}), but ids must lie in {allowed}. "
            "Tokenize with the model's own tokenizer (the .vocab.json saved with it)."
        )


def _cast(name, array, dtype):
    integer_target = np.issubdtype(np.dtype(dtype), np.integer)
    if integer_target and np.issubdtype(array.dtype, np.floating):
        if not np.all(np.isfinite(array)) or np.any(array != np.round(array)):
            raise DataError(
                f"`{name}` holds token ids and must be whole numbers; found non-integer "
                "values. Tokenize texts first (tfmm.data.TextTokenizer)."
            )
    return array.astype(dtype)


def named_features(features, model):
    """Return `features` keyed by input name: lists map by the model's input order.

    Args:
        features: A dict, a list / tuple of arrays (one per input of `model`, in
            order), or one array (a one-input `model`).
        model: The `tf_keras.Model` the features are for, or None.

    Returns:
        A dict (or `features` unchanged when there is nothing to map).

    Raises:
        DataError: A list whose length differs from the model's inputs, or a
            list without a model to name its entries.

    Example:
        >>> x = tfmm.data.arrays.named_features([tokens, pixels], model)  # doctest: +SKIP
    """
    if isinstance(features, np.ndarray) and model is not None and len(model.inputs) == 1:
        return {next(iter(input_specs(model))): features}
    if not isinstance(features, (list, tuple)):
        return features
    if model is None:
        raise DataError(
            "tfmm expects a dict of arrays: features must be a non-empty dict keyed by input name, or a "
            f"list in the model's input order with `model=` (or `reference_model=`). Received: a "
            f"{type(features).__name__} of {len(features)} entries and no model to name them."
        )
    names = list(input_specs(model))
    if len(features) != len(names):
        raise DataError(
            f"Features given as a {type(features).__name__} of {len(features)} arrays, but model "
            f"{model.name!r} has {len(names)} inputs {names}; pass one array per input, in that order."
        )
    return dict(zip(names, features))


def validate_arrays(features, labels=None, *, model=None, num_classes=None, task="multiclass"):
    """Check features (and labels) and cast them to the dtypes the model expects.

    Args:
        features: Dict `{input_name: array}`, all with the same first dimension;
            with `model`, also a list / tuple in the order of its inputs, or one
            array for a one-input model.
        labels: Optional labels: integer class ids (multiclass) or a 0/1 matrix
            (multilabel).
        model: Optional `tf_keras.Model`: keys, shapes and dtypes must match its inputs.
        num_classes: Optional number of classes; labels must lie in range.
        task: `"multiclass"` or `"multilabel"`: how labels are read.

    Returns:
        `(features, labels)` as new numpy arrays with the model's dtypes (float32
        image/audio, int32 text) and int32 / float32 labels.

    Raises:
        DataError: Not a dict, unknown or missing keys, different lengths, NaN or
            inf values, wrong shapes, labels out of range.

    Example:
        >>> x, y = tfmm.data.validate_arrays({"image": images}, labels, num_classes=10)  # doctest: +SKIP
    """
    features = named_features(features, model)
    if not isinstance(features, dict) or not features:
        raise DataError(
            "features must be a non-empty dict keyed by input name (image, text, audio). "
            f"Received: {type(features).__name__}"
        )
    specs = input_specs(model) if model is not None else None
    vocab = token_limits(model) if model is not None else {}
    if model is not None and num_classes is None and task == "multiclass":
        num_classes = model_classes(model)
    if specs is not None:
        unknown = sorted(set(features) - set(specs))
        missing = sorted(set(specs) - set(features))
        if unknown:
            raise DataError(
                f"Feature key(s) {unknown} are not inputs of model {model.name!r}, whose "
                f"inputs are {sorted(specs)}. Remove them or build a model with those modalities."
            )
        if missing:
            raise DataError(f"Model {model.name!r} needs input(s) {missing}; features lack them.")
    elif any(k not in INPUT_DTYPES for k in features):
        raise DataError(
            f"Unknown modality key(s) {sorted(set(features) - set(INPUT_DTYPES))}: use "
            f"{sorted(INPUT_DTYPES)}, or pass `model=` to check against its input names."
        )
    out = {}
    lengths = {}
    for name, array in features.items():
        array = np.asarray(array)
        if array.dtype.kind not in "biuf":
            raise DataError(f"`{name}` must be numeric; got dtype {array.dtype}.")
        if array.ndim == 0:
            raise DataError(f"`{name}` must have one entry per example; got a scalar.")
        if len(array) == 0:
            raise DataError(f"`{name}` has no examples (an empty array). Pass at least one example.")
        if array.dtype.kind == "f":
            finite = np.isfinite(array.reshape(len(array), -1)).all(axis=1)
            if not finite.all():
                raise DataError(
                    f"`{name}` contains NaN or inf (first in example "
                    f"{int(np.flatnonzero(~finite)[0])}). Clean or drop those examples "
                    "before training or calibration."
                )
        dtype = specs[name][1] if specs is not None else INPUT_DTYPES.get(name, "float32")
        array = _cast(name, array, dtype)
        if np.issubdtype(array.dtype, np.integer):
            _check_ids(name, array, vocab.get(name))
        if specs is not None:
            array = _fit_shape(name, array, specs[name][0])
        out[name] = array
        lengths[name] = len(array)
    if labels is not None:
        labels = np.asarray(labels)
        lengths["labels"] = len(labels)
    if len(set(lengths.values())) > 1:
        raise DataError(
            f"All arrays must have the same number of examples. Received lengths: {lengths}"
        )
    if labels is not None:
        labels = _check_labels(labels, num_classes, task)
    return out, labels


def _squeezed(shape):
    return tuple(d for d in shape if d != 1)


def _fit_shape(name, array, expected):
    """`array` with examples of the `expected` shape; a size-1 axis more or less is reshaped away.

    `(8000, 1)` audio for a model that reads `(8000,)` (or the other way round)
    holds the same samples: it is reshaped, not refused.
    """
    actual = array.shape[1:]
    expected = tuple(expected)
    if len(expected) == len(actual) and all(e is None or e == a for e, a in zip(expected, actual)):
        return array
    if None not in expected and _squeezed(expected) == _squeezed(actual):
        return array.reshape((len(array),) + expected)
    raise DataError(
        f"`{name}` has examples of shape {actual}, but the model expects {expected}. "
        f"Pass arrays shaped (examples, {', '.join(str(d) for d in expected)}) for input `{name}`."
    )


def _check_labels(labels, num_classes, task):
    if labels.dtype.kind not in "biuf":
        raise DataError(f"Labels must be numeric class ids. Received dtype {labels.dtype}.")
    if task == "multilabel":
        if labels.ndim != 2 or not np.isin(labels, (0, 1)).all():
            raise DataError("Multi-label labels must be a 0/1 matrix (examples, classes).")
        if num_classes is not None and labels.shape[1] != num_classes:
            raise DataError(f"Labels have {labels.shape[1]} columns; num_classes={num_classes}.")
        return labels.astype("float32")
    if labels.dtype == bool:
        raise DataError("Labels are booleans; pass integer class ids (0 / 1 for two classes), e.g. "
                        "labels.astype('int32').")
    whole = labels.dtype.kind in "biu" or (
        labels.dtype.kind == "f" and np.all(np.isfinite(labels)) and np.all(labels == np.round(labels))
    )
    if labels.ndim != 1 or not whole:
        raise DataError(
            f"Multi-class labels must be a vector of integer class ids. Received shape "
            f"{labels.shape}, dtype {labels.dtype}."
        )
    labels = labels.astype("int32")
    if num_classes is not None:
        bad = np.flatnonzero((labels < 0) | (labels >= num_classes))
        if bad.size:
            raise DataError(
                f"Label {int(labels[bad[0]])} of example {int(bad[0])} is out of range: "
                f"labels must lie in [0, {num_classes - 1}] for num_classes={num_classes}."
            )
    elif labels.size and labels.min() < 0:
        raise DataError(f"Labels must be non-negative; found {int(labels.min())}.")
    return labels
