"""Classification heads: softmax (multi-class) or sigmoid (multi-label)."""

from tfmm._keras import keras

__all__ = ["apply_head", "default_loss", "default_metrics"]


def apply_head(x, *, num_classes, task="multiclass", hidden_units=(), dropout=0.0, name="head"):
    """Apply the classification head to the fused vector `x`.

    Args:
        x: `(batch, features)` tensor.
        num_classes: Output width.
        task: `"multiclass"` (softmax) or `"multilabel"` (sigmoid).
        hidden_units: Dense ReLU layers before the output.
        dropout: Dropout rate before the output layer.
        name: Prefix of every layer name; the output layer is `f"{name}_output"`.

    Returns:
        A `(batch, num_classes)` tensor of probabilities.

    Example:
        >>> probs = tfmm.models.apply_head(fused, num_classes=10)  # doctest: +SKIP
    """
    for i, units in enumerate(hidden_units, start=1):
        x = keras.layers.Dense(units, activation="relu", name=f"{name}_dense{i}")(x)
    if dropout:
        x = keras.layers.Dropout(dropout, name=f"{name}_dropout")(x)
    activation = "softmax" if task == "multiclass" else "sigmoid"
    return keras.layers.Dense(num_classes, activation=activation, name=f"{name}_output")(x)


def default_loss(task):
    """Return the loss that matches a head: sparse categorical or binary cross-entropy.

    Args:
        task: `"multiclass"` (integer labels) or `"multilabel"` (0/1 label vectors).

    Returns:
        A `tf_keras` loss instance.

    Example:
        >>> loss = tfmm.models.default_loss("multiclass")
    """
    if task == "multiclass":
        return keras.losses.SparseCategoricalCrossentropy()
    return keras.losses.BinaryCrossentropy()


def default_metrics(task):
    """Return the accuracy metric that matches a head.

    Args:
        task: `"multiclass"` or `"multilabel"`.

    Returns:
        A list with one `tf_keras` metric named `"accuracy"`.

    Example:
        >>> metrics = tfmm.models.default_metrics("multilabel")
    """
    if task == "multiclass":
        return [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]
    return [keras.metrics.BinaryAccuracy(name="accuracy")]
