"""Low-rank factorization: split a Dense / Embedding / RNN input kernel into two thin ones (SVD).

A kernel `W` (m x n) becomes `A @ B` with `A` (m x r) and `B` (r x n) from its
truncated SVD (the singular values split evenly between the two, which keeps
both factors in a range int8 quantizes well). The graph is rewritten with plain
layers, so every later stage and the TFLite converter see ordinary ops:

- `Dense(n)` -> `Dense(r, use_bias=False)` named `<name>_lowrank`, then `Dense(n)` (the original name);
- `Embedding(V, d)` -> `Embedding(V, r)` named `<name>_lowrank` (mask kept), then `Dense(d, use_bias=False)`;
- `LSTM` / `GRU` / `SimpleRNN` -> `Dense(r, use_bias=False)` before it, its input kernel `r x 4u`.

A layer is factorized only when the rank saves weights (`r (m + n) < m n`).
"""

import copy
import dataclasses
import fnmatch
import math
from typing import Dict, Optional, Tuple, Union

import numpy as np

from tfmm._args import require_model
from tfmm._keras import check_keras2, keras
from tfmm.config import Config
from tfmm.errors import ConfigError
from tfmm.models.flatten import flatten_model
from tfmm.optimization.scope import LayerScope, excluded_scope
from tfmm.optimization.surgery import rebuild

__all__ = ["LowRankConfig", "factorize_low_rank"]

_L = keras.layers
_RNNS = (_L.LSTM, _L.GRU, _L.SimpleRNN)


@dataclasses.dataclass(frozen=True)
class LowRankConfig(Config):
    """Low-rank factorization settings (a recipe's `low_rank` stage).

    Args:
        rank_fraction: Rank kept, as a fraction of `min(m, n)` of each kernel (rounded up).
        energy: If set, each kernel keeps the smallest rank whose singular values hold
            this fraction of its squared Frobenius norm (e.g. 0.9); replaces `rank_fraction`.
        per_layer: Ranks by layer-name glob pattern (an int >= 1), overriding `rank_fraction`.
        exclude: Layers left whole: a `LayerScope` or a list of names, patterns and class names.
        epochs: Fine-tuning epochs after the rewrite.

    Raises:
        ConfigError: A bad value.

    Example:
        >>> cfg = tfmm.optimization.LowRankConfig(rank_fraction=0.25, per_layer={"text_lstm*": 8})
    """

    rank_fraction: float = 0.25
    energy: Optional[float] = None
    per_layer: Dict[str, int] = dataclasses.field(default_factory=dict)
    exclude: Union[Tuple[str, ...], LayerScope] = ()
    epochs: int = 2

    def validate(self):
        self._check_fraction("rank_fraction", low=0.0, high=1.0)
        if not self.rank_fraction > 0:
            self._fail("rank_fraction", "must be a fraction in (0, 1]")
        if self.energy is not None and (isinstance(self.energy, bool) or not isinstance(self.energy, (int, float))
                                        or not 0 < self.energy < 1):
            self._fail("energy", "must be None or a fraction in (0, 1), e.g. 0.9")
        for pattern, rank in self.per_layer.items():
            if isinstance(rank, bool) or not isinstance(rank, int) or rank < 1:
                raise ConfigError(f"`per_layer[{pattern!r}]` must be a rank >= 1. Received: {rank!r}")
        LayerScope.parse(self.exclude)
        self._check_positive_int("epochs")


def _kernel(layer):
    """The factorized kernel of `layer` (m x n), or None for layers this stage does not touch."""
    if type(layer) is _L.Dense:
        return layer.kernel.numpy()
    if type(layer) is _L.Embedding:
        return layer.embeddings.numpy()
    if type(layer) in _RNNS:
        return layer.cell.kernel.numpy()
    return None


def _rank(layer, singular, config):
    """The rank kept for `layer`, given its kernel's singular values."""
    for pattern, rank in config.per_layer.items():
        if fnmatch.fnmatchcase(layer.name, pattern):
            return rank
    if config.energy is not None:
        squared = singular ** 2
        return int(np.searchsorted(np.cumsum(squared) / squared.sum(), config.energy) + 1)
    return max(1, math.ceil(config.rank_fraction * singular.size))


