"""`optimize`: run a recipe's stages on a model and report what each achieved."""

import dataclasses
import time

import tensorflow as tf

from tfmm._keras import check_keras2, keras
from tfmm.errors import ConfigError, DataError
from tfmm.optimization.checkpoint import Checkpoint
from tfmm.optimization.distribute import strategy_scope
from tfmm.optimization.clustering import ClusterPreserve, apply_clustering, cluster_report, strip_clustering
from tfmm.optimization.pruning import SparsityMask, _check_patterns, apply_pruning, sparsity_report, strip
from tfmm.optimization.qat import apply_qat, quantization_plan, qat_scope
from tfmm.optimization.recipe import Recipe

__all__ = ["OptimizationResult", "optimize"]


@dataclasses.dataclass
class OptimizationResult:
    """What `optimize` returns.

    Attributes:
        model: The optimized model, ready for `tfmm.export` (pruning wrappers
            stripped; QAT wrappers kept, they carry the learned ranges).
        history: `{stage: {metric: [per-epoch values]}}` of each fine-tune.
        report: Per-stage validation metrics, achieved sparsity, the quantization
            plan and the layers left float (with reasons).
    """

    model: keras.Model
    history: dict
    report: dict


def _as_dataset(data, name, model=None):
    if data is None:
        return None
    if isinstance(data, tf.data.Dataset):
        return data
    if isinstance(data, tuple) and len(data) == 2:
        from tfmm.data import from_arrays

        return from_arrays(data[0], data[1], batch_size=32, shuffle=(name == "train_data"), model=model)
    raise DataError(
        f"`{name}` must be a tf.data.Dataset of (features, labels) batches or a "
        f"(features, labels) tuple of arrays. Received: {type(data).__name__}"
    )


def _steps(dataset, steps_per_epoch):
    if steps_per_epoch:
        return int(steps_per_epoch)
    n = int(tf.data.experimental.cardinality(dataset).numpy())
    if n < 0:  # unknown or infinite: count one pass
        n = sum(1 for _ in dataset)
    if n <= 0:
        raise DataError("`train_data` is empty.")
    return n


def _optimizer(optimizer, learning_rate):
    """A fresh optimizer per stage: Keras optimizers bind to one model's variables."""
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


def _compile(model, learning_rate, loss, metrics, optimizer="adam"):
    model.compile(
        optimizer=_optimizer(optimizer, learning_rate),
        loss=loss,
        metrics=metrics or ["accuracy"],
    )
    return model


def _copy(model):
    """A clone with the same weights (evaluating it leaves `model`'s compile state alone)."""
    with qat_scope():
        clone = keras.models.clone_model(model)
    clone.set_weights(model.get_weights())
    return clone


def _after_pruning(config, recipe):
    """A stage's config with `preserve_sparsity` on when the recipe pruned first (zeros must stay)."""
    if recipe.prune is not None and not config.preserve_sparsity:
        return dataclasses.replace(config, preserve_sparsity=True)
    return config


def _evaluate(model, validation):
    if validation is None:
        return {}
    values = model.evaluate(validation, verbose=0, return_dict=True)
    return {k: float(v) for k, v in values.items()}


