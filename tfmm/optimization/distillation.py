"""Knowledge distillation: a student learns from a frozen teacher's soft targets.

The loss is `alpha * T^2 * KL(teacher_T || student_T) + (1 - alpha) * hard loss`,
where `_T` are the class distributions softened by temperature `T` (Hinton et
al., 2015). tfmm heads output probabilities, so logits are recovered as
`log(p)`; sigmoid (multilabel) heads use a soft binary cross-entropy instead.
"""

import dataclasses
import os
from typing import Optional, Union

import tensorflow as tf

from tfmm._args import require_model
from tfmm._keras import check_keras2, keras
from tfmm.config import Config
from tfmm.errors import ConfigError

__all__ = ["DistillationConfig", "Distiller", "distill"]

_EPSILON = 1e-7


@dataclasses.dataclass(frozen=True)
class DistillationConfig(Config):
    """Distillation settings (a recipe's `distill` stage, or for `distill`).

    Args:
        teacher: The teacher: a `.keras` / `.h5` path (YAML recipes) or a model.
        temperature: Softening temperature `T` (> 0; 2-8 is usual).
        alpha: Weight of the soft-target loss in [0, 1]; `1 - alpha` weighs the
            hard-label loss.
        epochs: Training epochs of the student.
        learning_rate: Learning rate of the student.

    Raises:
        ConfigError: A bad value (named, with what is allowed).

    Example:
        >>> cfg = tfmm.optimization.DistillationConfig(teacher="teacher.keras", temperature=4.0)
    """

    teacher: Optional[Union[str, object]] = None
    temperature: float = 4.0
    alpha: float = 0.7
    epochs: int = 2
    learning_rate: float = 1e-3

    def validate(self):
        if self.teacher is not None and not isinstance(self.teacher, (str, keras.Model)):
            self._fail("teacher", "must be the path of a saved model or a tf_keras model")
        if isinstance(self.temperature, bool) or not isinstance(self.temperature, (int, float)) or self.temperature <= 0:
            self._fail("temperature", "must be a positive number")
        self._check_fraction("alpha", 0.0, 1.0)
        self._check_positive_int("epochs")
        if isinstance(self.learning_rate, bool) or not isinstance(self.learning_rate, (int, float)) or not (
            0 < self.learning_rate < 1
        ):
            self._fail("learning_rate", "must be a number in (0, 1)")

    def to_dict(self):
        data = super().to_dict()
        if isinstance(self.teacher, keras.Model):
            data["teacher"] = f"<model {self.teacher.name}>"
        return data

    def load_teacher(self, *, safe_mode=True):
        """Return the teacher model (loading it when `teacher` is a path).

        Args:
            safe_mode: Refuse a teacher file that would run code or fetch a URL
                when loaded (see `tfmm.artifacts.load_model`).

        Returns:
            A `tf_keras.Model`.

        Raises:
            ConfigError: No teacher, or no loadable model at the path.
            SecurityError: The teacher file would run code (with `safe_mode=True`).
        """
        if self.teacher is None:
            raise ConfigError("`teacher` is required for distillation: a saved model path or a model.")
        if isinstance(self.teacher, keras.Model):
            return self.teacher
        if not os.path.isfile(self.teacher):
            raise ConfigError(f"No teacher model at {self.teacher!r}. Pass a .keras / .tfmm / .h5 file.")
        from tfmm.artifacts import load_model

        return load_model(self.teacher, compile=False, safe_mode=safe_mode)


def _is_sigmoid(model):
    activation = getattr(model.layers[-1], "activation", None)
    return getattr(activation, "__name__", "") == "sigmoid"


