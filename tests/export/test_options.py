"""The export table of modes and ExportConfig: every choice checked once, before any conversion."""

import pytest

import tfmm
from tfmm._choices import MODES
from tfmm.errors import ConfigError
from tfmm.export import MODE_TABLE, ExportConfig, export_tflite

from tests.helpers import tiny_config


def test_the_table_has_one_row_per_mode_with_its_defaults():
    assert tuple(MODE_TABLE) == MODES
    assert {m for m, row in MODE_TABLE.items() if row.calibrated} == {"int8", "int16x8"}
    assert ExportConfig(quantization="float16").layout == "fused"
    assert ExportConfig(quantization="int8").layout == "unrolled"
    assert ExportConfig(quantization="int8", rnn_layout="fused").layout == "fused"
    assert ExportConfig(prefer="latency").selective and not ExportConfig().selective


@pytest.mark.parametrize("options, message", [
    (dict(quantization="int4"), "`quantization` must be one of"),
    (dict(prefer="speed"), "`prefer` must be one of"),
    (dict(rnn_layout="rolled"), "`rnn_layout` must be one of"),
    (dict(quantization="dynamic", max_accuracy_drop=0.01), "need quantization='int8'"),
    (dict(max_accuracy_drop=2), "max_accuracy_drop=2"),
    (dict(max_accuracy_drop=True), "max_accuracy_drop=True"),
    (dict(num_calibration_samples=0), "num_calibration_samples=0"),
    (dict(int8_io="yes"), "int8_io='yes'"),
])
def test_bad_choices_are_config_errors_naming_the_value(options, message):
    with pytest.raises(ConfigError) as error:
        ExportConfig(**options)
    assert message in str(error.value)


def test_a_config_round_trips_and_drives_export(tmp_path):
    config = ExportConfig.from_dict(ExportConfig(quantization="float32", compact=False).to_dict())
    assert config == ExportConfig(quantization="float32", compact=False)
    model = tfmm.models.build_multimodal_model(tiny_config(("image",), num_classes=3))
    result = export_tflite(model, str(tmp_path / "m.tflite"), quantization="int8", config=config)
    assert result.mode == "float32" and result.rnn_layout == "fused"  # the config wins over the keywords
    assert result.float_ops  # float32: the ops compute in float
    with pytest.raises(ConfigError, match="ExportConfig"):
        export_tflite(model, str(tmp_path / "n.tflite"), config={"quantization": "int8"})
    assert not (tmp_path / "n.tflite").exists()