def _factors(u, singular, vt, rank):
    root = np.sqrt(singular[:rank])
    return (u[:, :rank] * root).astype("float32"), (root[:, None] * vt[:rank]).astype("float32")


def _inbound_refs(entry):
    nodes = entry.get("inbound_nodes") or []
    if len(nodes) != 1 or not isinstance(nodes[0], list) or len(nodes[0]) != 1:
        return None
    ref = nodes[0][0]
    return ref if isinstance(ref, list) and len(ref) >= 3 else None


def factorize_low_rank(model, config):
    """Return a copy of `model` whose Dense / Embedding / RNN input kernels are low-rank products.

    Args:
        model: A trained `tf_keras` functional model (nested models are inlined first).
        config: A `LowRankConfig` or dict.

    Returns:
        `(smaller_model, plan, left_out)`: the rewritten model (uncompiled; fine-tune it),
        `[{"layer", "shape", "rank", "weights_before", "weights_after", "energy"}]` per
        factorized layer (`energy`: fraction of the squared singular values kept), and
        `[{"layer", "class_name", "reason"}]` for candidate layers left whole.

    Raises:
        TypeError: `model` is a Keras 3 model.
        ConfigError: Bad config, or a `per_layer` / `exclude` entry that matches no layer.

    Example:
        >>> smaller, plan, _ = tfmm.optimization.factorize_low_rank(model, {"rank_fraction": 0.25})  # doctest: +SKIP
    """
    require_model(model, "model")
    check_keras2(model)
    if isinstance(config, dict):
        config = LowRankConfig.from_dict(config)
    model = flatten_model(model)
    excluded = excluded_scope(model, config)
    edited = model.get_config()
    entries = {entry["name"]: entry for entry in edited["layers"]}
    names = set(entries)
    new_layers, new_weights, plan, left_out = [], {}, [], []
    for layer in model.layers:
        kernel = _kernel(layer)
        if kernel is None or excluded.matches(layer):
            continue
        m, n = kernel.shape
        u, singular, vt = np.linalg.svd(kernel.astype("float64"), full_matrices=False)  # once per layer
        rank = _rank(layer, singular, config)
        ref = _inbound_refs(entries[layer.name])
        reason = None
        if rank * (m + n) >= m * n:
            reason = f"rank {rank} of a {m}x{n} kernel saves no weights"
        elif ref is None:
            reason = "it reads more than one tensor (initial states?); left whole"
        elif f"{layer.name}_lowrank" in names:
            reason = f"the name {layer.name + '_lowrank'!r} is taken"
        if reason:
            left_out.append({"layer": layer.name, "class_name": type(layer).__name__, "reason": reason})
            continue
        first, second = _factors(u, singular, vt, rank)
        entry, name = entries[layer.name], f"{layer.name}_lowrank"
        if isinstance(layer, _L.Embedding):
            head = copy.deepcopy(entry)
            head["config"].update(name=name, output_dim=rank)
            entry.update(class_name="Dense", config={"name": layer.name, "units": n, "use_bias": False,
                                                     "activation": "linear", "dtype": layer.dtype})
            new_weights[name], new_weights[layer.name] = [first], [second]
        else:
            head = {"class_name": "Dense", "config": {"name": name, "units": rank, "use_bias": False,
                                                     "activation": "linear", "dtype": layer.dtype}}
            rest = layer.get_weights()[1:]
            new_weights[name], new_weights[layer.name] = [first], [second, *rest]
        head.update(name=name, inbound_nodes=copy.deepcopy(entry["inbound_nodes"]))
        entry["inbound_nodes"] = [[[name, 0, 0, ref[3] if len(ref) > 3 else {}]]]
        new_layers.append((layer.name, head))
        plan.append({"layer": layer.name, "shape": [int(m), int(n)], "rank": int(rank),
                     "weights_before": int(m * n), "weights_after": int(rank * (m + n)),
                     "energy": float((singular[:rank] ** 2).sum() / (singular ** 2).sum())})
    for before, head in new_layers:  # each head goes right before the layer it feeds
        index = next(i for i, e in enumerate(edited["layers"]) if e["name"] == before)
        edited["layers"].insert(index, head)
    return rebuild(model, edited, new_weights), plan, left_out
