"""How recurrent layers are laid out for TFLite: fused (small) or unrolled (fast).

Measured on AV-digits (TF 2.21, LiteRT, 1 thread, text-only `small` branch):
- Fused `UNIDIRECTIONAL_SEQUENCE_LSTM`: int8 file 23 KB, but the int8 kernel is
  slow (p50 0.44 ms). Unrolled over the 24 steps: 130 KB, p50 0.05 ms.
- The fused op keeps its state in *variable* tensors that persist between
  invocations; the interpreter must reset them before each example
  (`TFLiteRunner` does; on Android call `resetVariableTensors()`), or every
  example after the first starts from the previous one's state.
- A masked LSTM (`mask_zero=True`) cannot be fused: it converts to a `WHILE`
  loop, and int8 conversion of that loop crashed the process. tfmm replaces it
  for export by `PrefixMaskedLSTM`: the fused LSTM over the whole sequence, then
  the output at the last real token. This is exact when padding only comes at
  the end (as `tfmm.data.TextTokenizer` produces), which `verify_tflite` confirms.
- Unrolled, a Keras LSTM costs ~16 ops per step (two matmuls, bias add, masking
  selects ...). `UnrolledLSTM` computes the input projection of all steps in one
  matmul and reads the last real step once at the end: ~11 ops per step, the
  same function.

Length: the three export-only RNN layers and the rewrite that swaps them in must agree
on weight layout and masking; they are kept side by side on purpose.
"""

import tensorflow as tf

from tfmm._choices import RNN_LAYOUTS
from tfmm._keras import keras, unwrap
from tfmm.errors import ConfigError

__all__ = ["PrefixMaskedLSTM", "RNN_LAYOUTS", "UnrolledBidirectional", "UnrolledLSTM", "check_rnn_layout", "relaid_rnn",
           "rnn_action"]

_RNN_CLASSES = ("LSTM", "GRU", "SimpleRNN")


class PrefixMaskedLSTM(keras.layers.Layer):
    """An LSTM for export: fused over all steps, read at the last unmasked step.

    Equal to the masked Keras LSTM it replaces when each mask is a prefix (real
    tokens first, padding after). Export-only: not meant for training.

    Args:
        lstm_config: `get_config()` of the LSTM to replace.
        **kwargs: Layer arguments (name, dtype).

    Example:
        >>> layer = PrefixMaskedLSTM(lstm.get_config())  # doctest: +SKIP
    """

    def __init__(self, lstm_config, **kwargs):
        super().__init__(**kwargs)
        self.lstm_config = dict(lstm_config)
        self.return_sequences = bool(lstm_config.get("return_sequences"))
        inner = dict(lstm_config, return_sequences=True, unroll=False, name="fused")
        self.lstm = keras.layers.LSTM.from_config(inner)
        self.supports_masking = True

    def build(self, input_shape):
        self.lstm.build(input_shape)
        super().build(input_shape)

    def call(self, inputs, mask=None):
        sequence = self.lstm(inputs, mask=None)  # unmasked: the converter fuses this call
        if mask is None:
            return sequence if self.return_sequences else sequence[:, -1]
        if self.return_sequences:
            return sequence * tf.cast(mask, sequence.dtype)[..., None]
        return _last_real_step(sequence, mask)

    def compute_mask(self, inputs, mask=None):
        return mask if self.return_sequences else None

    def get_config(self):
        return {**super().get_config(), "lstm_config": self.lstm_config}


def _last_real_step(sequence, mask):
    """`sequence[:, length - 1]` per example (zeros when a row has no real step)."""
    lengths = tf.reduce_sum(tf.cast(mask, tf.int32), axis=1)
    last = tf.gather(sequence, tf.maximum(lengths - 1, 0), batch_dims=1)
    return tf.where((lengths > 0)[:, None], last, tf.zeros_like(last))


