"""TF Hub encoders from local SavedModel folders, as branches of a model."""

import os

from tfmm._keras import keras
from tfmm.errors import ConfigError

__all__ = ["apply_hub_encoder"]


def _hub():
    import tensorflow_hub  # imported on use: only models with a hub encoder need it

    return tensorflow_hub


def apply_hub_encoder(x, path, *, trainable=False, name):
    """Apply a TF Hub SavedModel (loaded from a local folder) to tensor `x`.

    Args:
        x: Input tensor of the branch.
        path: Local folder holding a TF2 SavedModel (`saved_model.pb`).
        trainable: Whether the encoder's variables are fine-tuned.
        name: Branch name; the layer is named `f"{name}_hub_encoder"`.

    Returns:
        A 2-D tensor `(batch, features)`: outputs of higher rank are averaged over
        their inner axes.

    Raises:
        ConfigError: `path` is not a folder holding a SavedModel.

    Example:
        >>> x = tfmm.models.hub.apply_hub_encoder(inputs, "/models/enc", name="image")  # doctest: +SKIP
    """
    if not os.path.isfile(os.path.join(path, "saved_model.pb")):
        raise ConfigError(
            f"`hub_encoder` must be a local folder holding a TF2 SavedModel "
            f"(saved_model.pb). Received: hub_encoder={path!r} for the {name} branch."
        )
    layer = _hub().KerasLayer(path, trainable=trainable, name=f"{name}_hub_encoder")
    y = layer(x)
    rank = len(y.shape)
    if rank == 3:
        y = keras.layers.GlobalAveragePooling1D(name=f"{name}_hub_pool")(y)
    elif rank == 4:
        y = keras.layers.GlobalAveragePooling2D(name=f"{name}_hub_pool")(y)
    elif rank != 2:
        raise ConfigError(
            f"The hub encoder at {path!r} returns a tensor of rank {rank}; the {name} "
            "branch needs (batch, features) or a sequence / feature map to pool."
        )
    return y
