"""The polyphase lowering of 1-channel strided Conv1D layers at export."""

import numpy as np
import pytest

from tfmm._keras import keras
from tfmm.export import PolyphaseConv1D, TFLiteRunner, export_saved_model, export_tflite, prepare_for_export
from tfmm.export.conv_lowering import polyphase_plan
from tfmm.optimization import apply_qat


def _audio_model(length, kernel, stride, padding, channels=1, seed=0):
    keras.utils.set_random_seed(seed)
    wave = keras.Input((length, channels), name="audio")
    x = keras.layers.Conv1D(6, kernel, strides=stride, padding=padding, name="conv")(wave)
    x = keras.layers.BatchNormalization(name="bn")(x)
    x = keras.layers.ReLU()(x)
    x = keras.layers.Conv1D(8, 3, strides=2, padding="same", activation="relu", name="conv2")(x)
    x = keras.layers.GlobalAveragePooling1D()(x)
    return keras.Model(wave, keras.layers.Dense(3, activation="softmax", name="head")(x))


def _conv_output(model, x):
    return keras.Model(model.input, model.get_layer("conv").output).predict(x, verbose=0)


@pytest.mark.parametrize("length, kernel, stride, padding", [
    (8000, 25, 4, "same"),  # the presets' audio stem: regrouped by 4, a 7-tap "same" conv
    (8000, 9, 8, "same"),
    (101, 7, 4, "same"),  # length not a multiple of the stride: explicit padding
    (100, 5, 3, "valid"),
    (103, 6, 5, "causal"),
    (50, 4, 4, "same"),
])
def test_lowered_conv1d_computes_the_same_outputs(length, kernel, stride, padding):
    model = _audio_model(length, kernel, stride, padding)
    x = np.random.default_rng(1).normal(size=(3, length, 1)).astype("float32")
    lowered = prepare_for_export(model)
    conv = lowered.get_layer("conv")
    plan = polyphase_plan(length, kernel, stride, padding)
    assert isinstance(conv, PolyphaseConv1D)
    assert conv.kernel.shape == (plan["taps"], stride, 6) and conv.strides == (1,)
    np.testing.assert_allclose(_conv_output(lowered, x), _conv_output(model, x), atol=1e-5)
    np.testing.assert_allclose(lowered.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6)
    # only the 1-channel layer is lowered: conv2 reads 6 channels
    assert type(lowered.get_layer("conv2")) is keras.layers.Conv1D


def test_layers_that_gain_nothing_are_left_alone():
    two_channels = _audio_model(64, 5, 2, "same", channels=2)
    assert prepare_for_export(two_channels) is two_channels
    wave = keras.Input((64, 1))
    dilated = keras.layers.Conv1D(4, 3, strides=1, dilation_rate=2)(wave)
    model = keras.Model(wave, keras.layers.Conv1D(4, 3, strides=1)(dilated))
    assert prepare_for_export(model) is model
    lowered = _audio_model(64, 5, 2, "same")
    assert prepare_for_export(lowered, polyphase=False) is lowered


def test_a_qat_model_is_lowered_inside_its_wrapper_with_its_quantizer_state():
    model = _audio_model(400, 25, 4, "same")
    x = np.random.default_rng(2).normal(size=(64, 400, 1)).astype("float32")
    y = np.random.default_rng(3).integers(0, 3, 64)
    qat = apply_qat(model)
    qat.compile("adam", "sparse_categorical_crossentropy")
    qat.fit(x, y, epochs=1, batch_size=16, verbose=0)  # moves the quantizers' ranges off their start
    lowered = prepare_for_export(qat)
    wrapper = next(l for l in lowered.layers if l.name.endswith("conv") and hasattr(l, "layer"))
    assert isinstance(wrapper.layer, PolyphaseConv1D)
    np.testing.assert_allclose(lowered.predict(x, verbose=0), qat.predict(x, verbose=0), atol=1e-5)


def test_int8_files_with_and_without_the_lowering_agree(tmp_path):
    model = _audio_model(800, 25, 4, "same")
    rng = np.random.default_rng(4)
    calibration = rng.normal(size=(32, 800, 1)).astype("float32")
    files = {}
    for polyphase in (True, False):
        saved = export_saved_model(model, tmp_path / f"sm_{polyphase}", rnn_layout="unrolled", polyphase=polyphase)
        files[polyphase] = export_tflite(model, tmp_path / f"m_{polyphase}.tflite", representative_data=calibration,
                                         saved_model_dir=saved, int8_io=False, metadata=False)
    assert "PAD" not in files[True].summary.op_histogram  # "same" padding of the regrouped samples
    x = rng.normal(size=(16, 800, 1)).astype("float32")
    outputs = {k: np.concatenate([TFLiteRunner(r.path).predict({"audio": x[i:i + 1]}) for i in range(16)])
               for k, r in files.items()}
    reference = model.predict(x, verbose=0)
    # the same function, quantized: the two files differ by float rounding at most a step or two
    np.testing.assert_allclose(outputs[True], outputs[False], atol=0.02)
    assert np.abs(outputs[True] - reference).max() < 0.05
