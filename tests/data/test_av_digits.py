import numpy as np
import pytest

import tfmm
from tfmm.data import load_av_digits
from tfmm.data.av_digits import SEQUENCE_LENGTH
from tfmm.models.presets import DEFAULT_SHAPES
from tfmm.errors import DataError

SIZES = {"train": 3500, "validation": 500, "test": 1000}


@pytest.mark.parametrize("split", list(SIZES))
def test_splits_have_the_documented_shapes_sizes_and_balanced_classes(split):
    x, y = load_av_digits(split)
    n = SIZES[split]
    assert x["image"].shape == (n, 28, 28, 1) and x["image"].dtype == np.float32
    assert x["text"].shape == (n, SEQUENCE_LENGTH) and x["text"].dtype == np.int32
    assert x["audio"].shape == (n, 8000, 1) and x["audio"].dtype == np.float32
    assert y.dtype == np.int32
    assert np.bincount(y, minlength=10).tolist() == [n // 10] * 10
    assert 0.0 <= x["image"].min() and x["image"].max() <= 1.0
    assert np.abs(x["audio"]).max() <= 1.0
    assert x["text"].max() < tfmm.data.av_digits_tokenizer().vocab_size
    # Classes are mixed, not in blocks of one digit.
    assert len(set(y[:30].tolist())) >= 5


def test_splits_share_no_image_and_no_audio_clip():
    infos = {s: load_av_digits(s, return_info=True)[2] for s in SIZES}
    for a in SIZES:
        for b in SIZES:
            if a < b:
                assert not set(infos[a].image_ids) & set(infos[b].image_ids), (a, b)
                assert not set(infos[a].clip_ids) & set(infos[b].clip_ids), (a, b)
    assert sum(len(i.image_ids) for i in infos.values()) == 5000


def test_loading_is_deterministic_and_returns_copies():
    x1, y1 = load_av_digits("validation")
    x1["image"][:] = 0
    x2, y2 = load_av_digits("validation")
    x3, y3 = load_av_digits("validation")
    assert x2["image"].max() > 0
    for key in x2:
        np.testing.assert_array_equal(x2[key], x3[key])
    np.testing.assert_array_equal(y2, y3)


def test_corruption_is_present_in_every_modality():
    x, y, info = load_av_digits("test", return_info=True)
    missing = np.mean([t == "" for t in info.texts])
    assert 0.2 < missing < 0.4
    assert (x["text"][np.array([t == "" for t in info.texts])] == 0).all()
    # Every image carries noise: no image is pure black-and-white.
    assert np.mean((x["image"] > 0.02) & (x["image"] < 0.98)) > 0.3
    # Audio has noise around the speech: no example is silent anywhere.
    assert (np.abs(x["audio"][:, :200, 0]).max(axis=1) > 0).all()


def test_info_holds_raw_texts_and_the_tokenizer_that_made_the_ids():
    x, _, info = load_av_digits("validation", return_info=True)
    assert info.class_names[7] == "seven" and info.sample_rate == 8000
    np.testing.assert_array_equal(info.tokenizer(list(info.texts)), x["text"])


@pytest.mark.parametrize("split", list(SIZES))
def test_every_text_fits_the_sequence_length_whole(split):
    # SEQUENCE_LENGTH is the longest text: nothing is cut, and the default model reads it all.
    x, _, info = load_av_digits(split, return_info=True)
    lengths = np.array([len(t) for t in info.texts])
    np.testing.assert_array_equal((x["text"] != 0).sum(axis=1), lengths)
    assert lengths.max() <= SEQUENCE_LENGTH == DEFAULT_SHAPES["sequence_length"]


def test_modalities_subset_and_errors():
    x, _ = load_av_digits("validation", modalities=("audio",))
    assert list(x) == ["audio"]
    with pytest.raises(DataError, match="Unknown split 'dev'"):
        load_av_digits("dev")
    with pytest.raises(DataError, match=r"Received: \['video'\]"):
        load_av_digits("test", modalities=("video",))


def test_bundled_artifact_is_small():
    import os

    path = os.path.join(os.path.dirname(tfmm.data.av_digits.__file__), "av_digits.npz")
    assert os.path.getsize(path) < 15 * 1024 * 1024
