"""tfmm's QuantizeConfig: fake-quantize the layers TFMOT's 8-bit registry refuses.

`WeightsQuantizeConfig` covers Conv1D, Embedding, LSTM kernels and BatchNormalization
outputs with one class: which weights get 8-bit symmetric per-tensor fake
quantization, and whether the output gets an 8-bit moving-average quantizer.
With `preserve_sparsity=True` the weight quantizer multiplies by the sparsity mask
found at QAT start, so pruned weights stay zero (TFMOT's prune-preserve idea,
extended to any weight name).

Per-tensor, not per-channel: TFMOT's per-channel quantizer handles only rank 2 and
4 weights, and a per-channel Conv1D kernel fails int8 conversion (the converter
inserts an ExpandDims that moves the quantized axis).
"""

import tensorflow as tf

from tfmm._keras import keras, tfmot

__all__ = ["ReplicaAllValuesQuantizer", "SparsityPreservingWeightsQuantizer", "WeightsQuantizeConfig",
           "quantize_custom_objects"]

_quantizers = tfmot().quantization.keras.quantizers


def _owner_and_name(layer, attr):
    """`"cell.kernel"` -> `(layer.cell, "kernel")`: RNN weights live on the cell."""
    *path, name = attr.split(".")
    owner = layer
    for part in path:
        owner = getattr(owner, part)
    return owner, name


def _weight_name(variable):
    return variable.name.split("/")[-1].split(":")[0]


@keras.utils.register_keras_serializable(package="tfmm")
class SparsityPreservingWeightsQuantizer(_quantizers.LastValueQuantizer):
    """Per-tensor 8-bit weights quantizer whose zeros stay zero during QAT.

    The mask is taken from the weight when the QAT wrapper is built (after
    pruning), stored as a non-trainable variable, and applied before quantizing.

    Example:
        >>> q = tfmm.optimization.SparsityPreservingWeightsQuantizer()
    """

    def __init__(self, num_bits=8, per_axis=False, symmetric=True, narrow_range=True):
        super().__init__(
            num_bits=num_bits, per_axis=per_axis, symmetric=symmetric, narrow_range=narrow_range
        )

    def build(self, tensor_shape, name, layer):
        weights = super().build(tensor_shape, name, layer)
        mask = layer.add_weight(
            f"{name}_sparsity_mask",
            shape=tensor_shape,
            initializer=keras.initializers.Ones(),
            trainable=False,
        )
        for source in layer.layer.weights:
            if _weight_name(source) == name:
                mask.assign(tf.cast(tf.not_equal(source, 0), mask.dtype))
        weights["sparsity_mask"] = mask
        return weights

    def __call__(self, inputs, training, weights, **kwargs):
        return super().__call__(inputs * weights["sparsity_mask"], training, weights, **kwargs)


@keras.utils.register_keras_serializable(package="tfmm")
class WeightsQuantizeConfig(tfmot().quantization.keras.QuantizeConfig):
    """8-bit fake quantization of named weights and, optionally, the output.

    Args:
        weight_attrs: Attribute names of the weights to quantize (e.g.
            `["kernel"]` for Conv1D, `["embeddings"]` for Embedding); dotted
            paths reach inner objects (`["cell.kernel", "cell.recurrent_kernel"]`
            for an LSTM).
        quantize_output: Add an 8-bit moving-average quantizer on the output.
        preserve_sparsity: Keep zero weights at zero (after pruning).

    Example:
        >>> cfg = tfmm.optimization.WeightsQuantizeConfig(["kernel"], quantize_output=False)
    """

    def __init__(self, weight_attrs=(), quantize_output=True, preserve_sparsity=False):
        self.weight_attrs = list(weight_attrs)
        self.quantize_output = bool(quantize_output)
        self.preserve_sparsity = bool(preserve_sparsity)

    def _weight_quantizer(self):
        if self.preserve_sparsity:
            return SparsityPreservingWeightsQuantizer()
        return _quantizers.LastValueQuantizer(
            num_bits=8, per_axis=False, symmetric=True, narrow_range=True
        )

    def get_weights_and_quantizers(self, layer):
        return [(getattr(*_owner_and_name(layer, a)), self._weight_quantizer()) for a in self.weight_attrs]

    def set_quantize_weights(self, layer, quantize_weights):
        for attr, weight in zip(self.weight_attrs, quantize_weights):
            owner, name = _owner_and_name(layer, attr)
            setattr(owner, name, weight)

    def get_activations_and_quantizers(self, layer):
        return []

    def set_quantize_activations(self, layer, quantize_activations):
        pass

    def get_output_quantizers(self, layer):
        if not self.quantize_output:
            return []
        return [
            _quantizers.MovingAverageQuantizer(
                num_bits=8, per_axis=False, symmetric=False, narrow_range=False
            )
        ]

    def get_config(self):
        return {
            "weight_attrs": self.weight_attrs,
            "quantize_output": self.quantize_output,
            "preserve_sparsity": self.preserve_sparsity,
        }


@keras.utils.register_keras_serializable(package="tfmm")
class ReplicaAllValuesQuantizer(_quantizers.AllValuesQuantizer):
    """TFMOT's input quantizer (range = min / max of all values seen), replica-consistent.

    Under a `tf.distribute` strategy each replica sees its own part of the batch;
    TFMOT's `AllValuesQuantizer` would then keep a different range per replica
    (measured: the two workers' input ranges differed after QAT). This one
    gathers the batch min / max from every replica first, so all replicas keep
    the range one device would compute on the global batch. Without a strategy
    it computes exactly what `AllValuesQuantizer` does.

    Example:
        >>> q = tfmm.optimization.quantize_configs.ReplicaAllValuesQuantizer()
    """

    def __init__(self, num_bits=8, per_axis=False, symmetric=False, narrow_range=False):
        super().__init__(num_bits=num_bits, per_axis=per_axis, symmetric=symmetric, narrow_range=narrow_range)

    def __call__(self, inputs, training, weights, **kwargs):
        context = tf.distribute.get_replica_context()
        if not training or self.symmetric or context is None or context.num_replicas_in_sync == 1:
            return super().__call__(inputs, training, weights, **kwargs)
        local = tf.stack([tf.reduce_min(inputs), -tf.reduce_max(inputs)])[None]
        gathered = tf.reduce_min(tf.reshape(context.all_gather(local, axis=0), [-1, 2]), axis=0)
        low, negative_high = gathered[0], gathered[1]
        range_min = tf.minimum(tf.minimum(weights["min_var"], low), 0.0)  # 0 must stay representable
        range_max = tf.maximum(tf.maximum(weights["max_var"], -negative_high), 0.0)
        weights["min_var"].assign(range_min)
        weights["max_var"].assign(range_max)
        return tf.quantization.fake_quant_with_min_max_vars(
            inputs, range_min, range_max, num_bits=self.num_bits, narrow_range=self.narrow_range)


def quantize_custom_objects():
    """Return the custom objects needed to build, save or load tfmm QAT models.

    Returns:
        A dict of names to classes, for `tfmot.quantization.keras.quantize_scope`.

    Example:
        >>> objects = tfmm.optimization.quantize_custom_objects()
    """
    return {
        "WeightsQuantizeConfig": WeightsQuantizeConfig,
        "SparsityPreservingWeightsQuantizer": SparsityPreservingWeightsQuantizer,
        "ReplicaAllValuesQuantizer": ReplicaAllValuesQuantizer,
    }
