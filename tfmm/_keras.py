"""The one place tfmm imports Keras (`tf_keras`, Keras 2) and TFMOT from.

Every other module does `from tfmm._keras import keras` so that Keras 3 can never
slip in, and uses `check_keras2` on objects users hand to it. TFMOT is imported on
first use (`tfmot()`): it is slow to import and only optimization needs it.
"""

import functools

import tf_keras as keras

__all__ = ["keras", "check_keras2", "hub_custom_objects", "strip_pruning", "tfmot", "unwrap"]


@functools.lru_cache(maxsize=1)
def tfmot():
    """Return the `tensorflow_model_optimization` module (imported on first use)."""
    import tensorflow_model_optimization

    return tensorflow_model_optimization


def check_keras2(obj, argname="model"):
    """Raise a `TypeError` when `obj` is a Keras 3 model or layer.

    Args:
        obj: The object a user passed to a tfmm function.
        argname: The name of that argument, used in the message.

    Returns:
        `obj`, unchanged, when it is a `tf_keras` object (or not a Keras object).

    Raises:
        TypeError: `obj` comes from Keras 3 (`import keras` or Keras 3 `tf.keras`).

    Example:
        >>> from tfmm._keras import check_keras2, keras
        >>> layer = check_keras2(keras.layers.Dense(2), "layer")
    """
    if isinstance(obj, (keras.layers.Layer, keras.Model)):
        return obj
    module = type(obj).__module__ or ""
    if module == "keras" or module.startswith("keras."):
        raise TypeError(
            f"`{argname}` is a Keras 3 object ({type(obj).__module__}."
            f"{type(obj).__name__}), but tfmm works with Keras 2 only. Build it "
            "with `import tf_keras` (or with tfmm.models), importing tfmm before "
            "TensorFlow so that tf.keras is Keras 2."
        )
    return obj


def unwrap(layer):
    """Return the innermost layer under TFMOT wrappers (pruning, QAT, clustering, annotation).

    Args:
        layer: A layer, possibly wrapped (`PruneLowMagnitude`, `QuantizeWrapperV2`, ...).

    Returns:
        The wrapped layer, or `layer` itself.

    Example:
        >>> from tfmm._keras import keras, unwrap
        >>> dense = keras.layers.Dense(2)
        >>> unwrap(dense) is dense
        True
    """
    # Bidirectional / TimeDistributed are model layers with their own weights, not
    # optimization wrappers: they are where unwrapping stops.
    while isinstance(getattr(layer, "layer", None), keras.layers.Layer) and not isinstance(
        layer, (keras.layers.Bidirectional, keras.layers.TimeDistributed)
    ):
        layer = layer.layer
    return layer


def hub_custom_objects():
    """Return `{"KerasLayer": tensorflow_hub.KerasLayer}` (empty without tensorflow-hub).

    Loading, cloning or QAT-transforming a model that holds a hub encoder rebuilds
    it from its config, and Keras must then know hub's layer class.

    Returns:
        A dict for `custom_objects` / `quantize_scope`.

    Example:
        >>> from tfmm._keras import hub_custom_objects
        >>> sorted(hub_custom_objects())
        ['KerasLayer']
    """
    try:
        import tensorflow_hub as hub  # imported on use: it is slow and often unused
    except ImportError:  # pragma: no cover - tensorflow-hub is a dependency
        return {}
    return {"KerasLayer": hub.KerasLayer}


def strip_pruning(model):
    """Return `model` without TFMOT pruning wrappers (the same object when it has none).

    Quantization-aware wrappers are kept: the exporter needs their ranges. Used by
    `tfmm.optimization.strip` and by export, which must not see pruning wrappers.

    Args:
        model: A `tf_keras` model.

    Returns:
        A `tf_keras` model.

    Example:
        >>> from tfmm._keras import strip_pruning
        >>> plain = strip_pruning(model)  # doctest: +SKIP
    """
    from tensorflow_model_optimization.python.core.sparsity.keras import pruning_wrapper

    if not any(isinstance(layer, pruning_wrapper.PruneLowMagnitude) for layer in model.layers):
        return model
    return tfmot().sparsity.keras.strip_pruning(model)
