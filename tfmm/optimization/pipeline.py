"""`optimize`: run a recipe's stages on a model and report what each achieved."""

import dataclasses
import time

import tensorflow as tf

from tfmm._keras import check_keras2, keras
from tfmm.artifacts import copy_model
from tfmm.data import as_dataset
from tfmm.errors import ConfigError, DataError
from tfmm.models.flatten import flatten_model, nested_models
from tfmm.optimization.checkpoint import Checkpoint
from tfmm.optimization.distribute import strategy_scope
from tfmm.optimization.recipe import Recipe
from tfmm.optimization.stages import STAGE_TYPES, StageContext, StageReport, make_optimizer

__all__ = ["OptimizationResult", "optimize"]


@dataclasses.dataclass
class OptimizationResult:
    """What `optimize` returns.

    Attributes:
        model: The optimized model, ready for `tfmm.export` (pruning wrappers
            stripped; QAT wrappers kept, they carry the learned ranges).
        history: `{stage: {metric: [per-epoch values]}}` of each fine-tune.
        report: JSON-safe: the recipe, the submodels inlined first
            (`flattened`: every layer of a nested backbone is optimized), and per stage (`float` first) its
            validation metrics, achieved sparsity, layers left out with reasons,
            and stage-specific figures (the quantization plan, ...).
    """

    model: keras.Model
    history: dict
    report: dict

    @property
    def stage_reports(self):
        """`{stage: StageReport}` of the stages that ran, in order (typed view of `report`)."""
        return {name: StageReport.from_dict(name, data) for name, data in self.report["stages"].items()
                if name != "float"}


def _steps(dataset, steps_per_epoch):
    if steps_per_epoch:
        return int(steps_per_epoch)
    n = int(tf.data.experimental.cardinality(dataset).numpy())
    if n < 0:  # unknown or infinite: count one pass
        n = sum(1 for _ in dataset)
    if n <= 0:
        raise DataError("`train_data` is empty.")
    return n


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
    nested = nested_models(model)
    model = flatten_model(model)  # TFMOT cannot wrap the layers of a submodel: inline them
    stages = [STAGE_TYPES[name](getattr(recipe, name)) for name in recipe.stages]
    for stage in stages:
        stage.check(model)  # every layer a setting names exists: before any training
    if not isinstance(callbacks, (list, tuple)):
        raise ConfigError(f"`callbacks` must be a list of Keras callbacks. Received: {type(callbacks).__name__}")
    if checkpoint_dir is not None and strategy is not None:
        raise ConfigError("`checkpoint_dir` works in one process; pass strategy=None to checkpoint, "
                          "or drop checkpoint_dir under a tf.distribute strategy.")
    if resume and checkpoint_dir is None:
        raise ConfigError("`resume=True` needs `checkpoint_dir`: the folder of the run to continue.")
    # Ids, labels and dtypes are checked against the model before any graph runs.
    train = as_dataset(train_data, "train_data", model=model, shuffle=True)
    validation = as_dataset(validation_data, "validation_data", model=model)
    steps = _steps(train, steps_per_epoch)
    loss = loss or getattr(model, "loss", None) or keras.losses.SparseCategoricalCrossentropy()
    make_optimizer(optimizer, 1e-3)  # fail on a bad optimizer before any training
    ckpt = Checkpoint(checkpoint_dir, recipe, resume=resume) if checkpoint_dir is not None else None

    with strategy_scope(strategy):  # checks `strategy` before any training
        if strategy is not None:
            model = copy_model(model)  # variables mirrored across the replicas
        context = StageContext(recipe, train, validation, steps, loss, metrics, optimizer, list(callbacks),
                               strategy, verbose, ckpt, safe_mode)
        restored, report, history = ckpt.restore(safe_mode) if ckpt is not None else (None, None, {})
        if report is None:
            float_metrics = context.evaluate(context.compile(copy_model(model), 1e-3))
            report = {"recipe": recipe.to_dict(), "flattened": nested, "stages": {"float": {"metrics": float_metrics}}}
            if ckpt is not None:
                ckpt.start(report)
        current = restored or model
        for stage in stages:
            if ckpt is not None and ckpt.done(stage.name):
                continue
            start = time.perf_counter()
            current, history[stage.name], stage_report = stage.run(context, current)
            stage_report = dataclasses.replace(stage_report, seconds=round(time.perf_counter() - start, 1))
            report["stages"][stage.name] = stage_report.to_dict()
            if ckpt is not None:
                ckpt.save_stage(stage.name, current, report, history)
        if getattr(current, "optimizer", None) is None:  # restored from a checkpoint
            context.compile(current, recipe.learning_rate)
        return OptimizationResult(model=current, history=history, report=report)
