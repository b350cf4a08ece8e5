"""Strided Conv1D on a 1-channel signal, lowered as a polyphase convolution for export.

Measured (`benchmarks/speed_profile.py`, LiteRT + XNNPACK, 1 thread, AVX2): the audio
branch's first layer, `Conv1D(16, 25, strides=4)` on 8000x1 raw samples, takes 253 us
in int8 against 44 us in float32 - the layer that made the default int8 file 1.63x
slower than float (1.32x with this lowering). The same function computed on the
samples regrouped by 4 (2000x4, `Conv1D(16, 7)`, stride 1) takes 77 us in int8 and
37 us in float32.

The maths: `y[t] = sum_j w[j] x[s*t + j - pad]`. Pad the signal so the left padding is
a multiple of `s`, shift the kernel by the difference `d`, round its length up to
`K*s`, and read `x` as `(length/s, s)`: `y[t] = sum_m sum_r w'[s*m + r] X[t + m][r]`, a
stride-1 convolution with `K` taps over `s` channels. The kernel only gains zeros, so
its range (and a QAT model's per-tensor kernel scale) is unchanged: the lowered model
computes the same outputs up to float rounding, int8 included.
"""

import numpy as np
import tensorflow as tf

from tfmm._keras import keras, unwrap

__all__ = ["PolyphaseConv1D", "lowerable", "lowered_layer", "lowered_weights", "polyphase_kernel", "polyphase_plan"]


