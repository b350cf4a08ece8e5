"""`flatten_model`: inline nested Functional / Sequential submodels into one flat graph.

TFMOT wraps layers one by one and cannot see inside a Model used as a layer (a
`keras.applications` backbone, a user's encoder): such a backbone stays unpruned
and float. Inlined, every layer of it is an ordinary layer of the outer model,
with its own name and its trained weights, and computes the same function.
"""

import tensorflow as tf

from tfmm._args import require_model
from tfmm._keras import keras

__all__ = ["flatten_model", "nested_models"]


def _is_nested(layer):
    return isinstance(layer, keras.Model)


def nested_models(model):
    """Return the names of the submodels used as layers of `model` (outermost level).

    Args:
        model: A `tf_keras` functional model.

    Returns:
        A list of layer names (empty for a flat model).

    Example:
        >>> tfmm.models.nested_models(model)  # doctest: +SKIP
        ['mobilenetv2_0.35_32']
    """
    return [layer.name for layer in model.layers if _is_nested(layer)]


def _map(structure, tensors):
    def swap(value):
        return tensors[id(value)] if id(value) in tensors else value

    return tf.nest.map_structure(swap, structure)


def _call_flat(model, inputs):
    """Run `model`'s graph on `inputs`, calling the layers of nested submodels one by one."""
    if not getattr(model, "_is_graph_network", False):  # a Sequential without an Input: a plain chain
        x = inputs[0]
        for layer in model.layers:
            x = _call_flat(layer, [x])[0] if _is_nested(layer) else layer(x)
        return [x]
    tensors = {id(t): new for t, new in zip(model.inputs, inputs)}
    for depth in sorted(model._nodes_by_depth, reverse=True):
        for node in model._nodes_by_depth[depth]:
            layer = node.layer
            if isinstance(layer, keras.layers.InputLayer):
                continue
            args, kwargs = _map(node.call_args, tensors), _map(node.call_kwargs, tensors)
            if _is_nested(layer):
                outputs = _call_flat(layer, tf.nest.flatten(args[0] if len(args) == 1 else args))
                outputs = outputs if len(outputs) > 1 else outputs[0]
            else:
                outputs = layer(*args, **kwargs)
            for old, new in zip(tf.nest.flatten(node.outputs), tf.nest.flatten(outputs)):
                tensors[id(old)] = new
    return [tensors[id(t)] for t in model.outputs]


def flatten_model(model):
    """Return `model` with every nested submodel inlined (the model itself when there is none).

    Each inner layer keeps its name and trained weights; a submodel called more
    than once (shared weights, e.g. a siamese encoder) is inlined at each call and
    the calls share its layers, as before.

    Args:
        model: A `tf_keras` functional model, possibly with Functional or
            Sequential submodels as layers (e.g. `keras.applications` backbones).

    Returns:
        A flat `tf_keras` functional model with the same inputs, outputs and
        function (uncompiled, sharing the original's layers: copy it with
        `tfmm.artifacts.copy_model` to train it on its own).

    Raises:
        TypeError: `model` is not a tf_keras model.

    Example:
        >>> flat = tfmm.models.flatten_model(model)  # doctest: +SKIP
        >>> tfmm.models.nested_models(flat)  # doctest: +SKIP
        []
    """
    require_model(model, "model")
    if not nested_models(model) or not getattr(model, "_is_graph_network", False):
        return model
    inputs = [keras.Input(shape=tuple(t.shape[1:]), dtype=t.dtype, name=layer.name)
              for t, layer in zip(model.inputs, model._input_layers)]
    outputs = _call_flat(model, inputs)
    names = getattr(model, "output_names", None)
    flat = keras.Model(inputs, outputs if len(outputs) > 1 else outputs[0], name=model.name)
    if names and len(names) == len(flat.output_names):
        flat.output_names = list(names)
    return flat
