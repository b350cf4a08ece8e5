"""tfmm forces Keras 2 (tf_keras) and refuses Keras 3 objects with a clear message."""

import os
import subprocess
import sys

import pytest

import tfmm
from tfmm._keras import check_keras2, keras

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _python(code, **env):
    environ = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
    environ.update(env, TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=environ, cwd=ROOT, timeout=120
    )


@pytest.mark.slow
def test_import_tfmm_first_selects_keras_2_for_tensorflow():
    proc = _python(
        "import os, tfmm, tensorflow as tf, tf_keras\n"
        "print(os.environ['TF_USE_LEGACY_KERAS'], tf.keras.layers.Dense is tf_keras.layers.Dense)"
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["1", "True"]


@pytest.mark.slow
def test_tensorflow_imported_with_keras_3_active_is_refused():
    proc = _python("import tensorflow as tf; tf.keras.layers.Dense; import tfmm")
    assert proc.returncode != 0
    assert "KerasVersionError" in proc.stderr
    assert "Import tfmm before TensorFlow, or set TF_USE_LEGACY_KERAS=1" in proc.stderr


@pytest.mark.slow
def test_tensorflow_imported_but_keras_untouched_still_works():
    proc = _python(
        "import tensorflow as tf, tfmm, tf_keras\nprint(tf.keras.layers.Dense is tf_keras.layers.Dense)"
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "True"


def test_explicit_keras_3_setting_is_refused():
    proc = _python("import tfmm", TF_USE_LEGACY_KERAS="0")
    assert proc.returncode != 0
    assert "TF_USE_LEGACY_KERAS='0'" in proc.stderr


def test_keras_3_objects_raise_type_error_saying_what_to_do():
    import keras as keras3  # the Keras 3 package, importable beside tf_keras

    layer = keras3.layers.Dense(2)
    with pytest.raises(TypeError, match="is a Keras 3 object .* tfmm works with Keras 2 only"):
        check_keras2(layer, "layer")
    model = keras3.Sequential([keras3.Input((3,)), keras3.layers.Dense(2)])
    with pytest.raises(TypeError, match="`model` is a Keras 3 object"):
        tfmm.models.compile_model(model)


def test_keras_2_objects_pass_the_check():
    layer = keras.layers.Dense(2)
    assert check_keras2(layer, "layer") is layer
    assert check_keras2(3) == 3
