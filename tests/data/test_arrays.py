import numpy as np
import pytest
import tensorflow as tf

import tfmm
from tfmm.data import from_arrays, validate_arrays
from tfmm.errors import DataError
from tfmm.models import build_multimodal_model

from tests.helpers import data_for, tiny_config


def test_round_trip_from_arrays_casts_dtypes_and_keeps_every_example():
    x = {
        "image": np.random.rand(10, 16, 16, 1),  # float64 in
        "text": np.arange(80).reshape(10, 8) % 30,  # int64 in
        "audio": np.random.rand(10, 512, 1).astype("float16"),
    }
    y = np.arange(10) % 3
    ds = from_arrays(x, y, batch_size=4)
    spec_x, spec_y = ds.element_spec
    assert {k: s.dtype for k, s in spec_x.items()} == {
        "image": tf.float32, "text": tf.int32, "audio": tf.float32
    }
    assert spec_y.dtype == tf.int32
    batches = list(ds.as_numpy_iterator())
    assert [len(b[1]) for b in batches] == [4, 4, 2]
    images = np.concatenate([b[0]["image"] for b in batches])
    np.testing.assert_allclose(images, x["image"].astype("float32"))
    np.testing.assert_array_equal(np.concatenate([b[1] for b in batches]), y)


def test_shuffle_is_seeded_and_reshuffles_each_epoch():
    x = {"image": np.arange(20, dtype="float32").reshape(20, 1, 1, 1)}
    y = np.arange(20)
    a = from_arrays(x, y, batch_size=20, shuffle=True, seed=1)
    b = from_arrays(x, y, batch_size=20, shuffle=True, seed=1)
    first = next(iter(a))[1].numpy()
    assert sorted(first.tolist()) == list(range(20))
    assert first.tolist() != list(range(20))
    np.testing.assert_array_equal(first, next(iter(b))[1].numpy())
    epochs = [next(iter(a))[1].numpy().tolist() for _ in range(3)]
    assert len({tuple(e) for e in epochs}) > 1


def test_model_check_accepts_matching_data_and_trains():
    cfg = tiny_config(("image", "text"), num_classes=3)
    model = build_multimodal_model(cfg)
    x, y = data_for(cfg, n=12)
    model.compile("adam", "sparse_categorical_crossentropy", run_eagerly=True)
    ds = from_arrays(x, y, batch_size=6, model=model, num_classes=3)
    history = model.fit(ds, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])


@pytest.mark.parametrize(
    "features, labels, kwargs, message",
    [
        ({"image": np.zeros((3, 2, 2, 1))}, np.zeros(4), {}, "same number of examples"),
        ({"image": np.full((3, 2, 2, 1), np.nan)}, None, {}, "contains NaN or inf (first in example 0)"),
        ({"audio": np.array([[[0.0]], [[np.inf]]])}, None, {}, "(first in example 1)"),
        ({"video": np.zeros((3, 2))}, None, {}, "Unknown modality key(s) ['video']"),
        ({"image": np.zeros((3, 2, 2, 1))}, np.array([0, 1, 5]), {"num_classes": 3},
         "Label 5 of example 2 is out of range: labels must lie in [0, 2]"),
        ({"text": np.full((2, 3), 1.5)}, None, {}, "must be whole numbers"),
        ({"image": np.zeros((2, 2, 2, 1))}, np.array([0.5, 1.0]), {}, "integer class ids"),
        ([np.zeros(3)], None, {}, "non-empty dict"),
        ({"image": np.array(["a", "b"])}, None, {}, "must be numeric"),
    ],
)
def test_bad_arrays_raise_data_error(features, labels, kwargs, message):
    with pytest.raises(DataError) as info:
        validate_arrays(features, labels, **kwargs)
    assert message in str(info.value)


def test_model_check_names_keys_and_shapes():
    model = build_multimodal_model(tiny_config(("image",), num_classes=3))
    with pytest.raises(DataError, match=r"\['audio'\] are not inputs of model"):
        validate_arrays({"image": np.zeros((2, 16, 16, 1)), "audio": np.zeros((2, 512, 1))}, model=model)
    with pytest.raises(DataError, match=r"shape \(8, 8, 1\), but the model expects \(16, 16, 1\)"):
        validate_arrays({"image": np.zeros((2, 8, 8, 1))}, model=model)
    # The same pixels with a size-1 axis fewer are reshaped, not refused; the fix is named otherwise.
    pixels = np.arange(2 * 16 * 16, dtype="float32").reshape(2, 16, 16)
    assert np.array_equal(validate_arrays({"image": pixels}, model=model)[0]["image"], pixels[..., None])
    with pytest.raises(DataError, match=r"Pass arrays shaped \(examples, 16, 16, 1\) for input `image`"):
        validate_arrays({"image": np.zeros((2, 16, 8, 2))}, model=model)
    with pytest.raises(DataError, match=r"needs input\(s\) \['image'\]"):
        validate_arrays({"text": np.zeros((2, 8))}, model=build_multimodal_model(tiny_config(("image", "text"))))
    with pytest.raises(DataError, match="`batch_size` must be a positive integer"):
        from_arrays({"image": np.zeros((2, 16, 16, 1))}, batch_size=0)


def test_multilabel_labels():
    x = {"image": np.zeros((2, 2, 2, 1))}
    _, y = validate_arrays(x, np.array([[0, 1, 1], [1, 0, 0]]), task="multilabel", num_classes=3)
    assert y.dtype == np.float32
    with pytest.raises(DataError, match="0/1 matrix"):
        validate_arrays(x, np.array([[0, 2, 1], [1, 0, 0]]), task="multilabel")


def test_input_specs_reads_model_inputs():
    model = build_multimodal_model(tiny_config())
    assert tfmm.data.input_specs(model) == {
        "image": ((16, 16, 1), "float32"), "text": ((8,), "int32"), "audio": ((512, 1), "float32")
    }
