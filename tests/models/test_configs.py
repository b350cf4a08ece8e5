import pytest

from tfmm.errors import ConfigError
from tfmm.models import (
    AudioBranchConfig,
    FusionConfig,
    ImageBranchConfig,
    MultimodalConfig,
    TextBranchConfig,
    get_preset,
    list_presets,
)


@pytest.mark.parametrize(
    "factory, message",
    [
        (lambda: TextBranchConfig(vocab_size=10, sequence_length=8, lstm_units=0),
         "`lstm_units` must be a positive integer. Received: lstm_units=0"),
        (lambda: TextBranchConfig(vocab_size=1, sequence_length=8), "vocab_size=1"),
        (lambda: TextBranchConfig(vocab_size=10, sequence_length=8, dropout=1.0),
         "`dropout` must be a number in [0.0, 1.0). Received: dropout=1.0"),
        (lambda: ImageBranchConfig(input_shape=(28, 28, 2)), "input_shape=(28, 28, 2)"),
        (lambda: ImageBranchConfig(input_shape=(28, 28, 1), depth=20),
         "`depth` must be one of [10, 18, 34, 50]. Received: depth=20"),
        (lambda: ImageBranchConfig(input_shape=(28, 28, 1), hub_encoder="https://tfhub.dev/x"),
         "never downloads"),
        (lambda: AudioBranchConfig(input_shape=(800,)), "`input_shape` must be (samples, 1)"),
        (lambda: AudioBranchConfig(input_shape=(800, 1), filters=(8, 16), strides=(2, 2, 2)),
         "`strides` must be one number or one per filter (2)"),
        (lambda: AudioBranchConfig(input_shape=(100, 1), frontend="log_mel", frame_length=400),
         "`frame_length` must not exceed the 100 input samples"),
        (lambda: FusionConfig(mode="sum"), "`mode` must be one of ['concat', 'attention', 'gated']"),
        (lambda: FusionConfig(mode="attention", projection_dim=10, num_heads=4),
         "`num_heads` must divide projection_dim=10"),
        (lambda: MultimodalConfig(num_classes=3), "needs at least one modality"),
        (lambda: MultimodalConfig(num_classes=1, image=ImageBranchConfig(input_shape=(8, 8, 1))),
         "`num_classes` must be at least 2 for a multiclass head"),
        (lambda: MultimodalConfig(num_classes=3, image=ImageBranchConfig((8, 8, 1)), fusion="max"),
         "Received: fusion='max'"),
        (lambda: MultimodalConfig(num_classes=3, image=ImageBranchConfig((8, 8, 1)), task="ranking"),
         "`task` must be one of ['multiclass', 'multilabel']"),
    ],
)
def test_invalid_values_raise_config_error_naming_field_and_value(factory, message):
    with pytest.raises(ConfigError) as info:
        factory()
    assert message in str(info.value)


def test_config_error_is_also_a_value_error():
    with pytest.raises(ValueError):
        FusionConfig(num_heads=-1)


def test_from_dict_rejects_unknown_keys_and_lists_allowed_ones():
    with pytest.raises(ConfigError, match=r"Unknown key\(s\) for FusionConfig: \['heads'\]"):
        FusionConfig.from_dict({"mode": "attention", "heads": 2})
    with pytest.raises(ConfigError, match="expects a mapping"):
        FusionConfig.from_dict(["concat"])


def test_fusion_name_becomes_fusion_config_and_nested_dicts_are_accepted():
    cfg = MultimodalConfig(num_classes=4, image={"input_shape": [8, 8, 1]}, fusion="gated")
    assert cfg.fusion == FusionConfig(mode="gated")
    assert cfg.image == ImageBranchConfig(input_shape=(8, 8, 1))
    assert cfg.modalities == ("image",)


def test_single_kernel_size_is_broadcast_to_every_block():
    cfg = AudioBranchConfig(input_shape=(800, 1), filters=(8, 16, 32), kernel_sizes=5, strides=2)
    assert cfg.block_specs() == [(8, 5, 2), (16, 5, 2), (32, 5, 2)]


def test_configs_are_frozen():
    cfg = FusionConfig()
    with pytest.raises(Exception):
        cfg.mode = "gated"


@pytest.mark.parametrize("name", list_presets())
def test_dict_and_yaml_round_trips_give_equal_configs(name, tmp_path):
    cfg = get_preset(name, fusion="attention", task="multilabel")
    assert MultimodalConfig.from_dict(cfg.to_dict()) == cfg
    path = tmp_path / "model.yaml"
    cfg.to_yaml(path)
    assert MultimodalConfig.from_yaml(path) == cfg


def test_yaml_errors_name_the_file(tmp_path):
    with pytest.raises(ConfigError, match="Config file not found"):
        MultimodalConfig.from_yaml(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("num_classes: [1, 2\n")
    with pytest.raises(ConfigError, match="is not valid YAML"):
        MultimodalConfig.from_yaml(bad)
    unknown = tmp_path / "unknown.yaml"
    unknown.write_text("num_classes: 3\nimage: {input_shape: [8, 8, 1], width: 4}\n")
    with pytest.raises(ConfigError, match=r"Unknown key\(s\) for ImageBranchConfig: \['width'\]"):
        MultimodalConfig.from_yaml(unknown)


def test_preset_errors():
    with pytest.raises(ConfigError, match="Unknown preset 'huge'"):
        get_preset("huge")
    with pytest.raises(ConfigError, match="Received: modalities=\\['video'\\]"):
        get_preset("tiny", modalities=("video",))
