"""`optimize`: run a recipe's stages on a model and report what each achieved."""

import dataclasses
import time

import tensorflow as tf

from tfmm._keras import check_keras2, keras
from tfmm.errors import ConfigError, DataError
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


def _as_dataset(data, name):
    if data is None:
        return None
    if isinstance(data, tf.data.Dataset):
        return data
    if isinstance(data, tuple) and len(data) == 2:
        from tfmm.data import from_arrays

        return from_arrays(data[0], data[1], batch_size=32, shuffle=(name == "train_data"))
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
    if isinstance(recipe, str):
        recipe = Recipe.from_yaml(recipe)
    elif isinstance(recipe, dict):
        recipe = Recipe.from_dict(recipe)
    if not isinstance(recipe, Recipe):
        raise ConfigError(f"`recipe` must be a Recipe, dict or YAML path. Received: {type(recipe).__name__}")
    if epochs is not None:
        recipe = recipe.with_epochs(epochs)
    if recipe.prune is not None:
        _check_patterns(model, recipe.prune)
    train = _as_dataset(train_data, "train_data")
    validation = _as_dataset(validation_data, "validation_data")
    steps = _steps(train, steps_per_epoch)
    extra_callbacks = list(callbacks)
    loss = loss or getattr(model, "loss", None) or keras.losses.SparseCategoricalCrossentropy()
    _optimizer(optimizer, 1e-3)  # fail on a bad optimizer before any training

    scope = strategy_scope(strategy)  # checks `strategy` before any training
    with scope:
        if strategy is not None:
            model = _copy(model)  # variables mirrored across the replicas
        report = {"recipe": recipe.to_dict(), "stages": {}}
        history = {}
        report["stages"]["float"] = {"metrics": _evaluate(_compile(_copy(model), 1e-3, loss, metrics), validation)}
        current = model

        if recipe.distill is not None:
            from tfmm.optimization.distillation import distill

            start = time.perf_counter()
            teacher = recipe.distill.load_teacher()
            teacher_metrics = _evaluate(_compile(_copy(teacher), 1e-3, loss, metrics), validation)
            current, history["distill"] = distill(current, recipe.distill, train, validation_data=validation,
                                                  callbacks=extra_callbacks, strategy=strategy,
                                                  verbose=verbose)
            _compile(current, recipe.learning_rate, loss, metrics, optimizer)
            report["stages"]["distill"] = {
                "metrics": _evaluate(current, validation),
                "teacher_metrics": teacher_metrics,
                "teacher_params": int(teacher.count_params()),
                "student_params": int(current.count_params()),
                "seconds": round(time.perf_counter() - start, 1),
            }

        if recipe.prune is not None:
            start = time.perf_counter()
            pruned, callbacks = apply_pruning(
                current, recipe.prune, steps_per_epoch=steps, epochs=recipe.prune.epochs
            )
            _compile(pruned, recipe.learning_rate, loss, metrics, optimizer)
            fit = pruned.fit(train, validation_data=validation, epochs=recipe.prune.epochs,
                             callbacks=callbacks + list(extra_callbacks), verbose=verbose)
            current = strip(pruned)
            _compile(current, recipe.learning_rate, loss, metrics, optimizer)
            sparsity = sparsity_report(current)
            history["prune"] = fit.history
            report["stages"]["prune"] = {
                "metrics": _evaluate(current, validation),
                "sparsity": sparsity["overall"],
                "layer_sparsity": {k: v["sparsity"] for k, v in sparsity["layers"].items()},
                "seconds": round(time.perf_counter() - start, 1),
            }

        if recipe.cluster is not None:
            start = time.perf_counter()
            cconfig = _after_pruning(recipe.cluster, recipe)
            clustered, left_out = apply_clustering(current, cconfig)
            _compile(clustered, cconfig.learning_rate, loss, metrics, optimizer)
            # Layers left unclustered (the LSTM) would regrow their pruned weights.
            masks = [SparsityMask()] if cconfig.preserve_sparsity else []
            fit = clustered.fit(train, validation_data=validation, epochs=cconfig.epochs,
                                callbacks=masks + list(extra_callbacks), verbose=verbose)
            current = strip_clustering(clustered)
            _compile(current, recipe.learning_rate, loss, metrics, optimizer)
            history["cluster"] = fit.history
            report["stages"]["cluster"] = {
                "metrics": _evaluate(current, validation),
                "sparsity": sparsity_report(current)["overall"],
                "preserve_sparsity": cconfig.preserve_sparsity,
                "unique_values": {k: v["unique"] for k, v in cluster_report(current).items()},
                "left_out": left_out,
                "seconds": round(time.perf_counter() - start, 1),
            }

        if recipe.quantize is not None:
            start = time.perf_counter()
            qconfig = _after_pruning(recipe.quantize, recipe)
            if recipe.cluster is not None and qconfig.fold_batch_norm:
                # Folding scales each output channel: a clustered Conv1D kernel would lose its clusters.
                qconfig = dataclasses.replace(qconfig, fold_batch_norm=False)
            plan = quantization_plan(current, qconfig)
            with qat_scope():
                qat = apply_qat(current, qconfig)
                _compile(qat, qconfig.learning_rate, loss, metrics, optimizer)
                callbacks = [SparsityMask()] if qconfig.preserve_sparsity else []
                if recipe.cluster is not None:
                    callbacks.append(ClusterPreserve())
                fit = qat.fit(train, validation_data=validation, epochs=qconfig.epochs,
                              callbacks=callbacks + list(extra_callbacks), verbose=verbose)
            current = qat
            history["quantize"] = fit.history
            sparsity = sparsity_report(current)
            report["stages"]["quantize"] = {
                "metrics": _evaluate(current, validation),
                "sparsity": sparsity["overall"],
                "preserve_sparsity": qconfig.preserve_sparsity,
                "unique_values": ({k: v["unique"] for k, v in cluster_report(current).items()}
                                  if recipe.cluster is not None else None),
                "plan": plan,
                "float_layers": [
                    {"layer": p["layer"], "class_name": p["class_name"], "reason": p["reason"]}
                    for p in plan
                    if p["mode"] == "float"
                ],
                "seconds": round(time.perf_counter() - start, 1),
            }
        return OptimizationResult(model=current, history=history, report=report)
