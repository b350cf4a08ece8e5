import numpy as np
import pytest

import tfmm
from tfmm._keras import keras, tfmot, unwrap
from tfmm.errors import ConfigError
from tfmm.optimization import QuantizationConfig, Recipe, apply_qat, optimize, qat_scope, quantization_plan, sparsity_report
from tfmm.optimization.folding import conv1d_batch_norm_pairs, fold_conv1d_batch_norms

from tests.conftest import copy_model


def _accuracy(model, data):
    x, y = data
    return float(np.mean(model.predict(x, verbose=0).argmax(-1) == y))


@pytest.mark.slow
def test_qat_of_the_full_model_trains_and_stays_within_3_points(learnable):
    qat = apply_qat(copy_model(learnable["model"]))
    wrapped = {l.name for l in qat.layers if type(l).__name__ == "QuantizeWrapperV2"}
    assert {"quant_audio_block1_conv", "quant_image_stem_conv", "quant_head_output"} <= wrapped
    quantize_inputs = [l for l in qat.layers if type(l).__name__ == "QuantizeLayer"]
    assert len(quantize_inputs) == 2  # image and audio; never the int32 text input
    with tfmm.optimization.qat_scope():
        tfmm.models.compile_model(qat, learning_rate=2e-4)
        qat.fit(*learnable["train"], batch_size=32, epochs=2, verbose=0)
    assert _accuracy(qat, learnable["validation"]) >= learnable["accuracy"] - 0.03


@pytest.mark.slow
def test_optimize_prune_then_sparsity_preserving_qat(learnable, tmp_path):
    recipe_path = tmp_path / "recipe.yaml"
    recipe_path.write_text(
        "prune:\n  target_sparsity: 0.5\n  epochs: 2\nquantize:\n  epochs: 1\n"
    )
    result = optimize(
        copy_model(learnable["model"]), str(recipe_path), learnable["train"],
        validation_data=learnable["validation"], verbose=0,
    )
    stages = result.report["stages"]
    assert list(stages) == ["float", "prune", "quantize"]
    assert abs(stages["prune"]["sparsity"] - 0.5) <= 0.02
    assert abs(stages["quantize"]["sparsity"] - 0.5) <= 0.02
    assert stages["quantize"]["preserve_sparsity"] is True
    assert abs(sparsity_report(result.model)["overall"] - 0.5) <= 0.02
    # QAT keeps the accuracy of the pruned model it starts from (the tiny model
    # itself loses some to 50% pruning; it has few weights to spare).
    assert stages["quantize"]["metrics"]["accuracy"] >= stages["prune"]["metrics"]["accuracy"] - 0.03
    assert stages["prune"]["metrics"]["accuracy"] > 0.5  # 4 classes: chance is 0.25
    assert set(result.history) == {"prune", "quantize"}
    assert len(result.history["prune"]["loss"]) == 2
    # Every layer the plan leaves float is listed, with a reason.
    floats = {f["layer"]: f["reason"] for f in stages["quantize"]["float_layers"]}
    plan_floats = {p["layer"] for p in stages["quantize"]["plan"] if p["mode"] == "float"}
    assert set(floats) == plan_floats >= {"text", "text_embedding", "text_lstm1"}
    assert all(floats.values())
    # The typed view of the same report, one StageReport per stage that ran.
    typed = result.stage_reports
    assert list(typed) == ["prune", "quantize"] and typed["prune"].stage == "prune"
    assert typed["prune"].sparsity == stages["prune"]["sparsity"]
    assert typed["prune"].details["layer_sparsity"] == stages["prune"]["layer_sparsity"]
    assert [e["layer"] for e in typed["quantize"].left_out] == list(floats)
    assert typed["quantize"].seconds > 0 and typed["quantize"].to_dict() == stages["quantize"]


