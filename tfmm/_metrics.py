"""Top-1 accuracy, written once: of predictions, and of a Keras model on data.

Public as `tfmm.evaluate.keras_accuracy`; it lives down here so that export
(which measures accuracy while it picks ops to keep float) can use it too.
"""

import numpy as np

__all__ = ["keras_accuracy", "keras_predict", "top1_accuracy"]


def top1_accuracy(probabilities, labels):
    """Fraction of rows whose largest probability is at the label's index."""
    return float(np.mean(np.asarray(probabilities).argmax(-1) == np.asarray(labels)))


def keras_predict(model, features):
    """Class probabilities of a Keras model, in batches of 256, silently."""
    return model.predict(features, batch_size=256, verbose=0)


def keras_accuracy(model, data):
    """Top-1 accuracy of a Keras model on `(features, labels)` arrays.

    Args:
        model: A `tf_keras` classifier.
        data: `(features, labels)`: a dict (or list) of arrays and integer labels.

    Returns:
        A float in [0, 1].

    Example:
        >>> tfmm.evaluate.keras_accuracy(model, (x_test, y_test))  # doctest: +SKIP
        0.922
    """
    features, labels = data
    return top1_accuracy(keras_predict(model, features), labels)