def optimize(
    model,
    recipe,
    train_data,
    *,
    validation_data=None,
    epochs=None,
    loss=None,
    metrics=None,
    optimizer="adam",
    steps_per_epoch=None,
    callbacks=(),
    strategy=None,
    verbose=1,
    checkpoint_dir=None,
    resume=False,
    safe_mode=True,
):
    """Run a recipe (distill -> prune -> fine-tune -> strip -> QAT fine-tune) on a model.

    Args:
        model: A trained `tf_keras` functional model (e.g. from
            `tfmm.models.build_multimodal_model`).
        recipe: A `Recipe`, a dict, or the path of a YAML recipe.
        train_data: `tf.data.Dataset` of `(features, labels)` batches, or a
            `(features, labels)` tuple of arrays (batched by 32, shuffled).
        validation_data: Same forms; used for the per-stage metrics in the report.
        epochs: Overrides every stage's `epochs`.
        loss: Loss for fine-tuning; defaults to the model's own compiled loss, else
            sparse categorical cross-entropy.
        metrics: Metrics; defaults to `["accuracy"]`.
        optimizer: Optimizer name (`"adam"`, `"sgd"`, ...) or a function
            `learning_rate -> tf_keras optimizer`; each stage gets a fresh one at
            its own learning rate.
        steps_per_epoch: Batches per epoch, when the dataset cannot tell.
        callbacks: Extra Keras callbacks for every fine-tuning `fit` (e.g. a
            timer or early stopping); tfmm's own pruning / mask callbacks are added.
        strategy: A `tf.distribute.Strategy` to fine-tune with, e.g.
            `tf.distribute.MirroredStrategy()` (local devices) or
            `tf.distribute.MultiWorkerMirroredStrategy()` (processes / machines
            named by `TF_CONFIG`; create it first thing in the program). Every
            stage's model is built in its scope (`model` is copied in), each
            batch of `train_data` is the *global* batch, split across replicas.
            Pruning steps, masks and QAT ranges stay identical on all replicas.
        verbose: Keras progress output (0, 1 or 2).
        checkpoint_dir: Optional folder: the model is checkpointed there after
            each stage and after each epoch inside one (tfmm's safe `.tfmm`
            format), so an interrupted run can continue. Single process only.
        resume: Continue the run checkpointed in `checkpoint_dir` (same recipe);
            finished stages are skipped and a stage resumes at its next epoch
            (with a fresh optimizer state).
        safe_mode: Refuse a distillation teacher file that would run code or
            fetch a URL when loaded (see `tfmm.artifacts.load_model`).

    Returns:
        An `OptimizationResult`.

    Raises:
        TypeError: `model` is a Keras 3 model.
        ConfigError: Bad recipe, optimizer or strategy, or a recipe pattern that
            matches no layer (checked before any training).
        DataError: Bad data.

    Example:
        >>> result = tfmm.optimization.optimize(
        ...     model, {"prune": {"target_sparsity": 0.75}, "quantize": {}},
        ...     (x_train, y_train), validation_data=(x_val, y_val))  # doctest: +SKIP
        >>> result.report["stages"]["prune"]["sparsity"]  # doctest: +SKIP
        0.75
    """
    check_keras2(model)
    if not isinstance(model, keras.Model):
        raise TypeError(f"`model` must be a tf_keras.Model. Received: {type(model).__name__}")
    if isinstance(recipe, str):
        recipe = Recipe.from_yaml(recipe)
    elif isinstance(recipe, dict):
        recipe = Recipe.from_dict(recipe)
    if not isinstance(recipe, Recipe):
        raise ConfigError(f"`recipe` must be a Recipe, dict or YAML path. Received: {type(recipe).__name__}")
    if epochs is not None:
        if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs <= 0:
            raise ConfigError(f"`epochs` must be a positive integer or None. Received: epochs={epochs!r}")
        recipe = recipe.with_epochs(epochs)
    if recipe.prune is not None:
        _check_patterns(model, recipe.prune)
    if not isinstance(callbacks, (list, tuple)):
        raise ConfigError(f"`callbacks` must be a list of Keras callbacks. Received: {type(callbacks).__name__}")
    if checkpoint_dir is not None and strategy is not None:
        raise ConfigError("`checkpoint_dir` works in one process; pass strategy=None to checkpoint, "
                          "or drop checkpoint_dir under a tf.distribute strategy.")
    if resume and checkpoint_dir is None:
        raise ConfigError("`resume=True` needs `checkpoint_dir`: the folder of the run to continue.")
    train = _as_dataset(train_data, "train_data", model)  # ids, labels and dtypes checked before any graph
    validation = _as_dataset(validation_data, "validation_data", model)
    steps = _steps(train, steps_per_epoch)
    loss = loss or getattr(model, "loss", None) or keras.losses.SparseCategoricalCrossentropy()
    _optimizer(optimizer, 1e-3)  # fail on a bad optimizer before any training
    ckpt = Checkpoint(checkpoint_dir, recipe, resume=resume) if checkpoint_dir is not None else None

    scope = strategy_scope(strategy)  # checks `strategy` before any training
    with scope:
        if strategy is not None:
            model = _copy(model)  # variables mirrored across the replicas
        run = _Run(recipe, train, validation, steps, loss, metrics, optimizer, list(callbacks), strategy,
                   verbose, ckpt, safe_mode)
        restored, report, history = ckpt.restore(safe_mode) if ckpt is not None else (None, None, {})
        if report is None:
            report = {"recipe": recipe.to_dict(),
                      "stages": {"float": {"metrics": _evaluate(run.compile(_copy(model), 1e-3), validation)}}}
            if ckpt is not None:
                ckpt.start(report)
        current = restored or model
        for stage in recipe.stages:
            if ckpt is not None and ckpt.done(stage):
                continue
            start = time.perf_counter()
            current, history[stage], report["stages"][stage] = _STAGES[stage](run, current)
            report["stages"][stage]["seconds"] = round(time.perf_counter() - start, 1)
            if ckpt is not None:
                ckpt.save_stage(stage, current, report, history)
        if getattr(current, "optimizer", None) is None:  # restored from a checkpoint
            run.compile(current, recipe.learning_rate)
        return OptimizationResult(model=current, history=history, report=report)


