"""Custom layers used by the builders, registered for `.keras` serialization."""

import tensorflow as tf

from tfmm._keras import keras

__all__ = ["LogMelSpectrogram"]


@keras.saving.register_keras_serializable(package="tfmm")
class LogMelSpectrogram(keras.layers.Layer):
    """Log-mel spectrogram of a mono waveform, built from `tf.signal`.

    Maps `(batch, samples, 1)` to `(batch, frames, num_mel_bins)`. It has no
    weights: the mel matrix is a constant, so it converts to TFLite builtins.

    Args:
        sample_rate: Sample rate of the waveform in Hz.
        frame_length: STFT window length in samples.
        frame_step: STFT hop in samples.
        num_mel_bins: Number of mel bands.
        fft_length: FFT size; defaults to the next power of two >= frame_length.
        **kwargs: Standard layer arguments (`name`, ...).

    Example:
        >>> layer = tfmm.models.LogMelSpectrogram(sample_rate=8000, frame_length=256,
        ...                                      frame_step=128, num_mel_bins=32)
    """

    def __init__(
        self, sample_rate, frame_length, frame_step, num_mel_bins, fft_length=None, **kwargs
    ):
        super().__init__(**kwargs)
        self.sample_rate = int(sample_rate)
        self.frame_length = int(frame_length)
        self.frame_step = int(frame_step)
        self.num_mel_bins = int(num_mel_bins)
        self.fft_length = int(fft_length or 2 ** (self.frame_length - 1).bit_length())
        self._mel = tf.signal.linear_to_mel_weight_matrix(
            num_mel_bins=self.num_mel_bins,
            num_spectrogram_bins=self.fft_length // 2 + 1,
            sample_rate=self.sample_rate,
            lower_edge_hertz=20.0,
            upper_edge_hertz=self.sample_rate / 2.0,
        )

    def call(self, inputs):
        waveform = tf.squeeze(tf.cast(inputs, tf.float32), axis=-1)
        stft = tf.signal.stft(
            waveform,
            frame_length=self.frame_length,
            frame_step=self.frame_step,
            fft_length=self.fft_length,
        )
        mel = tf.tensordot(tf.abs(stft), self._mel, axes=1)
        return tf.math.log(mel + 1e-6)

    def compute_output_shape(self, input_shape):
        samples = input_shape[1]
        frames = None if samples is None else 1 + (samples - self.frame_length) // self.frame_step
        return tf.TensorShape([input_shape[0], frames, self.num_mel_bins])

    def get_config(self):
        config = super().get_config()
        config.update(
            sample_rate=self.sample_rate,
            frame_length=self.frame_length,
            frame_step=self.frame_step,
            num_mel_bins=self.num_mel_bins,
            fft_length=self.fft_length,
        )
        return config