def polyphase_plan(length, kernel_size, stride, padding):
    """Work out the polyphase lowering of `Conv1D(kernel_size, stride, padding)` on `length` samples.

    Args:
        length: Input length (static).
        kernel_size: The convolution's taps.
        stride: Its stride (> 1).
        padding: `"valid"`, `"same"` or `"causal"`.

    Returns:
        `dict(steps, taps, shift, pad_left, pad_right)`: the output length, the
        lowered kernel's taps, how far the kernel moves right, and the samples to
        pad on each side (negative `pad_right`: samples to drop at the end).

    Example:
        >>> polyphase_plan(8000, 25, 4, "same")["taps"]
        7
    """
    if padding == "valid":
        steps, left = (length - kernel_size) // stride + 1, 0
    elif padding == "same":
        steps = -(-length // stride)
        left = max((steps - 1) * stride + kernel_size - length, 0) // 2
    else:  # causal
        steps, left = -(-length // stride), kernel_size - 1
    pad_left = -(-left // stride) * stride
    shift = pad_left - left
    taps = -(-(kernel_size + shift) // stride)
    pad_right = (steps + taps - 1) * stride - pad_left - length
    return dict(steps=steps, taps=taps, shift=shift, pad_left=pad_left, pad_right=pad_right)


def polyphase_kernel(kernel, stride, shift, taps):
    """Rearrange a Conv1D kernel `(k, cin, f)` into its polyphase form `(taps, stride * cin, f)`.

    Args:
        kernel: The Conv1D kernel.
        stride: The original stride.
        shift: Taps of zeros before the kernel (`polyphase_plan(...)["shift"]`).
        taps: The lowered kernel's taps.

    Returns:
        The lowered kernel (numpy).

    Example:
        >>> polyphase_kernel(np.ones((25, 1, 16)), 4, 2, 7).shape
        (7, 4, 16)
    """
    kernel = np.asarray(kernel)
    k, cin, filters = kernel.shape
    padded = np.zeros((taps * stride, cin, filters), kernel.dtype)
    padded[shift:shift + k] = kernel
    return padded.reshape(taps, stride * cin, filters)


class PolyphaseConv1D(keras.layers.Conv1D):
    """A strided Conv1D computed as a stride-1 Conv1D on the input regrouped by its stride.

    Export-only (`prepare_for_export` swaps it in for a 1-channel strided Conv1D);
    its kernel is `polyphase_kernel` of the original.

    Args:
        phases: The original stride (samples per group).
        pad_left: Zero samples before the signal (a multiple of `phases`).
        pad_right: Zero samples after it (negative: samples dropped).
        **kwargs: `Conv1D` arguments of the lowered convolution (stride 1).

    Example:
        >>> layer = PolyphaseConv1D(filters=16, kernel_size=7, phases=4, pad_left=12,
        ...                         pad_right=12, padding="valid")
    """

    def __init__(self, *, phases, pad_left, pad_right, **kwargs):
        super().__init__(**kwargs)
        self.phases, self.pad_left, self.pad_right = int(phases), int(pad_left), int(pad_right)

    def _grouped_shape(self, input_shape):
        length = input_shape[1] + self.pad_left + self.pad_right
        return tf.TensorShape((input_shape[0], length // self.phases, input_shape[-1] * self.phases))

    def build(self, input_shape):
        super().build(self._grouped_shape(tf.TensorShape(input_shape)))
        self.input_spec = None  # the raw signal comes in, not the grouped one

    def call(self, inputs):
        if self.pad_right < 0:
            inputs = inputs[:, :inputs.shape[1] + self.pad_right]
        if self.pad_left or self.pad_right > 0:
            inputs = tf.pad(inputs, [[0, 0], [self.pad_left, max(self.pad_right, 0)], [0, 0]])
        grouped = (-1, inputs.shape[1] // self.phases, inputs.shape[-1] * self.phases)
        return super().call(tf.reshape(inputs, grouped))

    def get_config(self):
        return {**super().get_config(), "phases": self.phases, "pad_left": self.pad_left,
                "pad_right": self.pad_right}


def lowerable(layer):
    """True when `layer` (or the layer a QAT wrapper holds) is a Conv1D worth lowering.

    A plain `Conv1D` (not a subclass) with a stride > 1 on a 1-channel input of static
    length, no dilation or groups, channels last: the case measured slow in int8.

    Args:
        layer: A layer of the model being exported.

    Returns:
        bool.

    Example:
        >>> lowerable(model.get_layer("audio_block1_conv"))  # doctest: +SKIP
        True
    """
    conv = unwrap(layer)
    if type(conv) is not keras.layers.Conv1D or not layer.built:
        return False
    try:
        shape = tuple(layer.input_shape)
    except (AttributeError, RuntimeError):  # shared by several calls: no single shape
        return False
    return (len(shape) == 3 and shape[1] is not None and shape[-1] == 1 and conv.strides[0] > 1
            and conv.dilation_rate[0] == 1 and conv.groups == 1 and conv.data_format == "channels_last")


def lowered_layer(layer):
    """A new `PolyphaseConv1D` (in a copy of the QAT wrapper when there is one) for `lowerable(layer)`.

    Args:
        layer: A `Conv1D`, or a QAT `QuantizeWrapper` holding one.

    Returns:
        The unbuilt replacement layer, with `layer`'s name; fill it with `lowered_weights`.

    Example:
        >>> lowered_layer(model.get_layer("audio_block1_conv")).kernel_size  # doctest: +SKIP
        (7,)
    """
    conv = unwrap(layer)
    plan = polyphase_plan(layer.input_shape[1], conv.kernel_size[0], conv.strides[0], conv.padding)
    taps, stride = plan["taps"], conv.strides[0]
    left, right = plan["pad_left"], plan["pad_right"]
    padding = "valid"
    if right >= 0 and (left // stride, right // stride) == ((taps - 1) // 2, taps - 1 - (taps - 1) // 2) \
            and right % stride == 0:
        left, right, padding = 0, 0, "same"  # the stride-1 convolution pads the groups itself
    config = dict(conv.get_config(), kernel_size=(taps,), strides=(1,), padding=padding,
                  phases=stride, pad_left=left, pad_right=right)
    if conv is layer:
        return PolyphaseConv1D.from_config(config)
    wrapper = layer.get_config()
    wrapper["layer"] = {"class_name": "PolyphaseConv1D", "config": config}
    with keras.utils.custom_object_scope({"PolyphaseConv1D": PolyphaseConv1D}):
        return type(layer).from_config(wrapper)


def lowered_weights(old, new):
    """`old`'s weights for its lowered copy `new`: the kernel in polyphase form, the rest as they are.

    Args:
        old: The original layer (or QAT wrapper).
        new: Its `lowered_layer`, built.

    Returns:
        A list of arrays in `new.get_weights()` order.

    Example:
        >>> new.set_weights(lowered_weights(old, new))  # doctest: +SKIP
    """
    conv = unwrap(old)
    plan = polyphase_plan(old.input_shape[1], conv.kernel_size[0], conv.strides[0], conv.padding)
    weights = []
    for value, target in zip(old.get_weights(), new.weights):
        if tuple(value.shape) != tuple(target.shape):  # the kernel (nothing else changes shape)
            value = polyphase_kernel(value, conv.strides[0], plan["shift"], plan["taps"])
        weights.append(value)
    return weights
