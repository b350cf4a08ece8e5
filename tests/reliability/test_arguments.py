"""Public functions check their arguments: a typed tfmm error naming the argument, value and fix."""

import os

import numpy as np
import pytest

import tfmm
from tfmm.data import from_arrays, representative_dataset, validate_arrays
from tfmm.errors import ConfigError, DataError
from tfmm.export import benchmark_tflite, export_tflite, verify_tflite
from tfmm.models import build_multimodal_model, compile_model
from tfmm.optimization import Recipe, optimize

from tests.helpers import data_for, tiny_config


@pytest.fixture(scope="module")
def text_model():
    config = tiny_config(modalities=("image", "text"))  # vocab_size 32, 8 ids per text
    return compile_model(build_multimodal_model(config)), config


@pytest.fixture(scope="module")
def tflite_file(tmp_path_factory):
    config = tiny_config(modalities=("image",), num_classes=4)
    model = build_multimodal_model(config)
    path = str(tmp_path_factory.mktemp("export") / "m.tflite")
    export_tflite(model, path, quantization="float32")
    return path, model


def test_token_ids_past_the_vocabulary_are_caught_before_the_graph(text_model):
    model, config = text_model
    x, y = data_for(config, n=4)
    x["text"][2, 3] = 32
    with pytest.raises(DataError, match=r"`text` holds token id 32 \(example 2\), but ids must lie in \[0, 31\].*tokenizer"):
        validate_arrays(x, y, model=model)


def test_negative_token_ids(text_model):
    model, config = text_model
    x, y = data_for(config, n=4)
    x["text"][1, 0] = -3
    with pytest.raises(DataError, match=r"token id -3 \(example 1\)"):
        from_arrays(x, y, model=model)


def test_labels_outside_the_models_classes(text_model):
    model, config = text_model
    x, y = data_for(config, n=4)
    y[3] = config.num_classes
    with pytest.raises(DataError, match=rf"Label {config.num_classes} of example 3 is out of range"):
        validate_arrays(x, y, model=model)


def test_boolean_labels(text_model):
    model, config = text_model
    x, _ = data_for(config, n=4)
    with pytest.raises(DataError, match=r"Labels are booleans; pass integer class ids.*astype\('int32'\)"):
        validate_arrays(x, np.array([True, False, True, False]), model=model)


def test_empty_features():
    with pytest.raises(DataError, match="`image` has no examples"):
        validate_arrays({"image": np.zeros((0, 4, 4, 1), "float32")})


def test_list_features_map_by_input_order(text_model):
    model, config = text_model
    x, y = data_for(config, n=4)
    features, _ = validate_arrays([x[name] for name in model.input_names], y, model=model)
    assert sorted(features) == sorted(model.input_names)


def test_a_string_where_a_model_is_expected():
    with pytest.raises(TypeError, match=r"`model` must be a tf_keras.Model. Received: str.*tfmm.models.load_model"):
        export_tflite("model.keras", "m.tflite")


@pytest.mark.parametrize("recipe, message", [
    ({"prune": 0.5}, "prune"),
    ({"prune": {"target_sparsity": 1.5}}, "target_sparsity"),
    ({"quantise": {}}, r"Unknown recipe stage\(s\) \['quantise'\]"),
    ({}, "at least one stage"),
    ([("prune", 0.5)], "Recipe"),
])
def test_bad_recipes(recipe, message):
    with pytest.raises(ConfigError, match=message):
        Recipe.from_dict(recipe) if isinstance(recipe, dict) else optimize(
            build_multimodal_model(tiny_config(modalities=("image",))), recipe, None)


def test_optimize_checks_epochs_and_resume(text_model):
    model, config = text_model
    data = data_for(config, n=8)
    with pytest.raises(ConfigError, match=r"`epochs` must be a positive integer or None. Received: epochs=0"):
        optimize(model, {"quantize": {}}, data, epochs=0)
    with pytest.raises(ConfigError, match="`resume=True` needs `checkpoint_dir`"):
        optimize(model, {"quantize": {}}, data, resume=True)
    with pytest.raises(TypeError, match="`model` must be a tf_keras.Model"):
        optimize("model.keras", {"quantize": {}}, data)


def test_empty_training_data(text_model):
    model, config = text_model
    x, y = data_for(config, n=4)
    with pytest.raises(DataError, match="has no examples"):
        optimize(model, {"quantize": {}}, ({k: v[:0] for k, v in x.items()}, y[:0]))


@pytest.mark.parametrize("kwargs, message", [
    ({"runs": 0}, r"`runs` must be a positive integer. Received: runs=0"),
    ({"num_threads": 0}, r"`num_threads` must be a positive integer. Received: num_threads=0"),
    ({"warmup": -1}, r"`warmup` must be an integer >= 0"),
    ({"runs": 2.5}, "runs=2.5"),
])
def test_benchmark_arguments(tflite_file, kwargs, message):
    with pytest.raises(ConfigError, match=message):
        benchmark_tflite(tflite_file[0], **kwargs)


def test_verify_rejects_labels_outside_the_files_classes(tflite_file):
    path, model = tflite_file
    x = {"image": np.random.default_rng(0).uniform(size=(3, 16, 16, 1)).astype("float32")}
    with pytest.raises(DataError, match=r"Label 9 of example 1 is out of range: labels must lie in \[0, 3\]"):
        verify_tflite(path, (x, np.array([0, 9, 1])))
    with pytest.raises(ConfigError, match="`max_examples` must be a positive integer"):
        verify_tflite(path, (x, np.array([0, 1, 1])), max_examples=0)
    assert verify_tflite(path, (x, np.array([0, 1, 1]))).num_examples == 3


def test_calibration_with_no_examples():
    with pytest.raises(DataError, match="no examples|has no examples"):
        representative_dataset({"image": np.zeros((0, 4, 4, 1), "float32")})


def test_export_checks_the_output_path_before_converting(tmp_path, tflite_file):
    _, model = tflite_file
    (tmp_path / "taken").mkdir()
    (tmp_path / "file").write_text("x")
    for path, message in ((tmp_path / "taken", "must end in .tflite"),
                          (tmp_path / "dir.tflite", "is a folder"),
                          (tmp_path / "nowhere" / "m.tflite", "does not exist. Create it first"),
                          (tmp_path / "file" / "m.tflite", "is not a folder")):
        if path.name == "dir.tflite":
            path.mkdir()
        with pytest.raises(ConfigError, match=message):
            export_tflite(model, str(path), quantization="float32")
    assert not (tmp_path / "nowhere").exists()
    assert sorted(os.listdir(tmp_path)) == ["dir.tflite", "file", "taken"]
