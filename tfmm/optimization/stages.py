"""The `Stage` protocol: what every optimization stage does and reports.

A stage is built from its config (a recipe entry), checks the model before any
training (`check`: every layer it names must exist) and `run`s on the model the
stage before it produced, returning the new model, its training history and a
typed `StageReport`. `optimize` is a loop over stages; a new stage is a new
subclass registered in `STAGE_TYPES`.

Length: the protocol, the shared context and the six short stage classes; each
stage's work lives in its own module (pruning, channels, lowrank, clustering, qat).
"""

import dataclasses
from typing import Optional

from tfmm._keras import keras
from tfmm.artifacts import copy_model
from tfmm.errors import ConfigError
from tfmm.optimization.channels import prune_channels
from tfmm.optimization.clustering import ClusterPreserve, apply_clustering, cluster_report, strip_clustering
from tfmm.optimization.folding import conv1d_batch_norm_pairs, fold_conv1d_batch_norms
from tfmm.optimization.lowrank import factorize_low_rank
from tfmm.optimization.pruning import SparsityMask, apply_pruning, pruning_plan, sparsity_report, strip
from tfmm.optimization.qat import apply_qat, quantization_plan, qat_scope
from tfmm.optimization.scope import excluded_scope

__all__ = ["STAGE_TYPES", "Stage", "StageContext", "StageReport", "make_optimizer"]


def make_optimizer(optimizer, learning_rate):
    """A fresh optimizer for one stage: Keras optimizers bind to one model's variables.

    Args:
        optimizer: A tf_keras optimizer name (`"adam"`, `"sgd"`, ...) or a function
            `learning_rate -> tf_keras optimizer`.
        learning_rate: The stage's learning rate.

    Returns:
        A new `tf_keras` optimizer.

    Raises:
        ConfigError: Not a name or function, or an unknown name.

    Example:
        >>> opt = make_optimizer("adam", 1e-3)  # doctest: +SKIP
    """
    if callable(optimizer) and not isinstance(optimizer, keras.optimizers.Optimizer):
        return optimizer(learning_rate)
    if not isinstance(optimizer, str):
        raise ConfigError(
            "`optimizer` must be a name ('adam', 'sgd', 'rmsprop', ...) or a function "
            f"learning_rate -> tf_keras optimizer. Received: {optimizer!r}"
        )
    try:
        return keras.optimizers.get({"class_name": optimizer, "config": {"learning_rate": learning_rate}})
    except ValueError:
        raise ConfigError(f"Unknown optimizer {optimizer!r}; use a tf_keras optimizer name.") from None


@dataclasses.dataclass(frozen=True)
class StageReport:
    """What one stage achieved.

    Attributes:
        stage: The stage's name (`prune`, `quantize`, ...).
        metrics: Validation metrics after the stage (empty without validation data).
        seconds: Wall time of the stage.
        sparsity: Fraction of prunable weights that are zero after it, when measured.
        left_out: `({"layer", "class_name", "reason"}, ...)`: layers with weights
            the stage could not or was told not to touch, each with why.
        details: Stage-specific figures (`layer_sparsity`, `plan`,
            `unique_values`, `teacher_metrics`, ...).

    Example:
        >>> result.stage_reports["prune"].sparsity  # doctest: +SKIP
        0.75
    """

    stage: str
    metrics: dict
    seconds: float = 0.0
    sparsity: Optional[float] = None
    left_out: tuple = ()
    details: dict = dataclasses.field(default_factory=dict)

    def to_dict(self):
        """Return the JSON-safe dict kept in `OptimizationResult.report["stages"]`."""
        data = {"metrics": dict(self.metrics), "seconds": self.seconds}
        if self.sparsity is not None:
            data["sparsity"] = self.sparsity
        data["left_out"] = [dict(entry) for entry in self.left_out]
        data.update(self.details)
        return data

    @classmethod
    def from_dict(cls, stage, data):
        """Rebuild a report from `to_dict`'s output (e.g. a checkpoint's state)."""
        fixed = {"metrics", "seconds", "sparsity", "left_out"}
        return cls(stage=stage, metrics=dict(data.get("metrics") or {}), seconds=data.get("seconds", 0.0),
                   sparsity=data.get("sparsity"), left_out=tuple(data.get("left_out") or ()),
                   details={k: v for k, v in data.items() if k not in fixed})


