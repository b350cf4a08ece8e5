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
