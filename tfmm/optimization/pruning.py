"""Magnitude pruning of the whole multimodal model, with a schedule that reaches its target.

TFMOT's default `frequency=100` with `end_step` near the end of a short run leaves
sparsity at 0 without a word; tfmm derives begin / end steps and the update
frequency from the real number of fine-tuning steps, so the last update lands on
`end_step` and the target is reached.
"""

import dataclasses
import functools
from typing import Dict, Optional, Tuple, Union

from tfmm._args import require_model
from tfmm._keras import check_keras2, keras, strip_pruning, tfmot, unwrap
from tfmm.config import Config
from tfmm.errors import ConfigError
from tfmm.models.flatten import flatten_model
from tfmm.optimization.policies import find_weights, get_layer_policy, layer_setting
from tfmm.optimization.scope import LayerScope, excluded_scope
# Measuring and keeping sparsity serve every later stage too (own module); users look here.
from tfmm.optimization.sparsity import SparsityMask, sparsity_report

__all__ = [
    "PruningConfig",
    "SparsityMask",
    "apply_pruning",
    "pruning_plan",
    "pruning_schedule_steps",
    "sparsity_report",
    "strip",
]

BRANCHES = ("image", "text", "audio", "fusion", "head")


@dataclasses.dataclass(frozen=True)
class PruningConfig(Config):
    """Magnitude pruning settings (a recipe's `prune` stage).

    Args:
        target_sparsity: Fraction of each pruned weight set to zero, in [0, 1).
        schedule: `"polynomial"` (ramp from `initial_sparsity`) or `"constant"`.
        initial_sparsity: Starting sparsity of the polynomial schedule.
        begin_fraction: Fraction of the fine-tuning steps before pruning starts.
        end_fraction: Fraction of the steps by which the target is reached
            (polynomial); the remaining steps fine-tune at the target.
        frequency: Steps between mask updates; None derives it from the steps.
        per_branch: Targets by branch prefix (`image`, `text`, `audio`, `fusion`,
            `head`), overriding `target_sparsity`.
        per_layer: Targets by layer-name glob pattern (e.g. `"image_stage4_*"`),
            overriding branch targets. A pattern that matches no layer is an error.
        exclude: Layers never pruned: a `LayerScope` (or its mapping), or a list
            of layer names, glob patterns and class names (see `LayerScope.parse`).
            An entry that matches no layer is an error.
        m_by_n: Structured sparsity such as `(2, 4)` (2 zeros in every 4 weights)
            for Conv2D and Dense layers; other prunable layers use `target_sparsity`.
        epochs: Fine-tuning epochs of this stage in a recipe.

    Example:
        >>> cfg = tfmm.optimization.PruningConfig(target_sparsity=0.75, per_branch={"text": 0.5})
    """

    target_sparsity: float = 0.5
    schedule: str = "polynomial"
    initial_sparsity: float = 0.0
    begin_fraction: float = 0.0
    end_fraction: float = 0.7
    frequency: Optional[int] = None
    per_branch: Dict[str, float] = dataclasses.field(default_factory=dict)
    per_layer: Dict[str, float] = dataclasses.field(default_factory=dict)
    exclude: Union[Tuple[str, ...], LayerScope] = ()
    m_by_n: Optional[Tuple[int, int]] = None
    epochs: int = 2

    def validate(self):
        self._check_fraction("target_sparsity")
        self._check_choice("schedule", ("polynomial", "constant"))
        self._check_fraction("initial_sparsity")
        self._check_fraction("begin_fraction")
        if not isinstance(self.end_fraction, (int, float)) or not (
            self.begin_fraction < self.end_fraction <= 1.0
        ):
            self._fail("end_fraction", f"must be in (begin_fraction={self.begin_fraction}, 1]")
        if self.schedule == "polynomial" and self.initial_sparsity > self.target_sparsity:
            self._fail("initial_sparsity", f"must not exceed target_sparsity={self.target_sparsity}")
        self._check_positive_int("frequency", allow_none=True)
        self._check_positive_int("epochs")
        LayerScope.parse(self.exclude)
        for field in ("per_branch", "per_layer"):
            mapping = getattr(self, field)
            if not isinstance(mapping, dict):
                self._fail(field, "must be a mapping of names to sparsities")
            for key, value in mapping.items():
                if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
                    raise ConfigError(
                        f"Sparsity for {key!r} in `{field}` must be a number in [0, 1). "
                        f"Received: {field}={mapping!r}"
                    )
        unknown = sorted(set(self.per_branch) - set(BRANCHES))
        if unknown:
            self._fail("per_branch", f"must use branch names from {list(BRANCHES)} (unknown: {unknown})")
        if self.m_by_n is not None:
            m_n = tuple(self.m_by_n)
            if len(m_n) != 2 or not all(isinstance(v, int) and v > 0 for v in m_n) or m_n[0] >= m_n[1]:
                self._fail("m_by_n", "must be (m, n) with 0 < m < n, e.g. (2, 4)")
            object.__setattr__(self, "m_by_n", m_n)


