"""tfmm.evaluate: one accuracy, one export -> verify -> benchmark chain; artifacts.copy_model."""

import os

import numpy as np
import pytest

import tfmm
from tfmm.errors import ConfigError, DataError
from tfmm.evaluate import export_and_measure, keras_accuracy, measure_file

from tests.helpers import data_for, tiny_config


@pytest.fixture(scope="module")
def image_model():
    config = tiny_config(("image",), num_classes=3)
    model = tfmm.models.compile_model(tfmm.models.build_multimodal_model(config))
    x, y = data_for(config, n=24, seed=3)
    return model, (x, y)


def test_keras_accuracy_is_top1_on_the_labels(image_model):
    model, (x, y) = image_model
    predicted = model.predict(x, verbose=0).argmax(-1)
    assert keras_accuracy(model, (x, y)) == pytest.approx(float(np.mean(predicted == y)))
    assert keras_accuracy(model, (x, predicted)) == 1.0


@pytest.mark.slow
def test_export_and_measure_verifies_and_times_the_file_it_wrote(image_model, tmp_path):
    model, test = image_model
    path = str(tmp_path / "m.tflite")
    measured = export_and_measure(model, path, test, runs=5, threads=(1, 2), quantization="float32",
                                  class_names=["a", "b", "c"])
    row = measured.to_row()
    assert row["size_bytes"] == os.path.getsize(path) and row["mode"] == "float32"
    assert row["agreement"] == 1.0 and row["accuracy"] == pytest.approx(keras_accuracy(model, test))
    assert row["reference_accuracy"] == row["accuracy"]
    assert row["p50_ms_1t"] > 0 and row["p90_ms_2t"] >= row["p50_ms_2t"] and row["p50_ms"] == row["p50_ms_1t"]
    assert set(measured.latency) == {1, 2} and measured.latency[2].num_threads == 2
    assert (tmp_path / "m.labels.txt").read_text().split() == ["a", "b", "c"]
    again = measure_file(measured.export, model, test, runs=3)
    assert again.verification.agreement == 1.0 and list(again.latency) == [1]
    with pytest.raises(ConfigError, match="threads=()"):
        measure_file(measured.export, model, test, threads=())


def test_copy_model_is_independent_and_equal(image_model):
    model, (x, _) = image_model
    copy = tfmm.artifacts.copy_model(model)
    assert copy is not model and copy.optimizer is None
    np.testing.assert_allclose(copy.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6)
    copy.layers[-1].set_weights([w * 0 for w in copy.layers[-1].get_weights()])
    assert not np.allclose(copy.predict(x, verbose=0), model.predict(x, verbose=0))
    with pytest.raises(TypeError, match="tf_keras.Model"):
        tfmm.artifacts.copy_model("model.keras")


def test_copy_model_copies_a_qat_model(image_model):
    model, (x, _) = image_model
    qat = tfmm.optimization.apply_qat(model)
    copy = tfmm.artifacts.copy_model(qat)
    np.testing.assert_allclose(copy.predict(x, verbose=0), qat.predict(x, verbose=0), atol=1e-5)


def test_sidecars_follow_one_naming_rule(tmp_path):
    tokenizer = tfmm.data.TextTokenizer.adapt(["one two", "three"], sequence_length=4)
    written = tfmm.artifacts.write_sidecars(str(tmp_path / "model_int8.tflite"), tokenizer=tokenizer,
                                            class_names=["x", "y"])
    assert [os.path.basename(p) for p in written] == ["model_int8.vocab.json", "model_int8.labels.txt"]
    assert tfmm.artifacts.load_tokenizer(str(tmp_path / "model_int8.tflite")).sequence_length == 4


def test_as_dataset_takes_a_dataset_arrays_or_none(image_model):
    model, (x, y) = image_model
    dataset = tfmm.data.as_dataset((x, y), "train_data", model=model, batch_size=5)
    assert tfmm.data.as_dataset(dataset) is dataset and tfmm.data.as_dataset(None) is None
    assert [len(b[1]) for b in dataset] == [5, 5, 5, 5, 4]
    with pytest.raises(DataError, match="`train_data` must be a tf.data.Dataset"):
        tfmm.data.as_dataset([x, y], "train_data")
    with pytest.raises(DataError):
        tfmm.data.as_dataset(({"image": x}, y + 10), "train_data", model=model)  # labels past the head
