"""Fold a BatchNormalization into the Conv1D before it, ahead of QAT.

TFMOT folds BatchNormalization into a Conv2D during QAT; it has no such transform
for Conv1D. Left alone, the QAT model fake-quantizes the BatchNormalization's
output, the converter cannot fold it through Conv1D's reshapes, and the int8 file
keeps a MUL + ADD + RELU (and two RESHAPEs) per audio block. Seen on the `small`
preset (AV-digits, 1 epoch + 1 QAT epoch, files timed in turns): QAT int8 p50
1.47 ms unfolded vs 0.90 ms folded (PTQ int8: 0.92 ms), 2.5 KB smaller, 3 XNNPACK
partitions instead of 5; `make bench` reports the QAT / PTQ ratio of the trained model.

Folding uses the moving statistics, so the statistics are frozen during the QAT
fine-tuning (a common QAT practice); the float function is unchanged.
"""

import numpy as np

from tfmm._args import require_model
from tfmm._keras import keras

__all__ = ["conv1d_batch_norm_pairs", "fold_conv1d_batch_norms", "layer_graph"]


def _tensor_refs(value, out):
    """Collect the layer names of every `[name, node_index, tensor_index, ...]` reference in `value`.

    Inbound nodes come as lists of such references, as one bare reference (a
    `TFOpLambda` such as `a + b`), and with more references inside call keyword
    arguments (`MultiHeadAttention(query, value=...)`, `tf.add(x, y=...)`).
    """
    if isinstance(value, (list, tuple)):
        if len(value) >= 3 and isinstance(value[0], str) and isinstance(value[1], int):
            if value[0] not in out:
                out.append(value[0])
            for extra in value[3:]:
                _tensor_refs(extra, out)
            return
        for item in value:
            _tensor_refs(item, out)
    elif isinstance(value, dict):
        for item in value.values():
            _tensor_refs(item, out)


def layer_graph(model):
    """Return `(inputs, consumers)`: `{layer_name: [names it reads]}` and `{layer_name: count of readers}`.

    Read from the model's config, not from `layer.inbound_nodes`: a layer shared
    with another model (`strip`, `clone_model` keep unwrapped layers) has nodes in
    both graphs, and its first node may belong to the other one.

    Args:
        model: A `tf_keras` functional model.

    Returns:
        The two dicts, keyed by layer name.

    Example:
        >>> inputs, consumers = layer_graph(model)  # doctest: +SKIP
        >>> inputs["audio_block1_bn"]  # doctest: +SKIP
        ['audio_block1_conv']
    """
    inputs, consumers = {}, {}
    for entry in model.get_config()["layers"]:
        names = []
        _tensor_refs(entry.get("inbound_nodes") or [], names)
        inputs[entry["name"]] = names
        for name in names:
            consumers[name] = consumers.get(name, 0) + 1
    return inputs, consumers


def conv1d_batch_norm_pairs(model):
    """Return `{batch_norm_name: conv1d_name}` for each foldable Conv1D -> BatchNormalization.

    Foldable: the BatchNormalization's only input is a channels-last Conv1D with a
    linear activation whose only consumer is that BatchNormalization, and it
    normalizes the last axis.

    Args:
        model: A `tf_keras` functional model (plain layers, no wrappers).

    Returns:
        A dict, empty when nothing can be folded.

    Example:
        >>> conv1d_batch_norm_pairs(model)  # doctest: +SKIP
        {'audio_block1_bn': 'audio_block1_conv', ...}
    """
    require_model(model, "model")
    inputs, consumers = layer_graph(model)
    pairs = {}
    for layer in model.layers:
        sources = inputs.get(layer.name, [])
        if type(layer).__name__ != "BatchNormalization" or len(sources) != 1:
            continue
        source = model.get_layer(sources[0])
        if type(source).__name__ != "Conv1D" or consumers.get(source.name) != 1:
            continue
        config = source.get_config()
        axis = layer.axis if isinstance(layer.axis, (list, tuple)) else [layer.axis]
        if (config.get("activation") == "linear" and config.get("data_format", "channels_last") == "channels_last"
                and list(axis) in ([-1], [2])):
            pairs[layer.name] = source.name
    return pairs


def _folded_weights(conv, bn):
    values = dict(zip([w.name.split("/")[-1].split(":")[0] for w in bn.weights], bn.get_weights()))
    scale = values.get("gamma", 1.0) / np.sqrt(values["moving_variance"] + bn.epsilon)
    weights = conv.get_weights()
    bias = weights[1] if conv.use_bias else 0.0
    return [weights[0] * scale, (bias - values["moving_mean"]) * scale + values.get("beta", 0.0)]


def fold_conv1d_batch_norms(model, pairs=None):
    """Return a copy of `model` with each foldable BatchNormalization folded into its Conv1D.

    The Conv1D gets a bias and the folded kernel; the BatchNormalization becomes an
    identity layer of the same name, so layer names (and name patterns) still match.

    Args:
        model: A `tf_keras` functional model (plain layers, no wrappers).
        pairs: `{batch_norm_name: conv1d_name}` to fold; defaults to
            `conv1d_batch_norm_pairs(model)`.

    Returns:
        A new model computing the same inference function (`model` itself when
        there is nothing to fold).

    Example:
        >>> folded = tfmm.optimization.fold_conv1d_batch_norms(model)  # doctest: +SKIP
    """
    require_model(model, "model")
    pairs = conv1d_batch_norm_pairs(model) if pairs is None else dict(pairs)
    if not pairs:
        return model
    convs = {conv: bn for bn, conv in pairs.items()}

    def clone(layer):
        config = layer.get_config()
        if layer.name in convs:
            return layer.__class__.from_config(dict(config, use_bias=True))
        if layer.name in pairs:
            return keras.layers.Activation("linear", name=layer.name)
        return layer.__class__.from_config(config)

    folded = keras.models.clone_model(model, clone_function=clone)
    for layer in folded.layers:
        if layer.name in convs:
            layer.set_weights(_folded_weights(model.get_layer(layer.name), model.get_layer(convs[layer.name])))
        elif layer.name not in pairs and layer.weights:
            layer.set_weights(model.get_layer(layer.name).get_weights())
    return folded
