"""The text branch: token ids -> Embedding -> LSTM stack -> a vector."""

from tfmm._keras import keras
from tfmm.models.hub import apply_hub_encoder

__all__ = ["apply_text_branch"]


def apply_text_branch(x, config, name="text"):
    """Apply the text branch described by `config` to the int32 token ids `x`.

    Args:
        x: Int tensor `(batch, sequence_length)` of token ids (0 = padding).
        config: A `tfmm.models.TextBranchConfig`.
        name: Prefix of every layer name (`text_embedding`, `text_lstm1`, ...).

    Returns:
        A `(batch, features)` tensor: the last LSTM's final state.

    Raises:
        ConfigError: The hub encoder folder is not a SavedModel.

    Example:
        >>> ids = tf_keras.Input((16,), dtype="int32")
        >>> cfg = tfmm.models.TextBranchConfig(vocab_size=100, sequence_length=16)
        >>> vector = tfmm.models.apply_text_branch(ids, cfg)
    """
    if config.hub_encoder:
        return apply_hub_encoder(x, config.hub_encoder, trainable=config.hub_trainable, name=name)
    y = keras.layers.Embedding(
        config.vocab_size, config.embedding_dim, mask_zero=config.mask_zero, name=f"{name}_embedding"
    )(x)
    for i in range(1, config.num_lstm_layers + 1):
        last = i == config.num_lstm_layers
        lstm = keras.layers.LSTM(
            config.lstm_units,
            return_sequences=not last,
            dropout=config.dropout,
            unroll=config.unroll,
            name=f"{name}_lstm{i}",
        )
        if config.bidirectional:
            lstm = keras.layers.Bidirectional(lstm, name=f"{name}_bilstm{i}")
        y = lstm(y)
    return y