def pruning_schedule_steps(config, total_steps):
    """Return `(begin_step, end_step, frequency)` that reach the target in `total_steps`.

    Steps are counted from 0 (the first batch). The last mask update falls exactly
    on `end_step`, which is at most `total_steps - 1`.

    Args:
        config: A `PruningConfig`.
        total_steps: Fine-tuning batches in all (steps per epoch x epochs).

    Returns:
        A tuple of three ints.

    Raises:
        ConfigError: `total_steps` is smaller than 2.

    Example:
        >>> tfmm.optimization.pruning_schedule_steps(tfmm.optimization.PruningConfig(), 40)
        (0, 27, 3)
    """
    if total_steps < 2:
        raise ConfigError(
            f"Pruning needs at least 2 fine-tuning steps; got {total_steps}. Use more data, a "
            "smaller batch size or more epochs."
        )
    begin = int(config.begin_fraction * total_steps)
    last = total_steps - 1
    end = max(begin + 1, min(last, int(round(config.end_fraction * total_steps))))
    span = end - begin
    frequency = config.frequency or max(1, min(100, span // 10))
    frequency = min(frequency, span)
    end = begin + (span // frequency) * frequency  # the last update lands on end_step
    return begin, end, frequency


def _target_for(layer_name, config):
    return layer_setting(layer_name, config.per_layer, config.per_branch, config.target_sparsity)


def pruning_plan(model, config, *, excluded=None):
    """Say, for every layer with weights, what pruning will do to it and why.

    Args:
        model: A `tf_keras` model.
        config: A `PruningConfig` (or dict).
        excluded: The checked `exclude` scope, when the caller has it already.

    Returns:
        `[{"layer", "class_name", "target", "reason"}]`: `target` 0.0 with a
        `reason` for the layers left dense (no prunable weights in the layer's
        policy, excluded, or a zero target).

    Raises:
        ConfigError: A `per_layer` or `exclude` entry matches no layer.

    Example:
        >>> [p["layer"] for p in pruning_plan(model, PruningConfig()) if not p["target"]]  # doctest: +SKIP
        ['image_stem_bn', 'text_embedding']
    """
    if isinstance(config, dict):
        config = PruningConfig.from_dict(config)
    model = flatten_model(model)
    excluded = excluded if excluded is not None else excluded_scope(model, config)
    plan = []
    for layer in model.layers:
        if not layer.weights:
            continue
        policy = get_layer_policy(unwrap(layer))
        target, reason = _target_for(layer.name, config), ""
        if not policy.prunable:
            target, reason = 0.0, (f"no prunable weights in its policy ({policy.reason})" if policy.reason else
                                   f"tfmm's policy for {type(unwrap(layer)).__name__} names no prunable weights "
                                   "(scales, or not supported yet: register_layer_policy adds them)")
        elif excluded.matches(layer):
            target, reason = 0.0, "excluded by the PruningConfig"
        elif target <= 0:
            reason = "target sparsity 0 for it (per_branch / per_layer)"
        plan.append({"layer": layer.name, "class_name": type(unwrap(layer)).__name__, "target": float(target),
                     "reason": reason})
    return plan


def apply_pruning(model, config, *, steps_per_epoch, epochs=None):
    """Wrap the prunable layers of `model` for magnitude pruning.

    Every layer whose policy names prunable weights is wrapped with TFMOT's
    `prune_low_magnitude` at its target (per layer pattern, then branch, then the
    global target); layers with a zero target, excluded layers and layers
    without prunable weights (hub encoders, normalization, ...) are left as
    they are, so models TFMOT refuses as a whole still prune.

    Args:
        model: A `tf_keras` functional model (e.g. from `build_multimodal_model`).
        config: A `PruningConfig`.
        steps_per_epoch: Batches per fine-tuning epoch.
        epochs: Fine-tuning epochs; defaults to `config.epochs`.

    Returns:
        `(pruned_model, callbacks)`: pass the callbacks to `fit` (they contain the
        `UpdatePruningStep` TFMOT needs). The model is not compiled.

    Raises:
        TypeError: `model` is a Keras 3 model.
        ConfigError: Bad config, a layer pattern matching nothing, or too few steps.

    Example:
        >>> pruned, callbacks = tfmm.optimization.apply_pruning(
        ...     model, tfmm.optimization.PruningConfig(target_sparsity=0.5),
        ...     steps_per_epoch=100, epochs=2)  # doctest: +SKIP
        >>> pruned.compile(...); pruned.fit(ds, epochs=2, callbacks=callbacks)  # doctest: +SKIP
    """
    require_model(model, "model")
    check_keras2(model)
    if isinstance(config, dict):
        config = PruningConfig.from_dict(config)
    epochs = epochs or config.epochs
    model = flatten_model(model)
    excluded = excluded_scope(model, config)
    begin, end, frequency = pruning_schedule_steps(config, int(steps_per_epoch) * int(epochs))
    sparsity = tfmot().sparsity.keras

    def schedule(target):
        if config.schedule == "constant":
            return sparsity.ConstantSparsity(target, begin_step=begin, frequency=frequency)
        return sparsity.PolynomialDecay(
            initial_sparsity=min(config.initial_sparsity, target),
            final_sparsity=target,
            begin_step=begin,
            end_step=end,
            frequency=frequency,
        )

    targets = {entry["layer"]: entry["target"] for entry in pruning_plan(model, config, excluded=excluded)
               if entry["target"] > 0}

    def clone(layer):
        target = targets.get(layer.name, 0.0)
        if target <= 0:
            return layer.__class__.from_config(layer.get_config())
        m_by_n = None
        if config.m_by_n and isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense)):
            m_by_n = config.m_by_n
        fresh = layer.__class__.from_config(layer.get_config())
        # tfmm's policy, not TFMOT's registry, names the pruned weights (TFMOT's names none
        # for DepthwiseConv2D and knows no Bidirectional / TimeDistributed).
        fresh.get_prunable_weights = functools.partial(_policy_weights, fresh)
        return sparsity.prune_low_magnitude(fresh, pruning_schedule=schedule(target), sparsity_m_by_n=m_by_n)

    pruned = keras.models.clone_model(model, clone_function=clone)
    _copy_weights(model, pruned)
    return pruned, [sparsity.UpdatePruningStep()]


def _policy_weights(layer):
    """The variables of `layer` its policy calls prunable (TFMOT's `get_prunable_weights`)."""
    return [w for attr in get_layer_policy(layer).prunable for w in find_weights(layer, attr)]


def _copy_weights(source, target):
    """Copy weights layer by layer into a clone whose layers may be wrapped."""
    by_name = {layer.name: layer for layer in source.layers}
    for layer in target.layers:
        original = by_name.get(unwrap(layer).name) or by_name.get(layer.name)
        if original is not None and original.weights:
            unwrap(layer).set_weights(original.get_weights())


def strip(model):
    """Remove pruning wrappers, leaving plain layers with the pruned (zero) weights.

    Quantization-aware wrappers are kept: the exporter needs their ranges.

    Args:
        model: A model returned by `apply_pruning` (or any model).

    Returns:
        A model without pruning wrappers (the same model if it has none).

    Example:
        >>> final = tfmm.optimization.strip(pruned)  # doctest: +SKIP
    """
    require_model(model, "model")
    check_keras2(model)
    return strip_pruning(model)
