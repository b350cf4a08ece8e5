import json

import numpy as np
import pytest
import tensorflow as tf

from tfmm._keras import keras
from tfmm.data import TextTokenizer, representative_dataset
from tfmm.errors import DataError
from tfmm.models import build_multimodal_model

from tests.helpers import data_for, tiny_config


def test_tokenizer_save_and_load_give_the_same_ids(tmp_path):
    texts = ["sieben", "Seven!", "sept", "", "a zéro"]
    tok = TextTokenizer.adapt(texts, sequence_length=10)
    ids = tok(texts)
    assert ids.shape == (5, 10) and ids.dtype == np.int32
    assert (ids[3] == 0).all()  # an empty text is all padding
    assert tok.vocabulary[:2] == ["", "[UNK]"]
    assert ids[0, 0] == tok.vocabulary.index("s")  # lower-cased characters
    path = tmp_path / "vocab.json"
    tok.save(path)
    loaded = TextTokenizer.load(path)
    np.testing.assert_array_equal(loaded(texts), ids)
    assert loaded.vocab_size == tok.vocab_size
    assert json.loads(path.read_text())["padding_id"] == 0
    # Unknown characters map to id 1, long texts are cut.
    assert loaded(["ñ"])[0, 0] == 1
    assert loaded(["sieben sieben sieben"])[0].tolist().count(0) == 0


def test_word_tokenizer():
    tok = TextTokenizer.adapt(["one two", "two three"], sequence_length=3, split="whitespace")
    assert tok(["two one four"]).tolist() == [[tok.vocabulary.index("two"), tok.vocabulary.index("one"), 1]]


def test_tokenizer_errors(tmp_path):
    with pytest.raises(DataError, match="Vocabulary file not found"):
        TextTokenizer.load(tmp_path / "none.json")
    bad = tmp_path / "bad.json"
    bad.write_text('{"vocabulary": ["a"]}')
    with pytest.raises(DataError, match="is not a tfmm tokenizer file"):
        TextTokenizer.load(bad)
    with pytest.raises(DataError, match="`split` must be one of"):
        TextTokenizer(["a"], sequence_length=3, split="bpe")
    with pytest.raises(DataError, match="reserved"):
        TextTokenizer(["", "a"], sequence_length=3)


def _check_examples(gen, model, count):
    examples = list(gen())
    assert len(examples) == count
    specs = {t.name.split(":")[0]: t for t in model.inputs}
    for example in examples:
        assert set(example) == set(specs)
        for name, value in example.items():
            assert value.shape == (1, *specs[name].shape[1:])
            assert value.dtype == specs[name].dtype.as_numpy_dtype
    return examples


def test_representative_data_from_arrays_has_the_model_dtypes_and_shapes():
    cfg = tiny_config()
    model = build_multimodal_model(cfg)
    x, y = data_for(cfg, n=12)
    x64 = {k: v.astype("float64") if v.dtype.kind == "f" else v.astype("int64") for k, v in x.items()}
    gen = representative_dataset((x64, y), num_samples=5, model=model)
    examples = _check_examples(gen, model, 5)
    np.testing.assert_allclose(examples[4]["image"][0], x["image"][4])
    assert gen.num_samples == 5
    # Calling again replays the same examples (the converter may iterate twice).
    np.testing.assert_array_equal(next(iter(gen()))["text"], examples[0]["text"])


def test_a_one_input_model_takes_a_bare_array():
    inputs = keras.Input((3,), name="pixels")
    model = keras.Model(inputs, keras.layers.Dense(2)(inputs))
    data = np.arange(12, dtype="float64").reshape(4, 3)
    examples = list(representative_dataset(data, num_samples=3, model=model)())
    assert len(examples) == 3 and set(examples[0]) == {"pixels"}
    assert examples[2]["pixels"].dtype == np.float32 and examples[2]["pixels"].tolist() == [[6, 7, 8]]
    with pytest.raises(DataError, match="expects a dict of arrays"):  # which input is unknown
        representative_dataset(data, num_samples=3)


@pytest.mark.parametrize("batched", [True, False])
def test_representative_data_from_a_dataset(batched):
    cfg = tiny_config(("image", "audio"), num_classes=3)
    model = build_multimodal_model(cfg)
    x, y = data_for(cfg, n=10)
    ds = tf.data.Dataset.from_tensor_slices((x, y))
    if batched:
        ds = ds.batch(4)
    _check_examples(representative_dataset(ds, num_samples=7, model=model), model, 7)
    # Fewer examples than asked: all of them.
    _check_examples(representative_dataset(ds, num_samples=50, model=model), model, 10)


def test_representative_data_errors():
    with pytest.raises(DataError, match="`num_samples` must be a positive integer"):
        representative_dataset({"image": np.zeros((2, 2, 2, 1))}, num_samples=0)
    with pytest.raises(DataError, match="the data is empty"):
        representative_dataset({"image": np.zeros((0, 2, 2, 1))})
    with pytest.raises(DataError, match="expects a dict of arrays"):
        representative_dataset([1, 2, 3])
    with pytest.raises(DataError, match="contains NaN"):
        representative_dataset({"image": np.full((2, 2, 2, 1), np.nan)})
