"""LayerScope (one way to name layers, checked against the model) and the Stage protocol."""

import pytest

import tfmm
from tfmm._keras import keras, unwrap
from tfmm.errors import ConfigError
from tfmm.optimization import (LayerScope, PruningConfig, QuantizationConfig, Stage, StageReport, apply_clustering,
                               apply_pruning, apply_qat, optimize, quantization_plan)
from tfmm.optimization.stages import STAGE_TYPES

from tests.helpers import tiny_config


@pytest.fixture(scope="module")
def model():
    return tfmm.models.build_multimodal_model(tiny_config())


def _names(model, scope):
    return {layer.name for layer in model.layers if scope.matches(layer)}


def test_the_short_form_sorts_names_patterns_and_types():
    scope = LayerScope.parse(["image_stage1_*", "LSTM", "head_output", "text_emb?dding"])
    assert scope.names == ("head_output",)
    assert scope.patterns == ("image_stage1_*", "text_emb?dding")
    assert scope.types == ("LSTM",)
    assert LayerScope.parse(None).is_empty and LayerScope.parse(scope) is scope
    assert LayerScope.parse({"branches": ["audio"]}).branches == ("audio",)


def test_each_kind_of_entry_selects_the_layers_it_names(model):
    all_names = {layer.name for layer in model.layers}
    assert _names(model, LayerScope(names=("text_lstm1",))) == {"text_lstm1"}
    stage1 = _names(model, LayerScope(patterns=("image_stage1_*",)))
    assert stage1 and all(n.startswith("image_stage1_") for n in stage1)
    assert _names(model, LayerScope(types=("LSTM",))) == {"text_lstm1"}
    # Types match base classes too: every recurrent layer is an RNN.
    assert _names(model, LayerScope(types=("RNN",))) == {"text_lstm1"}
    audio = _names(model, LayerScope(branches=("audio",)))
    assert audio == {n for n in all_names if n.startswith("audio_")} and len(audio) > 3


@pytest.mark.parametrize("scope, named", [
    (LayerScope(names=("text_lstm9",)), "name 'text_lstm9'"),
    (LayerScope(patterns=("imgae_*",)), "pattern 'imgae_*'"),
    (LayerScope(types=("LTSM",)), "type 'LTSM'"),
    (LayerScope(branches=("video",)), "branche 'video'"),
])
def test_an_entry_that_matches_no_layer_is_a_config_error(model, scope, named):
    with pytest.raises(ConfigError) as error:
        scope.check(model, "exclude")
    assert named in str(error.value) and "check the spelling" in str(error.value)
    assert "text_lstm1" not in str(error.value) or "Layer names look like" in str(error.value)


@pytest.mark.parametrize("value", ["image_*", [1, 2], ("",), 3])
def test_malformed_scopes_are_config_errors_naming_the_value(value):
    with pytest.raises(ConfigError, match="exclude"):
        LayerScope.parse(value)
    with pytest.raises(ConfigError):
        PruningConfig(exclude=value)


def test_every_stage_refuses_a_typo_before_any_training(model):
    typo = {"exclude": ["text_lstm_1"]}
    with pytest.raises(ConfigError, match="name 'text_lstm_1' matches no layer"):
        apply_qat(model, QuantizationConfig(**typo))  # QAT used to let typos pass silently
    with pytest.raises(ConfigError, match="name 'text_lstm_1'"):
        quantization_plan(model, typo)
    with pytest.raises(ConfigError, match="name 'text_lstm_1'"):
        apply_pruning(model, PruningConfig(**typo), steps_per_epoch=10)
    with pytest.raises(ConfigError, match="name 'text_lstm_1'"):
        apply_clustering(model, typo)
    with pytest.raises(ConfigError, match="type 'Conv3D'"):
        # optimize checks every stage first: the data is never touched.
        optimize(model, {"prune": {}, "quantize": {"exclude": {"types": ["Conv3D"]}}}, None)


def test_scopes_in_every_form_leave_their_layers_alone(model):
    pruned, _ = apply_pruning(model, PruningConfig(exclude={"branches": ["text"], "types": ["Conv1D"]}),
                              steps_per_epoch=10, epochs=1)
    wrapped = {unwrap(layer).name for layer in pruned.layers if unwrap(layer) is not layer}
    assert wrapped and not any(n.startswith("text_") for n in wrapped)
    assert not any(isinstance(unwrap(layer), keras.layers.Conv1D) for layer in pruned.layers
                   if unwrap(layer).name in wrapped)
    plan = {p["layer"]: p for p in quantization_plan(model, {"exclude": ["audio_*"]})}
    audio = [p for name, p in plan.items() if name.startswith("audio_")]
    assert audio and all(p["mode"] == "float" and "excluded" in p["reason"] for p in audio)


def test_a_stage_report_round_trips_through_its_dict():
    report = StageReport("prune", {"accuracy": 0.9}, seconds=1.5, sparsity=0.5,
                         left_out=({"layer": "x", "class_name": "LSTM", "reason": "why"},),
                         details={"layer_sparsity": {"a": 0.5}})
    data = report.to_dict()
    assert data["sparsity"] == 0.5 and data["layer_sparsity"] == {"a": 0.5} and data["left_out"][0]["layer"] == "x"
    assert StageReport.from_dict("prune", data) == report


def test_every_recipe_stage_has_a_stage_class():
    from tfmm.optimization.recipe import STAGES

    assert tuple(STAGE_TYPES) == STAGES
    assert all(issubclass(kind, Stage) and kind.name == name for name, kind in STAGE_TYPES.items())
    with pytest.raises(NotImplementedError):
        Stage(None).run(None, None)


def test_the_pruning_plan_names_every_layer_left_dense_with_why(model):
    from tfmm.optimization.pruning import pruning_plan

    plan = {p["layer"]: p for p in pruning_plan(model, {"target_sparsity": 0.6, "exclude": {"branches": ["audio"]},
                                                        "per_layer": {"head_*": 0.0}})}
    audio = [p for n, p in plan.items() if n.startswith("audio_")]
    assert audio and all(p["target"] == 0.0 and p["reason"] for p in audio)
    assert all("excluded" in p["reason"] for p in audio if p["class_name"] == "Conv1D")
    assert plan["head_output"]["target"] == 0.0 and "target sparsity 0" in plan["head_output"]["reason"]
    norms = [p for p in plan.values() if p["class_name"] == "BatchNormalization"]
    assert norms and all(p["target"] == 0.0 and "no prunable weights" in p["reason"] for p in norms)
    assert plan["text_lstm1"]["target"] == 0.6 and not plan["text_lstm1"]["reason"]


def test_layers_pruned_well_short_of_their_target_are_reported():
    from tfmm.optimization.stages import _short_of_target

    plan = [{"layer": "stem", "class_name": "Conv2D", "target": 0.5, "reason": ""},
            {"layer": "dense", "class_name": "Dense", "target": 0.5, "reason": ""},
            {"layer": "bn", "class_name": "BatchNormalization", "target": 0.0, "reason": "no prunable weights"}]
    left = _short_of_target(plan, {"stem": 0.0, "dense": 0.5}, PruningConfig(target_sparsity=0.5, m_by_n=(2, 4)))
    assert [e["layer"] for e in left] == ["stem", "bn"]
    assert "reached sparsity 0.00 of its 0.50 target" in left[0]["reason"] and "2:4" in left[0]["reason"]