@dataclasses.dataclass
class StageContext:
    """What every stage of one `optimize` call shares: data, loss, callbacks, checkpoint."""

    recipe: object
    train: object
    validation: object
    steps: int
    loss: object
    metrics: object
    optimizer: object
    callbacks: list
    strategy: object
    verbose: int
    checkpoint: object
    safe_mode: bool

    def compile(self, model, learning_rate):
        """Compile `model` with the run's loss and metrics and a fresh optimizer."""
        model.compile(optimizer=make_optimizer(self.optimizer, learning_rate), loss=self.loss,
                      metrics=self.metrics or ["accuracy"])
        return model

    def evaluate(self, model):
        """Validation metrics of a compiled `model` (empty without validation data)."""
        if self.validation is None:
            return {}
        values = model.evaluate(self.validation, verbose=0, return_dict=True)
        return {k: float(v) for k, v in values.items()}

    def fit(self, stage, model, epochs, learning_rate, callbacks):
        """Compile and fit `model` (or the interrupted run's epoch checkpoint of `stage`)."""
        done, logs = 0, {}
        saved = self.checkpoint.resume_epoch(stage, self.safe_mode) if self.checkpoint is not None else None
        if saved is not None:
            model, done, logs = saved
        self.compile(model, learning_rate)
        extra = list(self.callbacks)
        if self.checkpoint is not None:
            extra.append(self.checkpoint.epoch_callback(stage, epochs, logs))
        fit = model.fit(self.train, validation_data=self.validation, epochs=epochs, initial_epoch=done,
                        callbacks=list(callbacks) + extra, verbose=self.verbose)
        history = extra[-1].logs if self.checkpoint is not None else fit.history
        return model, history

    def after_pruning(self, config):
        """`config` with `preserve_sparsity` on when the recipe prunes first (the zeros must stay)."""
        if self.recipe.prune is not None and not config.preserve_sparsity:
            return dataclasses.replace(config, preserve_sparsity=True)
        return config


class Stage:
    """One optimization stage. Subclasses set `name` and implement `run`.

    Args:
        config: The stage's config (`PruningConfig`, `QuantizationConfig`, ...).

    Example:
        >>> stage = tfmm.optimization.stages.STAGE_TYPES["prune"](PruningConfig(target_sparsity=0.5))  # doctest: +SKIP
    """

    name = None

    def __init__(self, config):
        self.config = config

    def check(self, model):
        """Raise `ConfigError` before any training when the config does not fit `model`."""
        if hasattr(self.config, "exclude"):
            excluded_scope(model, self.config)

    def run(self, context, model):
        """Return `(model, history, StageReport)`: the stage applied and fine-tuned."""
        raise NotImplementedError


class DistillStage(Stage):
    """Train the model (the student) from the recipe's teacher."""

    name = "distill"

    def run(self, context, model):
        from tfmm.optimization.distillation import distill

        teacher = self.config.load_teacher(safe_mode=context.safe_mode)
        teacher_metrics = context.evaluate(context.compile(copy_model(teacher), 1e-3))
        model, history = distill(model, self.config, context.train, validation_data=context.validation,
                                 callbacks=context.callbacks, strategy=context.strategy, verbose=context.verbose)
        context.compile(model, context.recipe.learning_rate)
        return model, history, StageReport(
            self.name, context.evaluate(model),
            details={"teacher_metrics": teacher_metrics, "teacher_params": int(teacher.count_params()),
                     "student_params": int(model.count_params())})


class _SurgeryStage(Stage):
    """A stage that rewrites the graph smaller, then fine-tunes it (channel pruning, low rank)."""

    surgery = None

    def run(self, context, model):
        before = int(model.count_params())
        smaller, plan, left_out = type(self).surgery(model, self.config)
        smaller, history = context.fit(self.name, smaller, self.config.epochs, context.recipe.learning_rate, [])
        return smaller, history, StageReport(
            self.name, context.evaluate(smaller), left_out=tuple(left_out),
            details={"plan": plan, "params_before": before, "params_after": int(smaller.count_params())})


class ChannelPruneStage(_SurgeryStage):
    """Remove whole filters / units (`prune_channels`), then fine-tune."""

    name = "channel_prune"
    surgery = staticmethod(prune_channels)


class LowRankStage(_SurgeryStage):
    """Factorize Dense / Embedding / RNN input kernels (`factorize_low_rank`), then fine-tune."""

    name = "low_rank"
    surgery = staticmethod(factorize_low_rank)


class PruneStage(Stage):
    """Magnitude pruning, fine-tuned, then stripped."""

    name = "prune"

    def run(self, context, model):
        config = self.config
        plan = pruning_plan(model, config)
        pruned, callbacks = apply_pruning(model, config, steps_per_epoch=context.steps, epochs=config.epochs)
        pruned, history = context.fit(self.name, pruned, config.epochs, context.recipe.learning_rate, callbacks)
        model = context.compile(strip(pruned), context.recipe.learning_rate)
        sparsity = sparsity_report(model)
        achieved = {k: v["sparsity"] for k, v in sparsity["layers"].items()}
        return model, history, StageReport(
            self.name, context.evaluate(model), sparsity=sparsity["overall"],
            left_out=tuple(_short_of_target(plan, achieved, config)), details={"layer_sparsity": achieved})


