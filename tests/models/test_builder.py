import itertools

import numpy as np
import pytest

import tfmm
from tfmm._keras import keras
from tfmm.errors import ConfigError
from tfmm.models import MultimodalConfig, build_multimodal_model, load_model

from tests.helpers import data_for, run_model_contract, tiny_config

SUBSETS = [
    subset
    for r in (1, 2, 3)
    for subset in itertools.combinations(("image", "text", "audio"), r)
]


@pytest.mark.parametrize("task", ["multiclass", "multilabel"])
@pytest.mark.parametrize("modalities", SUBSETS, ids="+".join)
def test_every_modality_subset_trains_for_both_heads(modalities, task):
    cfg = tiny_config(modalities, task=task, num_classes=3)
    model = run_model_contract(cfg, graph=len(modalities) == 3)
    activation = model.get_layer("head_output").activation.__name__
    assert activation == ("softmax" if task == "multiclass" else "sigmoid")


@pytest.mark.parametrize("fusion", ["attention", "gated"])
@pytest.mark.parametrize("modalities", SUBSETS, ids="+".join)
def test_every_fusion_works_for_every_subset(modalities, fusion):
    model = run_model_contract(tiny_config(modalities, fusion=fusion, num_classes=3))
    expected = {"attention": "fusion_attention", "gated": "fusion_gates"}[fusion]
    assert model.get_layer(expected) is not None


def test_model_is_flat_with_branch_prefixed_layer_names():
    model = build_multimodal_model(tiny_config(fusion="attention"))
    prefixes = ("image", "text", "audio", "fusion", "head")
    for layer in model.layers:
        assert not isinstance(layer, keras.Model), f"nested model {layer.name}"
        assert layer.name.split("_")[0] in prefixes, layer.name
    assert model.get_layer("image_stage1_block1_1_conv") is not None
    assert model.get_layer("text_embedding").mask_zero
    assert model.get_layer("audio_block1_conv") is not None


def test_inputs_are_named_dicts_with_model_dtypes():
    model = build_multimodal_model(tiny_config())
    dtypes = {t.name.split(":")[0]: t.dtype.name for t in model.inputs}
    assert dtypes == {"image": "float32", "text": "int32", "audio": "float32"}


@pytest.mark.parametrize("depth, blocks", [(10, 4), (18, 8), (34, 16), (50, 16)])
def test_resnet_depths_have_the_expected_number_of_blocks(depth, blocks):
    cfg = MultimodalConfig(
        num_classes=2,
        image=tfmm.models.ImageBranchConfig(input_shape=(32, 32, 3), depth=depth, base_width=4),
    )
    model = build_multimodal_model(cfg)
    adds = [layer for layer in model.layers if layer.name.endswith("_add")]
    assert len(adds) == blocks
    convs_per_block = 3 if depth == 50 else 2
    convs = [l for l in model.layers if isinstance(l, keras.layers.Conv2D) and "proj" not in l.name]
    assert len(convs) == 1 + blocks * convs_per_block
    # v1.5: the bottleneck downsamples in the 3x3 convolution.
    if depth == 50:
        assert model.get_layer("image_stage2_block1_2_conv").strides == (2, 2)
        assert model.get_layer("image_stage2_block1_1_conv").strides == (1, 1)
        assert model.output_shape == (None, 2)


def test_standard_stem_downsamples_large_images_by_four():
    cfg = MultimodalConfig(
        num_classes=2,
        image=tfmm.models.ImageBranchConfig(input_shape=(64, 64, 3), depth=10, base_width=4),
    )
    model = build_multimodal_model(cfg)
    assert model.get_layer("image_stem_pool").output_shape == (None, 16, 16, 4)


def test_text_branch_stacks_bidirectional_lstms():
    cfg = tiny_config(("text",), num_classes=3)
    text = tfmm.models.TextBranchConfig(
        vocab_size=32, sequence_length=8, lstm_units=6, num_lstm_layers=2, bidirectional=True
    )
    model = run_model_contract(MultimodalConfig(num_classes=3, text=text))
    assert model.get_layer("text_bilstm2").output_shape == (None, 12)
    assert cfg.text.num_lstm_layers == 1


def test_log_mel_front_end_trains_and_has_the_expected_frames():
    audio = tfmm.models.AudioBranchConfig(
        input_shape=(1000, 1), frontend="log_mel", sample_rate=8000,
        frame_length=200, frame_step=100, num_mel_bins=16, filters=(8,), strides=1,
    )
    model = run_model_contract(MultimodalConfig(num_classes=3, audio=audio))
    assert model.get_layer("audio_logmel").output_shape == (None, 9, 16)


def test_build_accepts_a_dict_and_rejects_other_types():
    cfg = tiny_config(("image",))
    assert build_multimodal_model(cfg.to_dict()).count_params() == build_multimodal_model(cfg).count_params()
    with pytest.raises(ConfigError, match="Received: str"):
        build_multimodal_model("tiny")


def _architecture(model):
    return [(l.name, type(l).__name__, [tuple(w.shape) for w in l.weights]) for l in model.layers]


@pytest.mark.parametrize("fusion", ["concat", "attention", "gated"])
def test_config_round_trip_builds_the_same_architecture_and_predictions(fusion):
    cfg = tiny_config(fusion=fusion)
    a = build_multimodal_model(cfg)
    b = build_multimodal_model(MultimodalConfig.from_dict(cfg.to_dict()))
    assert _architecture(a) == _architecture(b)
    b.set_weights(a.get_weights())
    x, _ = data_for(cfg)
    np.testing.assert_array_equal(a.predict(x, verbose=0), b.predict(x, verbose=0))


@pytest.mark.slow
@pytest.mark.parametrize("fusion, frontend", [("attention", "log_mel"), ("gated", "waveform")])
def test_keras_file_round_trip_gives_identical_predictions(tmp_path, fusion, frontend):
    cfg = tiny_config(fusion=fusion)
    if frontend == "log_mel":
        audio = tfmm.models.AudioBranchConfig(
            input_shape=(512, 1), frontend="log_mel", frame_length=128, frame_step=64,
            num_mel_bins=8, filters=(8,), strides=1,
        )
        cfg = MultimodalConfig.from_dict({**cfg.to_dict(), "audio": audio.to_dict()})
    model = run_model_contract(cfg, graph=True)
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = load_model(path)
    x, _ = data_for(cfg, n=6, seed=3)
    np.testing.assert_array_equal(model.predict(x, verbose=0), loaded.predict(x, verbose=0))
    assert _architecture(loaded) == _architecture(model)


def test_load_model_names_a_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="No saved model at"):
        load_model(tmp_path / "nope.keras")
