"""Fusion of branch vectors: concat, cross-modal attention, or learned gates.

Built from stock Keras layers only, so every fusion quantizes and converts like
the rest of the model.
"""

from tfmm._keras import keras

__all__ = ["apply_fusion"]


def _modality_tokens(vectors, config, name):
    """Project each modality to `projection_dim` and stack: (batch, M, dim)."""
    dim = config.projection_dim
    tokens = []
    for modality, vector in vectors.items():
        y = keras.layers.Dense(dim, name=f"{name}_{modality}_proj")(vector)
        tokens.append(keras.layers.Reshape((1, dim), name=f"{name}_{modality}_token")(y))
    if len(tokens) == 1:
        return tokens[0]
    return keras.layers.Concatenate(axis=1, name=f"{name}_tokens")(tokens)


def apply_fusion(vectors, config, name="fusion"):
    """Fuse the per-modality vectors into one vector.

    Args:
        vectors: Ordered dict `{modality: (batch, features) tensor}`, 1 to 3 entries.
        config: A `tfmm.models.FusionConfig`.
        name: Prefix of every layer name.

    Returns:
        A `(batch, features)` tensor.

    Example:
        >>> fused = tfmm.models.apply_fusion({"image": a, "text": b},
        ...                                  tfmm.models.FusionConfig(mode="gated"))  # doctest: +SKIP
    """
    if config.mode == "concat":
        parts = list(vectors.values())
        y = parts[0] if len(parts) == 1 else keras.layers.Concatenate(name=f"{name}_concat")(parts)
    else:
        tokens = _modality_tokens(vectors, config, name)
        if config.mode == "attention":
            attended = keras.layers.MultiHeadAttention(
                num_heads=config.num_heads,
                key_dim=config.projection_dim // config.num_heads,
                name=f"{name}_attention",
            )(tokens, tokens)
            tokens = keras.layers.Add(name=f"{name}_residual")([tokens, attended])
            tokens = keras.layers.LayerNormalization(name=f"{name}_norm")(tokens)
        else:  # gated
            flat = keras.layers.Flatten(name=f"{name}_flatten")(tokens)
            gates = keras.layers.Dense(len(vectors), activation="sigmoid", name=f"{name}_gates")(flat)
            gates = keras.layers.Reshape((len(vectors), 1), name=f"{name}_gates_reshape")(gates)
            tokens = keras.layers.Multiply(name=f"{name}_gated")([tokens, gates])
        y = keras.layers.GlobalAveragePooling1D(name=f"{name}_pool")(tokens)
    for i, units in enumerate(config.hidden_units, start=1):
        y = keras.layers.Dense(units, activation="relu", name=f"{name}_dense{i}")(y)
    if config.dropout:
        y = keras.layers.Dropout(config.dropout, name=f"{name}_dropout")(y)
    return y