class Distiller(keras.Model):
    """Trains `student` on hard labels plus the frozen `teacher`'s soft targets.

    Compile it like any model (`optimizer`, `metrics`); `fit` trains the student
    only; `evaluate` / `predict` / `call` use the student. Save `distiller.student`
    (a plain model, no teacher inside).

    Args:
        student: The `tf_keras` model to train.
        teacher: A trained `tf_keras` model with the same inputs and classes.
        temperature: Softening temperature.
        alpha: Weight of the soft-target loss.

    Raises:
        ConfigError: Student and teacher disagree on inputs or number of classes.

    Example:
        >>> distiller = Distiller(student, teacher, temperature=4.0, alpha=0.7)  # doctest: +SKIP
        >>> distiller.compile(optimizer="adam", metrics=["accuracy"])  # doctest: +SKIP
        >>> distiller.fit(train, epochs=2)  # doctest: +SKIP
    """

    def __init__(self, student, teacher, *, temperature=4.0, alpha=0.7, **kwargs):
        super().__init__(**kwargs)
        check_keras2(student)
        check_keras2(teacher)
        names = lambda m: sorted(t.name.split(":")[0] for t in m.inputs)  # noqa: E731
        if not set(names(student)) <= set(names(teacher)):
            raise ConfigError(
                f"The student's inputs {names(student)} must be among the teacher's {names(teacher)}."
            )
        if student.outputs[0].shape[-1] != teacher.outputs[0].shape[-1]:
            raise ConfigError(
                f"Student and teacher must predict the same classes: {student.outputs[0].shape[-1]} "
                f"vs {teacher.outputs[0].shape[-1]} outputs."
            )
        self.student = student
        # Only the student's variables are trained (`train_step`); the teacher runs in
        # inference mode. Its `trainable` flag is left alone: freezing it here froze
        # the caller's model, and every clone of it, for good.
        self.teacher = teacher
        self.temperature = float(temperature)
        self.alpha = float(alpha)
        self.multilabel = _is_sigmoid(student)
        self._teacher_inputs = names(teacher)
        self._student_inputs = names(student)

    def compile(self, optimizer="adam", metrics=None, **kwargs):
        """Compile with the student's hard-label loss chosen from its head."""
        kind = keras.losses.BinaryCrossentropy if self.multilabel else keras.losses.SparseCategoricalCrossentropy
        self.hard_loss = kind()
        # Per example in `train_step`: Keras refuses averaging losses inside a distribution strategy.
        self._hard_per_example = kind(reduction=keras.losses.Reduction.NONE)
        super().compile(optimizer=optimizer, metrics=metrics, loss=self.hard_loss, **kwargs)

    def call(self, inputs, training=False):
        return self.student({k: inputs[k] for k in self._student_inputs}, training=training)

    def _soft_loss(self, teacher_probs, student_probs):
        t = self.temperature
        if self.multilabel:
            def soften(p):
                logit = tf.math.log(p + _EPSILON) - tf.math.log(1.0 - p + _EPSILON)
                return tf.sigmoid(logit / t)
            return keras.losses.binary_crossentropy(soften(teacher_probs), soften(student_probs)) * t * t
        soft_teacher = tf.nn.softmax(tf.math.log(teacher_probs + _EPSILON) / t)
        soft_student = tf.nn.softmax(tf.math.log(student_probs + _EPSILON) / t)
        return keras.losses.kl_divergence(soft_teacher, soft_student) * t * t

    def train_step(self, data):
        x, y = data[0], data[1]
        teacher_probs = tf.stop_gradient(self.teacher({k: x[k] for k in self._teacher_inputs}, training=False))
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        with tf.GradientTape() as tape:
            student_probs = self(x, training=True)
            hard = tf.reduce_mean(self._hard_per_example(y, student_probs))
            soft = tf.reduce_mean(self._soft_loss(teacher_probs, student_probs))
            loss = self.alpha * soft + (1.0 - self.alpha) * hard + tf.add_n(self.student.losses or [0.0])
            # Gradients are summed over replicas: each one contributes its share of the mean.
            scaled = loss / replicas
        variables = self.student.trainable_variables
        self.optimizer.apply_gradients(zip(tape.gradient(scaled, variables), variables))
        self.compiled_metrics.update_state(y, student_probs)
        return {"loss": loss, "soft_loss": soft, "hard_loss": hard,
                **{m.name: m.result() for m in self.metrics if m.name != "loss"}}


def distill(student, config, train_data, *, validation_data=None, epochs=None, callbacks=(), strategy=None,
            verbose=1):
    """Train `student` from `config.teacher`; return the plain trained student and its history.

    Args:
        student: The `tf_keras` student model (e.g. from a smaller preset, see
            `tfmm.models.student_config`).
        config: A `DistillationConfig` or dict.
        train_data: `tf.data.Dataset` of `(features, labels)` or a `(features, labels)` tuple.
        validation_data: Same forms, optional.
        epochs: Overrides `config.epochs`.
        callbacks: Extra Keras callbacks.
        strategy: A `tf.distribute.Strategy` (see `tfmm.optimization.optimize`);
            the teacher is loaded and the student copied into its scope.
        verbose: Keras progress output.

    Returns:
        `(student, history_dict)`: the student, trained, compiled with its own
        loss so it can be evaluated, saved or optimized further (the same object
        without a strategy; its copy in the strategy's scope with one).

    Raises:
        ConfigError: Bad config or strategy, missing teacher, or incompatible models.

    Example:
        >>> student, history = tfmm.optimization.distill(
        ...     student, {"teacher": "teacher.keras", "epochs": 2}, (x, y))  # doctest: +SKIP
    """
    require_model(student, "student")
    from tfmm.optimization.distribute import strategy_scope
    from tfmm.artifacts import copy_model
    from tfmm.data import as_dataset

    if isinstance(config, dict):
        config = DistillationConfig.from_dict(config)
    with strategy_scope(strategy):
        if strategy is not None:
            student = copy_model(student)
        distiller = Distiller(student, config.load_teacher(), temperature=config.temperature, alpha=config.alpha)
        distiller.compile(optimizer=keras.optimizers.Adam(config.learning_rate), metrics=["accuracy"])
        fit = distiller.fit(as_dataset(train_data, "train_data", shuffle=True),
                            validation_data=as_dataset(validation_data, "validation_data"),
                            epochs=epochs or config.epochs, callbacks=list(callbacks), verbose=verbose)
        student.compile(optimizer=keras.optimizers.Adam(config.learning_rate), loss=distiller.hard_loss,
                        metrics=["accuracy"])
    return student, fit.history