def _short_of_target(plan, achieved, config):
    """Layers with weights that pruning left dense or well short of their target, each with why."""
    out = []
    for entry in plan:
        reached = achieved.get(entry["layer"], 0.0)
        if not entry["target"]:
            out.append({k: entry[k] for k in ("layer", "class_name", "reason")})
        elif reached < entry["target"] / 2:
            why = f"reached sparsity {reached:.2f} of its {entry['target']:.2f} target"
            if config.m_by_n:
                why += (f"; {config.m_by_n[0]}:{config.m_by_n[1]} structure applies to Conv2D / Dense kernels "
                        "whose input dimension TFMOT can group (a 1-channel stem cannot be)")
            out.append({"layer": entry["layer"], "class_name": entry["class_name"], "reason": why})
    return out


class ClusterStage(Stage):
    """Weight clustering (keeping pruned zeros after a prune stage), fine-tuned, then stripped."""

    name = "cluster"

    def run(self, context, model):
        config = context.after_pruning(self.config)
        model = _fold_before_clustering(context, model)
        clustered, left_out = apply_clustering(model, config)
        # Layers left unclustered would regrow their pruned weights.
        masks = [SparsityMask()] if config.preserve_sparsity else []
        clustered, history = context.fit(self.name, clustered, config.epochs, config.learning_rate, masks)
        model = context.compile(strip_clustering(clustered), context.recipe.learning_rate)
        return model, history, StageReport(
            self.name, context.evaluate(model), sparsity=sparsity_report(model)["overall"],
            left_out=tuple(left_out),
            details={"preserve_sparsity": config.preserve_sparsity,
                     "unique_values": {k: v["unique"] for k, v in cluster_report(model).items()}})


def _fold_before_clustering(context, model):
    """Fold the Conv1D BatchNormalizations that QAT would fold, before the kernels are clustered.

    QAT cannot fold them after clustering (folding scales each output channel and would
    break the clusters), and left unfolded they cost the int8 file a MUL + ADD + RELU and
    two RESHAPEs per audio block, outside XNNPACK's partitions: measured 1.73x the QAT
    int8 file's p50 (scratch, `small` preset), `make bench` 2.24x float32 before this.
    Folded here, the clusters are of the folded kernels.
    """
    quantize = context.recipe.quantize
    if quantize is None or not quantize.fold_batch_norm:
        return model
    modes = {p["layer"]: p["mode"] for p in quantization_plan(model, context.after_pruning(quantize))}
    pairs = {bn: conv for bn, conv in conv1d_batch_norm_pairs(model).items() if modes.get(bn) == "folded"}
    return fold_conv1d_batch_norms(model, pairs) if pairs else model


class QuantizeStage(Stage):
    """Quantization-aware training (sparsity- and cluster-preserving after those stages)."""

    name = "quantize"

    def run(self, context, model):
        recipe = context.recipe
        config = context.after_pruning(self.config)
        if recipe.cluster is not None and config.fold_batch_norm:
            # Folding scales each output channel: a clustered Conv1D kernel would lose its clusters
            # (the cluster stage folded them before clustering).
            config = dataclasses.replace(config, fold_batch_norm=False)
        plan = quantization_plan(model, config)
        with qat_scope():
            qat = apply_qat(model, config)
            callbacks = [SparsityMask()] if config.preserve_sparsity else []
            if recipe.cluster is not None:
                callbacks.append(ClusterPreserve())
            qat, history = context.fit(self.name, qat, config.epochs, config.learning_rate, callbacks)
        float_layers = [{"layer": p["layer"], "class_name": p["class_name"], "reason": p["reason"]}
                        for p in plan if p["mode"] == "float"]
        return qat, history, StageReport(
            self.name, context.evaluate(qat), sparsity=sparsity_report(qat)["overall"],
            left_out=tuple(float_layers),
            details={"preserve_sparsity": config.preserve_sparsity,
                     "unique_values": ({k: v["unique"] for k, v in cluster_report(qat).items()}
                                       if recipe.cluster is not None else None),
                     "plan": plan, "float_layers": float_layers})


STAGE_TYPES = {stage.name: stage for stage in (DistillStage, ChannelPruneStage, LowRankStage, PruneStage,
                                               ClusterStage, QuantizeStage)}