class UnrolledLSTM(keras.layers.Layer):
    """An LSTM for export, unrolled over its fixed number of steps with few ops.

    Equal to the Keras LSTM it replaces (`return_sequences=False`, forwards or
    `go_backwards`; a mask must be a prefix, as for `PrefixMaskedLSTM`). The input
    projection of every step is one matmul; each step then needs one matmul, a
    split, the gate activations and the state update; the output is read once at
    the last real step. Export-only.

    Going backwards over a masked sequence, the real tokens are reversed in place
    (one gather) and run first, as Keras does by skipping the masked steps; a
    Keras-unrolled backward LSTM instead starts with padding steps whose state is
    zero in every calibration example, which calibrates the recurrent matmul to a
    ~1e-8 scale that XNNPACK refuses to prepare (the `base` preset's int8 file).

    Args:
        lstm_config: `get_config()` of the LSTM to replace.
        **kwargs: Layer arguments (name, dtype).

    Example:
        >>> layer = UnrolledLSTM(lstm.get_config())  # doctest: +SKIP
    """

    def __init__(self, lstm_config, **kwargs):
        super().__init__(**kwargs)
        self.lstm_config = dict(lstm_config)
        self.lstm = keras.layers.LSTM.from_config(dict(lstm_config, name="cell_weights"))
        self.activation = keras.activations.get(lstm_config.get("activation", "tanh"))
        self.recurrent_activation = keras.activations.get(lstm_config.get("recurrent_activation", "sigmoid"))
        self.go_backwards = bool(lstm_config.get("go_backwards"))
        self.supports_masking = True

    @staticmethod
    def supports(layer):
        """Whether `layer` is a Keras LSTM this class can stand in for."""
        return type(layer).__name__ == "LSTM" and _lean_config(layer.get_config()) and _static_steps(layer)

    def build(self, input_shape):
        self.lstm.build(input_shape)
        super().build(input_shape)

    def call(self, inputs, mask=None):
        cell = self.lstm.cell
        steps, features = inputs.shape[1], inputs.shape[2]
        projected = tf.matmul(tf.reshape(inputs, [-1, features]), cell.kernel)
        if cell.use_bias:
            projected = tf.nn.bias_add(projected, cell.bias)
        projected = tf.reshape(projected, [-1, steps, 4 * cell.units])
        if self.go_backwards:
            projected = _reversed_real_steps(projected, mask, steps)
        outputs, state, carry = [], None, None
        units = cell.units
        for z in tf.unstack(projected, axis=1):
            if state is None:  # zero state: no recurrent matmul, no forget gate
                # (slices, not a split with an unused output: after QAT that split
                # stayed float and the file failed to load under XNNPACK)
                i, g, o = z[:, :units], z[:, 2 * units : 3 * units], z[:, 3 * units :]
                carry = self.recurrent_activation(i) * self.activation(g)
            else:
                z = z + tf.matmul(state, cell.recurrent_kernel)
                i, f, g, o = tf.split(z, 4, axis=-1)
                carry = self.recurrent_activation(f) * carry + self.recurrent_activation(i) * self.activation(g)
            state = self.recurrent_activation(o) * self.activation(carry)
            outputs.append(state)
        if mask is None:
            return state
        return _last_real_step(tf.stack(outputs, axis=1), mask)

    def compute_mask(self, inputs, mask=None):
        return None

    def get_config(self):
        return {**super().get_config(), "lstm_config": self.lstm_config}


class UnrolledBidirectional(keras.layers.Layer):
    """A `Bidirectional(LSTM)` for export: two `UnrolledLSTM`s, merged.

    Equal to the Keras layer it replaces (`return_sequences=False`, merge mode
    `concat` / `sum` / `ave` / `mul`; a mask must be a prefix). Export-only.

    Args:
        bidirectional_config: `get_config()` of the `Bidirectional` layer to replace.
        **kwargs: Layer arguments (name, dtype).

    Example:
        >>> layer = UnrolledBidirectional(bilstm.get_config())  # doctest: +SKIP
    """

    _MERGES = {
        "concat": lambda f, b: tf.concat([f, b], axis=-1),
        "sum": lambda f, b: f + b,
        "ave": lambda f, b: (f + b) / 2,
        "mul": lambda f, b: f * b,
    }

    def __init__(self, bidirectional_config, **kwargs):
        super().__init__(**kwargs)
        self.bidirectional_config = dict(bidirectional_config)
        forward, backward = _directions(bidirectional_config)
        self.forward = UnrolledLSTM(forward, name="forward")
        self.backward = UnrolledLSTM(backward, name="backward")
        self.merge_mode = bidirectional_config.get("merge_mode", "concat")
        self.supports_masking = True

    @staticmethod
    def supports(layer):
        """Whether `layer` is a `Bidirectional` LSTM this class can stand in for."""
        if type(layer).__name__ != "Bidirectional" or type(layer.forward_layer).__name__ != "LSTM":
            return False
        config = layer.get_config()
        return (config.get("merge_mode", "concat") in UnrolledBidirectional._MERGES
                and all(_lean_config(c) for c in _directions(config)) and _static_steps(layer))

    def build(self, input_shape):
        self.forward.build(input_shape)
        self.backward.build(input_shape)
        super().build(input_shape)

    def call(self, inputs, mask=None):
        return self._MERGES[self.merge_mode](self.forward(inputs, mask=mask), self.backward(inputs, mask=mask))

    def compute_mask(self, inputs, mask=None):
        return None

    def get_config(self):
        return {**super().get_config(), "bidirectional_config": self.bidirectional_config}


