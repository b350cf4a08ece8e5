"""Loading never runs code from a file or fetches a URL unless the user opts in by name."""

import os
import shutil

import numpy as np
import pytest

from tfmm import artifacts
from tfmm._keras import keras
from tfmm.cli import main
from tfmm.errors import ConfigError, SecurityError
from tfmm.models import build_multimodal_model, compile_model
from tfmm.optimization import apply_pruning, apply_qat

from tests.helpers import data_for, tiny_config


def _lambda_model(marker):
    """A model whose Lambda layer creates `marker` when its code runs."""
    inputs = keras.Input((4,), name="image")
    x = keras.layers.Lambda(lambda t: (open(marker, "w").close(), t)[1], name="sneaky")(inputs)
    return keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(x))


@pytest.fixture
def lambda_files(tmp_path):
    marker = str(tmp_path / "code-ran")
    model = _lambda_model(marker)
    h5 = str(tmp_path / "lambda.h5")
    model.save(h5)
    renamed = str(tmp_path / "lambda.keras")  # an HDF5 file renamed .keras takes the same path
    shutil.copy(h5, renamed)
    os.remove(marker)  # building the model ran the Lambda once
    return marker, h5, renamed


@pytest.mark.parametrize("which", [1, 2])
def test_lambda_in_h5_is_refused_and_no_code_runs(lambda_files, which):
    marker, *paths = lambda_files
    with pytest.raises(SecurityError, match=r"Layer 'sneaky' is a Lambda layer.*safe_mode=False.*--unsafe-load"):
        artifacts.load_model(paths[which - 1])
    assert not os.path.exists(marker)


def test_lambda_loads_only_when_the_user_opts_in(lambda_files):
    marker, h5, _ = lambda_files
    model = artifacts.load_model(h5, safe_mode=False)
    assert model.get_layer("sneaky") is not None and os.path.exists(marker)


@pytest.mark.parametrize("verb", ["export", "optimize"])
def test_cli_refuses_lambda_without_running_it(lambda_files, verb, tmp_path, capsys):
    marker, _, renamed = lambda_files
    out = str(tmp_path / ("o.tflite" if verb == "export" else "o.tfmm"))
    before = set(os.listdir(tmp_path))
    assert main([verb, "--model", renamed, "--out", out, "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "Lambda layer" in err and "--unsafe-load" in err and "Traceback" not in err
    assert not os.path.exists(marker)
    assert set(os.listdir(tmp_path)) == before  # nothing written


def test_teacher_path_in_a_recipe_is_loaded_safely(lambda_files):
    from tfmm.optimization import DistillationConfig

    marker, h5, _ = lambda_files
    with pytest.raises(SecurityError, match="Lambda"):
        DistillationConfig(teacher=h5).load_teacher()
    assert not os.path.exists(marker)


def test_unregistered_custom_class_names_the_class_and_the_opt_in(tmp_path):
    class Doubler(keras.layers.Layer):
        def call(self, x):
            return 2 * x

    inputs = keras.Input((3,))
    model = keras.Model(inputs, Doubler(name="doubler")(inputs))
    path = str(tmp_path / "custom.h5")
    model.save(path)
    with pytest.raises(ConfigError, match=r"'doubler' is of class 'Doubler'.*custom_objects=\{'Doubler': Doubler\}"):
        artifacts.load_model(path)
    loaded = artifacts.load_model(path, custom_objects={"Doubler": Doubler})
    assert np.allclose(loaded.predict(np.ones((1, 3)), verbose=0), 2.0)


def _hub_config(handle):
    return {"class_name": "Functional", "config": {"name": "m", "layers": [
        {"class_name": "KerasLayer", "config": {"name": "enc", "handle": handle}}]}}


def test_remote_hub_handle_is_a_security_error():
    with pytest.raises(SecurityError, match=r"'enc' has handle 'https://tfhub.dev/x/1'.*fetch"):
        artifacts.check_model_config(_hub_config("https://tfhub.dev/x/1"))
    artifacts.check_model_config(_hub_config("https://tfhub.dev/x/1"), safe_mode=False)  # opted in


def test_missing_local_hub_folder_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="not a local SavedModel folder"):
        artifacts.check_model_config(_hub_config(str(tmp_path / "nope")))


def test_savedmodel_folder_needs_the_opt_in(tmp_path):
    (tmp_path / "sm").mkdir()
    with pytest.raises(SecurityError, match="SavedModel folder"):
        artifacts.load_model(str(tmp_path / "sm"))


@pytest.mark.parametrize("content, message", [
    (b"just text", "is not a Keras model file"),
    (b"PK\x03\x04 not really a zip", "is not a Keras model file"),
])
def test_non_model_files(tmp_path, content, message):
    path = tmp_path / "m.keras"
    path.write_bytes(content)
    with pytest.raises(ConfigError, match=message):
        artifacts.load_model(str(path))


def test_load_model_rejects_a_non_path():
    with pytest.raises(TypeError, match="`path` must be the path"):
        artifacts.load_model(42)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["qat", "pruned"])
def test_optimized_models_round_trip_through_the_safe_format(kind, tmp_path):
    config = tiny_config()
    model = compile_model(build_multimodal_model(config))
    x, _ = data_for(config, n=4)
    wrapped = apply_qat(model) if kind == "qat" else apply_pruning(model, {"target_sparsity": 0.5},
                                                                     steps_per_epoch=2, epochs=1)[0]
    path = str(tmp_path / f"{kind}.tfmm")
    assert artifacts.save_model(wrapped, path) == [path]
    assert oct(os.stat(path).st_mode & 0o777) == oct(0o666 & ~_umask())
    loaded = artifacts.load_model(path)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), wrapped.predict(x, verbose=0), atol=1e-6)
    assert len(loaded.get_weights()) == len(wrapped.get_weights())
    with pytest.raises(ConfigError, match=r"does not load back from .keras.*\.tfmm"):
        artifacts.save_model(wrapped, str(tmp_path / f"{kind}.keras"))
    assert sorted(os.listdir(tmp_path)) == [f"{kind}.tfmm"]  # no temp file left


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask
