"""Channel pruning: remove whole filters / units and the input channels that read them.

Magnitude pruning only adds zeros; this stage rewrites the graph smaller. A
Conv1D / Conv2D / Dense layer (the producer) loses its least important output
channels when every path from its output goes through channel-wise layers
(BatchNormalization, activations, dropout, pooling, depthwise convolutions) into
layers that read channels on the last axis (Conv1D / Conv2D / Dense / LSTM /
GRU / SimpleRNN, the absorbers), whose matching input rows are removed too. A
producer whose output reaches a residual add, a concatenation, a Flatten, an
attention layer or the model output keeps its channels, named in `left_out`
with the reason. Importance is the L1 norm of each filter, times the scale of a
BatchNormalization right after it (its effective size).
"""

import dataclasses
import math
from typing import Dict, Tuple, Union

import numpy as np

from tfmm._args import require_model
from tfmm._keras import check_keras2, keras
from tfmm.config import Config
from tfmm.errors import ConfigError
from tfmm.models.flatten import flatten_model
from tfmm.optimization.folding import layer_graph
from tfmm.optimization.policies import layer_setting
from tfmm.optimization.scope import LayerScope, excluded_scope
from tfmm.optimization.surgery import rebuild

__all__ = ["ChannelPruningConfig", "prune_channels"]

_L = keras.layers
_PRODUCERS = (_L.Conv1D, _L.Conv2D, _L.Dense)
_ABSORBERS = (_L.Conv1D, _L.Conv2D, _L.Dense, _L.LSTM, _L.GRU, _L.SimpleRNN)
_PASS = (_L.BatchNormalization, _L.Activation, _L.ReLU, _L.LeakyReLU, _L.Dropout, _L.MaxPooling1D, _L.MaxPooling2D,
         _L.AveragePooling1D, _L.AveragePooling2D, _L.GlobalAveragePooling1D, _L.GlobalAveragePooling2D,
         _L.GlobalMaxPooling1D, _L.GlobalMaxPooling2D, _L.ZeroPadding1D, _L.ZeroPadding2D, _L.DepthwiseConv2D)


@dataclasses.dataclass(frozen=True)
class ChannelPruningConfig(Config):
    """Channel pruning settings (a recipe's `channel_prune` stage).

    Args:
        fraction: Fraction of each prunable layer's output channels (filters /
            units) removed, in [0, 1).
        per_branch: Fractions by branch prefix (`image`, `text`, `audio`, `fusion`, `head`).
        per_layer: Fractions by layer-name glob pattern (0 keeps a layer whole).
        exclude: Layers never channel-pruned: a `LayerScope` or a list of names,
            patterns and class names.
        multiple_of: Round the channels kept up to a multiple of this (SIMD-friendly widths).
        epochs: Fine-tuning epochs after the surgery.

    Raises:
        ConfigError: A bad value.

    Example:
        >>> cfg = tfmm.optimization.ChannelPruningConfig(fraction=0.5, per_branch={"text": 0.25})
    """

    fraction: float = 0.5
    per_branch: Dict[str, float] = dataclasses.field(default_factory=dict)
    per_layer: Dict[str, float] = dataclasses.field(default_factory=dict)
    exclude: Union[Tuple[str, ...], LayerScope] = ()
    multiple_of: int = 1
    epochs: int = 2

    def validate(self):
        for name, value in [("fraction", self.fraction), *((f"per_branch[{k!r}]", v) for k, v in self.per_branch.items()),
                            *((f"per_layer[{k!r}]", v) for k, v in self.per_layer.items())]:
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
                raise ConfigError(f"`{name}` must be a fraction in [0, 1) of the channels removed. "
                                  f"Received: {value!r}")
        LayerScope.parse(self.exclude)
        self._check_positive_int("multiple_of")
        self._check_positive_int("epochs")


def _is(layer, kinds):
    return type(layer) in kinds


def _channels_last(layer):
    return getattr(layer, "data_format", "channels_last") == "channels_last"


def _producer(layer):
    return _is(layer, _PRODUCERS) and _channels_last(layer) and getattr(layer, "groups", 1) == 1


def _pass_through(layer):
    if not _is(layer, _PASS) or not _channels_last(layer):
        return False
    if isinstance(layer, _L.DepthwiseConv2D):
        return layer.depth_multiplier == 1
    if isinstance(layer, _L.BatchNormalization):
        return list(layer.axis) == [len(layer.input_shape) - 1]
    return True


def _absorber(layer):
    return _is(layer, _ABSORBERS) and _channels_last(layer) and getattr(layer, "groups", 1) == 1


def _concat(layer):
    return _is(layer, (_L.Concatenate,)) and layer.axis in (-1, len(layer.output_shape) - 1)


def _channel_groups(model):
    """Group layer outputs that must keep the same channels; say why a group cannot lose any.

    Channel-wise layers share their input's channels; a residual `Add` joins all its
    inputs' channels into one group (every producer feeding it loses the same ones).
    Returns `(group_of, frozen)`: `{layer_name: root}` and `{root: reason}`.
    """
    inputs, _ = layer_graph(model)
    layers = {layer.name: layer for layer in model.layers}
    parent = {name: name for name in layers}

    def find(name):
        while parent[name] != name:
            parent[name] = parent[parent[name]]
            name = parent[name]
        return name

    def union(a, b):
        parent[find(a)] = find(b)

    for name, layer in layers.items():
        if _pass_through(layer) or _is(layer, (_L.Add,)):
            for source in inputs[name]:
                union(name, source)
    frozen = {}
    for name, layer in layers.items():
        root = find(name)
        if not (_producer(layer) or _pass_through(layer) or _is(layer, (_L.Add,)) or _concat(layer)):
            frozen.setdefault(root, f"{name!r} ({type(layer).__name__}) makes channels of the group")
        for source in inputs[name]:
            if not (_pass_through(layer) or _is(layer, (_L.Add,)) or _absorber(layer) or _concat(layer)):
                frozen.setdefault(find(source), f"{name!r} ({type(layer).__name__}) reads them and mixes or "
                                                "reshapes channels")
            elif _absorber(layer) and len(inputs[name]) > 1:
                frozen.setdefault(find(source), f"{name!r} reads them together with other tensors")
    for tensor in model.outputs:
        name = tensor._keras_history.layer.name
        frozen.setdefault(find(name), f"they reach the model output through {name!r}")
    # A Concatenate passes its inputs' channels on at offsets; if its own channels must stay
    # (or it is joined with a producer's), so must its inputs' (through concatenations of concatenations).
    members = {}
    for name in layers:
        members.setdefault(find(name), []).append(name)
    changed = True
    while changed:
        changed = False
        for name, layer in layers.items():
            root = find(name)
            if not _concat(layer) or not (root in frozen or any(_producer(layers[m]) for m in members[root])):
                continue
            frozen.setdefault(root, f"{name!r} (Concatenate) is joined with a layer's own channels")
            for source in inputs[name]:
                if find(source) not in frozen:
                    frozen[find(source)] = f"they reach {name!r} (Concatenate), whose channels must stay whole"
                    changed = True
    return {name: find(name) for name in layers}, frozen, inputs


def _importance(producer, reader):
    """L1 norm of each filter of `producer`, times the scale of a BatchNormalization reading it."""
    kernel = producer.get_weights()[0]
    score = np.abs(kernel).reshape(-1, kernel.shape[-1]).sum(axis=0)
    if isinstance(reader, _L.BatchNormalization) and reader.scale:
        score = score * np.abs(reader.gamma.numpy()) / np.sqrt(reader.moving_variance.numpy() + reader.epsilon)
    return score / (score.mean() + 1e-12)  # comparable across the producers of one group


def _slice_weights(layer, weights, keep_in, keep_out):
    """`layer`'s weights with input channels `keep_in` and / or output channels `keep_out` kept."""
    out = [w.copy() for w in weights]
    if not out:
        return out
    if isinstance(layer, _L.BatchNormalization):
        return [w[keep_out] for w in out]
    if isinstance(layer, _L.DepthwiseConv2D):
        out[0] = out[0][:, :, keep_out, :]
        if layer.use_bias:
            out[1] = out[1][keep_out]
        return out
    if keep_in is not None:  # Conv kernels (..., in, out); Dense and RNN kernels (in, out)
        out[0] = out[0][..., keep_in, :] if out[0].ndim > 2 else out[0][keep_in, :]
    if keep_out is not None:
        out[0] = out[0][..., keep_out]
        if getattr(layer, "use_bias", False):
            out[1] = out[1][keep_out]
    return out


