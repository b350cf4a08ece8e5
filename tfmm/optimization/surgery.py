"""Model surgery: rebuild a functional model from an edited config with new weights.

Channel pruning and low-rank factorization both rewrite the graph smaller: they
edit `model.get_config()` (fewer filters, a layer split in two) and give the new
weights of the layers they touched; every other layer keeps its weights by name.
"""

from tfmm.artifacts import model_from_config
from tfmm.errors import ConfigError

__all__ = ["rebuild"]


def rebuild(model, config, new_weights):
    """Build `config` and fill its weights: `new_weights[name]` where given, else `model`'s layer of that name.

    Args:
        model: The original `tf_keras` functional model.
        config: The edited functional config.
        new_weights: `{layer_name: [numpy arrays in get_weights() order]}`.

    Returns:
        The new, uncompiled model.

    Raises:
        ConfigError: A rebuilt layer's weights do not fit (a surgery bug, named by layer).

    Example:
        >>> smaller = rebuild(model, config, {"image_conv": [kernel[..., :8], bias[:8]]})  # doctest: +SKIP
    """
    rebuilt = model_from_config(config)
    old = {layer.name: layer for layer in model.layers}
    for layer in rebuilt.layers:
        weights = new_weights.get(layer.name)
        if weights is None and layer.name in old and layer.weights:
            weights = old[layer.name].get_weights()
        if weights is None or not layer.weights:
            continue
        expected = [tuple(w.shape) for w in layer.weights]
        got = [tuple(w.shape) for w in weights]
        if expected != got:
            raise ConfigError(f"Model surgery produced weights of shapes {got} for layer {layer.name!r}, "
                              f"which needs {expected}. Exclude that layer and report the model.")
        layer.set_weights(weights)
    return rebuilt
