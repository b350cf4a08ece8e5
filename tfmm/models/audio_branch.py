"""The audio branch: waveform -> optional log-mel -> strided Conv1D stack -> a vector."""

from tfmm._keras import keras
from tfmm.models.hub import apply_hub_encoder
from tfmm.models.layers import LogMelSpectrogram

__all__ = ["apply_audio_branch"]


def apply_audio_branch(x, config, name="audio"):
    """Apply the audio branch described by `config` to the waveform `x`.

    Layers are named `f"{name}_block{i}_{op}"` (`audio_block1_conv`, ...).

    Args:
        x: Float tensor `(batch, samples, 1)`.
        config: A `tfmm.models.AudioBranchConfig`.
        name: Prefix of every layer name.

    Returns:
        A `(batch, features)` tensor.

    Raises:
        ConfigError: The hub encoder folder is not a SavedModel.

    Example:
        >>> wave = tf_keras.Input((8000, 1))
        >>> cfg = tfmm.models.AudioBranchConfig(input_shape=(8000, 1))
        >>> vector = tfmm.models.apply_audio_branch(wave, cfg)
    """
    if config.hub_encoder:
        y = apply_hub_encoder(x, config.hub_encoder, trainable=config.hub_trainable, name=name)
    else:
        y = x
        if config.frontend == "log_mel":
            y = LogMelSpectrogram(
                sample_rate=config.sample_rate,
                frame_length=config.frame_length,
                frame_step=config.frame_step,
                num_mel_bins=config.num_mel_bins,
                name=f"{name}_logmel",
            )(y)
        for i, (filters, kernel, stride) in enumerate(config.block_specs(), start=1):
            block = f"{name}_block{i}"
            y = keras.layers.Conv1D(
                filters,
                kernel,
                strides=stride,
                padding="same",
                use_bias=not config.batch_norm,
                name=f"{block}_conv",
            )(y)
            if config.batch_norm:
                y = keras.layers.BatchNormalization(name=f"{block}_bn")(y)
            y = keras.layers.ReLU(name=f"{block}_relu")(y)
            if config.pool_size > 1:
                y = keras.layers.MaxPooling1D(config.pool_size, padding="same", name=f"{block}_pool")(y)
        y = keras.layers.GlobalAveragePooling1D(name=f"{name}_pool")(y)
    if config.dropout:
        y = keras.layers.Dropout(config.dropout, name=f"{name}_dropout")(y)
    return y