def _directions(bidirectional_config):
    """The forward and backward LSTM configs of a `Bidirectional` config."""
    forward = dict(bidirectional_config["layer"]["config"])
    if bidirectional_config.get("backward_layer"):
        return forward, dict(bidirectional_config["backward_layer"]["config"])
    return forward, dict(forward, go_backwards=not forward.get("go_backwards", False))


def _lean_config(config):
    """Whether an LSTM config is one the unrolled layers reproduce (a single final output)."""
    return not any(config.get(k) for k in ("return_sequences", "return_state", "stateful", "time_major"))


def _static_steps(layer):
    try:
        shape = layer.input_shape  # the number of steps must be static
    except (AttributeError, RuntimeError):
        return False
    return bool(shape and shape[1])


def _reversed_real_steps(sequence, mask, steps):
    """`sequence` with each row's real steps in reverse order (all steps when unmasked).

    Padding stays after the real steps, so the run reads its result at the last
    real step, as for a forward LSTM.
    """
    if mask is None:
        return tf.reverse(sequence, axis=[1])
    lengths = tf.reduce_sum(tf.cast(mask, tf.int32), axis=1, keepdims=True)
    t = tf.range(steps)[None, :]
    return tf.gather(sequence, tf.where(t < lengths, lengths - 1 - t, t), batch_dims=1)


def _rnn(layer):
    """The RNN inside `layer` (or its Bidirectional forward layer), else None."""
    inner = unwrap(layer)
    owner = getattr(inner, "forward_layer", inner)
    return owner if type(owner).__name__ in _RNN_CLASSES else None


def _fusable(layer):
    # Bidirectional / GRU have no fused int8 op; a QAT-wrapped LSTM keeps its wrapper.
    return type(layer).__name__ == "LSTM"


def _unroll(layer):
    config = layer.get_config()
    if isinstance(config.get("layer"), dict):  # Bidirectional
        config["layer"]["config"]["unroll"] = True
        if config.get("backward_layer"):
            config["backward_layer"]["config"]["unroll"] = True
    else:
        config["unroll"] = True
    return layer.__class__.from_config(config)


def check_rnn_layout(rnn_layout):
    """Raise `ConfigError` unless `rnn_layout` is one of `RNN_LAYOUTS`; return it."""
    if rnn_layout not in RNN_LAYOUTS:
        raise ConfigError(f"`rnn_layout` must be one of {list(RNN_LAYOUTS)}. Received: {rnn_layout!r}")
    return rnn_layout


def rnn_action(layer, rnn_layout):
    """How `prepare_for_export` lays out `layer` for `rnn_layout`.

    Args:
        layer: A layer of the model being exported (possibly QAT-wrapped).
        rnn_layout: `"fused"` or `"unrolled"`.

    Returns:
        `"fused"` (`PrefixMaskedLSTM`), `"lean"` (`UnrolledLSTM` / `UnrolledBidirectional`),
        `"unroll"` (the same layer with `unroll=True`) or None (not an RNN, or nothing to change).

    Example:
        >>> rnn_action(model.get_layer("text_lstm1"), "unrolled")  # doctest: +SKIP
        'lean'
    """
    rnn = _rnn(layer)
    if rnn is None:
        return None
    if rnn_layout == "fused" and _fusable(layer):
        return "fused"
    if UnrolledLSTM.supports(layer) or UnrolledBidirectional.supports(layer):
        return "lean"
    return None if rnn.unroll else "unroll"


def relaid_rnn(layer, action):
    """The new, unbuilt layer `rnn_action(layer, ...)` asked for (same weights, in the same order).

    Args:
        layer: The RNN layer.
        action: What `rnn_action` returned for it.

    Returns:
        The replacement layer, with `layer`'s name.

    Example:
        >>> relaid_rnn(lstm, "lean")  # doctest: +SKIP
    """
    if action == "unroll":
        return _unroll(layer)
    if action == "fused":
        return PrefixMaskedLSTM(layer.get_config(), name=layer.name)
    lean = UnrolledBidirectional if type(layer).__name__ == "Bidirectional" else UnrolledLSTM
    return lean(layer.get_config(), name=layer.name)