@dataclasses.dataclass
class _Run:
    """What every stage of one `optimize` call shares."""

    recipe: Recipe
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
        return _compile(model, learning_rate, self.loss, self.metrics, self.optimizer)

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


def _distill_stage(run, current):
    from tfmm.optimization.distillation import distill

    teacher = run.recipe.distill.load_teacher(safe_mode=run.safe_mode)
    teacher_metrics = _evaluate(run.compile(_copy(teacher), 1e-3), run.validation)
    current, history = distill(current, run.recipe.distill, run.train, validation_data=run.validation,
                               callbacks=run.callbacks, strategy=run.strategy, verbose=run.verbose)
    run.compile(current, run.recipe.learning_rate)
    return current, history, {
        "metrics": _evaluate(current, run.validation),
        "teacher_metrics": teacher_metrics,
        "teacher_params": int(teacher.count_params()),
        "student_params": int(current.count_params()),
    }


def _prune_stage(run, current):
    config = run.recipe.prune
    pruned, callbacks = apply_pruning(current, config, steps_per_epoch=run.steps, epochs=config.epochs)
    pruned, history = run.fit("prune", pruned, config.epochs, run.recipe.learning_rate, callbacks)
    current = run.compile(strip(pruned), run.recipe.learning_rate)
    sparsity = sparsity_report(current)
    return current, history, {
        "metrics": _evaluate(current, run.validation),
        "sparsity": sparsity["overall"],
        "layer_sparsity": {k: v["sparsity"] for k, v in sparsity["layers"].items()},
    }


def _cluster_stage(run, current):
    config = _after_pruning(run.recipe.cluster, run.recipe)
    clustered, left_out = apply_clustering(current, config)
    # Layers left unclustered (the LSTM) would regrow their pruned weights.
    masks = [SparsityMask()] if config.preserve_sparsity else []
    clustered, history = run.fit("cluster", clustered, config.epochs, config.learning_rate, masks)
    current = run.compile(strip_clustering(clustered), run.recipe.learning_rate)
    return current, history, {
        "metrics": _evaluate(current, run.validation),
        "sparsity": sparsity_report(current)["overall"],
        "preserve_sparsity": config.preserve_sparsity,
        "unique_values": {k: v["unique"] for k, v in cluster_report(current).items()},
        "left_out": left_out,
    }


def _quantize_stage(run, current):
    recipe = run.recipe
    config = _after_pruning(recipe.quantize, recipe)
    if recipe.cluster is not None and config.fold_batch_norm:
        # Folding scales each output channel: a clustered Conv1D kernel would lose its clusters.
        config = dataclasses.replace(config, fold_batch_norm=False)
    plan = quantization_plan(current, config)
    with qat_scope():
        qat = apply_qat(current, config)
        callbacks = [SparsityMask()] if config.preserve_sparsity else []
        if recipe.cluster is not None:
            callbacks.append(ClusterPreserve())
        qat, history = run.fit("quantize", qat, config.epochs, config.learning_rate, callbacks)
    sparsity = sparsity_report(qat)
    return qat, history, {
        "metrics": _evaluate(qat, run.validation),
        "sparsity": sparsity["overall"],
        "preserve_sparsity": config.preserve_sparsity,
        "unique_values": ({k: v["unique"] for k, v in cluster_report(qat).items()}
                          if recipe.cluster is not None else None),
        "plan": plan,
        "float_layers": [
            {"layer": p["layer"], "class_name": p["class_name"], "reason": p["reason"]}
            for p in plan
            if p["mode"] == "float"
        ],
    }


_STAGES = {"distill": _distill_stage, "prune": _prune_stage, "cluster": _cluster_stage, "quantize": _quantize_stage}