def test_quantization_plan_covers_every_layer_with_reasons(learnable):
    model = learnable["model"]
    plan = quantization_plan(model)
    assert [p["layer"] for p in plan] == [l.name for l in model.layers]
    modes = {p["layer"]: p["mode"] for p in plan}
    assert modes["text"] == "float" and modes["image"] == "input"
    assert modes["audio_block1_conv"] == "weights" and modes["audio_block1_bn"] == "folded"
    assert modes["image_stem_conv"] == "default" and modes["image_stem_bn"] == "folded"
    assert all(modes[p["layer"]] in ("folded", "output") for p in plan if p["class_name"] == "BatchNormalization")
    assert all(p["reason"] for p in plan if p["mode"] == "float")
    # Without Conv1D folding, its BatchNormalization quantizes the block's output.
    unfolded = {p["layer"]: p["mode"] for p in quantization_plan(model, QuantizationConfig(fold_batch_norm=False))}
    assert unfolded["audio_block1_conv"] == "weights" and unfolded["audio_block1_bn"] == "output"
    assert unfolded["image_stem_bn"] == "folded"


def test_conv1d_batch_norms_fold_exactly_and_qat_keeps_them_folded(learnable):
    model = learnable["model"]
    x, _ = learnable["validation"]
    pairs = conv1d_batch_norm_pairs(model)
    assert pairs and all(bn.endswith("_bn") and pairs[bn] == bn[: -len("bn")] + "conv" for bn in pairs)
    folded = fold_conv1d_batch_norms(model)
    assert [l.name for l in folded.layers] == [l.name for l in model.layers]
    assert not any(isinstance(folded.get_layer(bn), keras.layers.BatchNormalization) for bn in pairs)
    np.testing.assert_allclose(folded.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-5)
    assert fold_conv1d_batch_norms(folded) is folded  # nothing left to fold
    with qat_scope():
        qat = apply_qat(model)
    names = {unwrap(l).name: type(unwrap(l)).__name__ for l in qat.layers}
    assert all(names[bn] == "Activation" for bn in pairs)
    assert {unwrap(l).name: l for l in qat.layers}[next(iter(pairs.values()))].layer.use_bias


@pytest.mark.parametrize(
    "recipe, message",
    [
        ({}, "needs at least one stage"),
        ({"prune": {"target_sparsity": 1.2}}, "target_sparsity=1.2"),
        ({"sparsify": {}}, "Unknown recipe stage(s) ['sparsify']"),
        ({"quantize": {"epochs": 0}}, "`epochs` must be a positive integer"),
        ({"prune": {"sparsity": 0.5}}, "Unknown key(s) for PruningConfig: ['sparsity']"),
    ],
)
def test_bad_recipes_raise_config_error(recipe, message):
    with pytest.raises(ConfigError) as info:
        Recipe.from_dict(recipe)
    assert message in str(info.value)


def test_recipe_order_is_fixed_and_epochs_override():
    recipe = Recipe.from_dict({"quantize": None, "prune": {"epochs": 3}})
    assert recipe.stages == ("prune", "quantize")
    assert recipe.with_epochs(1).prune.epochs == 1 and recipe.with_epochs(1).quantize.epochs == 1


def test_optimize_checks_patterns_before_training(learnable):
    with pytest.raises(ConfigError, match="matches no layer"):
        optimize(learnable["model"], {"prune": {"exclude": ["nothing_like_this*"]}}, learnable["train"])


def test_optimize_rejects_a_bad_optimizer_before_training(learnable):
    with pytest.raises(ConfigError, match="Unknown optimizer 'adamw2'"):
        optimize(learnable["model"], {"quantize": {}}, learnable["train"], optimizer="adamw2")
    with pytest.raises(ConfigError, match="must be a name"):
        optimize(learnable["model"], {"quantize": {}}, learnable["train"], optimizer=3)


@pytest.mark.slow
def test_optimize_uses_the_users_optimizer(learnable):
    made = []

    def sgd(learning_rate):
        made.append(learning_rate)
        return keras.optimizers.SGD(learning_rate)

    result = optimize(copy_model(learnable["model"]), {"quantize": {"epochs": 1, "learning_rate": 0.01}},
                      learnable["train"], optimizer=sgd, verbose=0)
    assert made[-1] == 0.01
    assert type(result.model.optimizer).__name__ == "SGD"