def prune_channels(model, config):
    """Return a smaller copy of `model` with the least important channels of each prunable layer removed.

    Args:
        model: A trained `tf_keras` functional model (nested models are inlined first).
        config: A `ChannelPruningConfig` or dict.

    Returns:
        `(smaller_model, plan, left_out)`: the rebuilt model (uncompiled; fine-tune it),
        `[{"layer", "before", "after"}]` per pruned layer and
        `[{"layer", "class_name", "reason"}]` for Conv / Dense layers kept whole.

    Raises:
        TypeError: `model` is a Keras 3 model.
        ConfigError: Bad config, or a `per_layer` / `exclude` entry that matches no layer.

    Example:
        >>> smaller, plan, left_out = tfmm.optimization.prune_channels(model, {"fraction": 0.5})  # doctest: +SKIP
        >>> smaller.count_params() < model.count_params()  # doctest: +SKIP
        True
    """
    require_model(model, "model")
    check_keras2(model)
    if isinstance(config, dict):
        config = ChannelPruningConfig.from_dict(config)
    model = flatten_model(model)
    excluded = excluded_scope(model, config)
    group_of, frozen, inputs = _channel_groups(model)
    layers = {layer.name: layer for layer in model.layers}
    members = {}
    for name, root in group_of.items():
        members.setdefault(root, []).append(name)
    keep_in, keep_out, plan, left_out = {}, {}, [], []
    readers = {n: [r for r in layers if n in inputs[r]] for n in layers}
    kept_of = {}  # group root -> channel indices kept (absent: all)
    for root, names in members.items():
        producers = [layers[n] for n in names if _producer(layers[n])]
        if not producers or any(_concat(layers[n]) for n in names):
            continue
        fractions = [layer_setting(p.name, config.per_layer, config.per_branch, config.fraction) for p in producers]
        blocked = next((p.name for p in producers if excluded.matches(p)), None)
        reason = frozen.get(root) or (f"shares its channels with {blocked!r}, which is excluded" if blocked else None)
        if reason:
            left_out += [{"layer": p.name, "class_name": type(p).__name__, "reason": f"kept whole: {reason}"}
                         for p in producers]
            continue
        width = producers[0].get_weights()[0].shape[-1]
        fraction = min(fractions)
        kept = min(width, max(1, config.multiple_of * math.ceil(width * (1 - fraction) / config.multiple_of)))
        if kept == width:
            continue
        score = sum(_importance(p, layers[readers[p.name][0]] if len(readers[p.name]) == 1 else None)
                    for p in producers)
        kept_of[root] = np.sort(np.argsort(-score, kind="stable")[:kept])
        plan += [{"layer": p.name, "before": int(width), "after": int(kept)} for p in producers]
    # A last-axis Concatenate keeps, per input, that input's kept channels at its offset.
    for layer in model.layers:
        if _concat(layer) and group_of[layer.name] not in frozen:
            parts, offset = [], 0
            for source in inputs[layer.name]:
                width = layers[source].output_shape[-1]
                parts.append(offset + kept_of.get(group_of[source], np.arange(width)))
                offset += width
            if offset != sum(len(p) for p in parts):
                kept_of[group_of[layer.name]] = np.concatenate(parts)
    for root, keep in kept_of.items():
        for name in members[root]:
            if not _concat(layers[name]):
                keep_out[name] = keep
            for reader in readers[name]:
                if _absorber(layers[reader]):  # its input rows follow (even inside a residual group)
                    keep_in[reader] = keep
    edited = model.get_config()
    sizes = {p["layer"]: p["after"] for p in plan}
    for entry in edited["layers"]:
        if entry["name"] in sizes:
            key = "units" if "units" in entry["config"] else "filters"
            entry["config"][key] = sizes[entry["name"]]
    new_weights = {name: _slice_weights(layers[name], layers[name].get_weights(), keep_in.get(name),
                                        keep_out.get(name)) for name in set(keep_in) | set(keep_out)}
    return rebuild(model, edited, new_weights), plan, left_out
