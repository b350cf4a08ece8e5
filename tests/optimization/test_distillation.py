"""Knowledge distillation: configs, the Distiller, the recipe stage, student configs."""

import numpy as np
import pytest

import tfmm
from tfmm._keras import keras
from tfmm.errors import ConfigError
from tfmm.models import build_multimodal_model, compile_model, get_preset, student_config
from tfmm.optimization import DistillationConfig, Recipe, distill, optimize
from tfmm.optimization.distillation import Distiller

from tests.helpers import tiny_config


def test_student_config_is_narrower_and_shallower_and_builds():
    teacher = get_preset("base")
    student = student_config(teacher, width=0.5)
    assert student.image.depth == 10 and student.image.base_width == 16
    assert student.text.lstm_units == 48 and student.text.embedding_dim == 32
    assert student.audio.filters == (16, 32, 64, 64, 128)
    assert student.fusion.projection_dim % student.fusion.num_heads == 0
    assert (student.image.input_shape, student.text.vocab_size, student.num_classes) == (
        teacher.image.input_shape, teacher.text.vocab_size, teacher.num_classes)
    small = get_preset("small")
    assert build_multimodal_model(student_config(small, per_branch={"image": 1.0})).count_params() < \
        build_multimodal_model(small).count_params()
    with pytest.raises(ConfigError, match="`width` must be a width multiplier in \\(0, 1\\]. Received: 2"):
        student_config(teacher, width=2)
    with pytest.raises(ConfigError, match="per_branch"):
        student_config(teacher, per_branch={"video": 0.5})


def test_distillation_config_is_checked():
    with pytest.raises(ConfigError, match="temperature"):
        DistillationConfig(teacher="t.keras", temperature=0)
    with pytest.raises(ConfigError, match="alpha"):
        DistillationConfig(teacher="t.keras", alpha=1.5)
    with pytest.raises(ConfigError, match="No teacher model at 'missing.keras'"):
        DistillationConfig(teacher="missing.keras").load_teacher()
    with pytest.raises(ConfigError, match="`teacher` is required"):
        DistillationConfig().load_teacher()
    recipe = Recipe.from_dict({"distill": {"teacher": "t.keras", "epochs": 1}, "quantize": None})
    assert recipe.stages == ("distill", "quantize")
    assert recipe.with_epochs(3).distill.epochs == 3


def test_distiller_rejects_incompatible_models(learnable):
    other = build_multimodal_model(tiny_config(num_classes=7))
    with pytest.raises(ConfigError, match="same classes: 7 vs 4"):
        Distiller(other, learnable["model"])


def _noisy(labels, fraction, num_classes, seed=0):
    rng = np.random.default_rng(seed)
    flip = rng.uniform(size=len(labels)) < fraction
    return np.where(flip, rng.integers(0, num_classes, len(labels)), labels).astype(labels.dtype)


@pytest.mark.slow
def test_distilled_student_beats_the_same_student_trained_on_noisy_labels(learnable):
    """A task where distillation provably helps: the student only sees labels with
    60% noise; the teacher was trained on clean ones. Same student, same epochs."""
    (x, y), (xv, yv) = learnable["train"], learnable["validation"]
    noisy = _noisy(y, 0.6, 4)
    config = student_config(learnable["config"], width=0.5)

    def fresh():
        keras.utils.set_random_seed(3)
        return build_multimodal_model(config)

    alone = compile_model(fresh(), learning_rate=3e-3)
    alone.fit(x, noisy, batch_size=32, epochs=6, verbose=0)
    teacher = learnable["model"]
    flags, weights = [l.trainable for l in teacher.layers], teacher.get_weights()
    student, history = distill(fresh(), {"teacher": teacher, "alpha": 0.9, "epochs": 6,
                                         "learning_rate": 3e-3}, (x, noisy), verbose=0)
    # The caller's teacher is used, not changed (it was once left frozen, and so were its clones).
    assert teacher.trainable and [l.trainable for l in teacher.layers] == flags
    assert all(np.array_equal(a, b) for a, b in zip(weights, teacher.get_weights()))
    accuracy = lambda m: float(np.mean(m.predict(xv, verbose=0).argmax(-1) == yv))  # noqa: E731
    assert accuracy(student) >= accuracy(alone) + 0.1, (accuracy(student), accuracy(alone))
    assert len(history["soft_loss"]) == 6 and history["soft_loss"][-1] < history["soft_loss"][0]
    assert not any(l.name == learnable["model"].name for l in student.layers)  # a plain model


@pytest.mark.slow
def test_recipe_distill_then_prune_then_qat(learnable, tmp_path):
    teacher_path = str(tmp_path / "teacher.keras")
    learnable["model"].save(teacher_path)
    keras.utils.set_random_seed(0)
    student = build_multimodal_model(student_config(learnable["config"], width=0.5))
    recipe = {"distill": {"teacher": teacher_path, "epochs": 2, "learning_rate": 3e-3},
              "prune": {"target_sparsity": 0.5, "epochs": 1}, "quantize": {"epochs": 1}}
    result = optimize(student, recipe, learnable["train"], validation_data=learnable["validation"], verbose=0)
    stages = result.report["stages"]
    assert list(stages) == ["float", "distill", "prune", "quantize"]
    assert stages["distill"]["student_params"] < stages["distill"]["teacher_params"]
    assert stages["distill"]["metrics"]["accuracy"] > stages["float"]["metrics"]["accuracy"]
    assert abs(stages["quantize"]["sparsity"] - 0.5) <= 0.02
    assert not any(isinstance(l, Distiller) for l in result.model.layers)
