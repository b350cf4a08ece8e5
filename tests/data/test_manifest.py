import csv
import json

import numpy as np
import pytest
import tensorflow as tf

from tfmm.data import DataWarning, TextTokenizer, from_manifest, read_manifest
from tfmm.errors import DataError


def _write_png(path, pixels):
    tf.io.write_file(str(path), tf.io.encode_png(tf.constant(pixels, dtype=tf.uint8)))


def _write_wav(path, samples, rate):
    tf.io.write_file(str(path), tf.audio.encode_wav(tf.constant(samples[:, None], tf.float32), rate))


@pytest.fixture
def files(tmp_path):
    """Three records of real files: PNG / JPEG images and WAV audio."""
    rng = np.random.default_rng(0)
    records = []
    for i in range(3):
        img = (rng.uniform(size=(20, 20, 1)) * 255).astype("uint8")
        name = f"img{i}.png"
        if i == 2:
            name = "img2.jpg"
            tf.io.write_file(str(tmp_path / name), tf.io.encode_jpeg(tf.constant(img)))
        else:
            _write_png(tmp_path / name, img)
        wave = np.sin(np.arange(400) * (i + 1) / 10).astype("float32") * 0.5
        _write_wav(tmp_path / f"clip{i}.wav", wave, 8000)
        records.append({"image": name, "text": ["one", "deux", "drei"][i], "audio": f"clip{i}.wav", "label": i})
    return tmp_path, records


def _csv(path, records):
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(records[0]))
        writer.writeheader()
        writer.writerows(records)
    return path


def _jsonl(path, records):
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n")
    return path


@pytest.mark.parametrize("writer", [_csv, _jsonl], ids=["csv", "jsonl"])
def test_manifest_round_trip_decodes_resizes_pads_and_tokenizes(files, writer):
    folder, records = files
    manifest = writer(folder / ("m.csv" if writer is _csv else "m.jsonl"), records)
    data = read_manifest(manifest, image_shape=(16, 16, 1), audio_samples=600, sample_rate=8000,
                         sequence_length=6, num_classes=3)
    assert data.features["image"].shape == (3, 16, 16, 1)
    expected = tf.image.resize(
        tf.cast(tf.io.decode_png(tf.io.read_file(str(folder / "img0.png"))), tf.float32) / 255.0, (16, 16)
    ).numpy()
    np.testing.assert_allclose(data.features["image"][0], expected, atol=1e-6)
    audio = data.features["audio"]
    assert audio.shape == (3, 600, 1)
    np.testing.assert_allclose(audio[1, :400, 0], np.sin(np.arange(400) * 2 / 10) * 0.5, atol=1e-4)
    assert (audio[:, 400:] == 0).all()  # zero-padded to 600
    assert data.features["text"].shape == (3, 6)
    np.testing.assert_array_equal(data.features["text"], data.tokenizer(["one", "deux", "drei"]))
    assert data.labels.tolist() == [0, 1, 2]
    assert data.texts == ["one", "deux", "drei"]


def test_from_manifest_dataset_and_saved_vocabulary(files):
    folder, records = files
    manifest = _csv(folder / "m.csv", records)
    vocab = folder / "vocab.json"
    ds = from_manifest(manifest, batch_size=2, image_shape=(8, 8, 1), audio_samples=400,
                       save_vocabulary=vocab, num_classes=3)
    batches = list(ds.as_numpy_iterator())
    assert [len(b[1]) for b in batches] == [2, 1]
    assert batches[0][0]["text"].dtype == np.int32
    # The saved vocabulary reproduces the same ids at inference time.
    np.testing.assert_array_equal(TextTokenizer.load(vocab)(["one", "deux"]), batches[0][0]["text"])
    again = read_manifest(manifest, image_shape=(8, 8, 1), audio_samples=400, tokenizer=str(vocab))
    np.testing.assert_array_equal(again.features["text"][:2], batches[0][0]["text"])


def test_rgb_images_and_resampled_stereo_audio(tmp_path):
    _write_png(tmp_path / "a.png", np.full((10, 12, 3), 255, "uint8"))
    stereo = np.stack([np.ones(1600), np.zeros(1600)], axis=1).astype("float32") * 0.5
    tf.io.write_file(str(tmp_path / "a.wav"), tf.audio.encode_wav(tf.constant(stereo), 16000))
    manifest = _jsonl(tmp_path / "m.jsonl", [{"image": "a.png", "audio": "a.wav", "label": 0}])
    data = read_manifest(manifest, image_shape=(5, 6, 3), audio_samples=1000, sample_rate=8000)
    assert data.features["image"].shape == (1, 5, 6, 3)
    np.testing.assert_allclose(data.features["image"], 1.0)
    # 1600 samples at 16 kHz -> 800 at 8 kHz, channels averaged (0.25), then padded.
    audio = data.features["audio"][0, :, 0]
    assert np.abs(audio[100:700] - 0.25).max() < 0.02
    assert (audio[820:] == 0).all()
    with pytest.raises(DataError, match=r"Record 1 .*sampled at 16000 Hz, not 8000 Hz; pass resample=True"):
        read_manifest(manifest, audio_samples=1000, sample_rate=8000, resample=False)


def test_missing_text_is_allowed_and_empty(files):
    folder, records = files
    records[1]["text"] = ""
    data = read_manifest(_csv(folder / "m.csv", records), modalities=("text",), sequence_length=4)
    assert (data.features["text"][1] == 0).all()
    assert list(data.features) == ["text"]


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda r, d: r[1].update(image="nope.png"), "Record 2 of .*image file not found: .*nope.png"),
        (lambda r, d: ((d / "bad.png").write_bytes(b"not an image"), r[0].update(image="bad.png")),
         "Record 1 of .*cannot decode image"),
        (lambda r, d: ((d / "bad.wav").write_bytes(b"RIFF0000"), r[2].update(audio="bad.wav")),
         "Record 3 of .*cannot decode WAV"),
        (lambda r, d: r[2].update(label=7), r"Record 3 of .*label 7 is out of range \[0, 2\]"),
        (lambda r, d: r[0].update(label="cat"), "Record 1 of .*label 'cat' is not an integer class id"),
        (lambda r, d: r[0].update(audio=""), "Record 1 of .*no audio file given"),
    ],
)
def test_bad_records_raise_data_error_naming_the_record(files, change, message):
    folder, records = files
    change(records, folder)
    manifest = _jsonl(folder / "m.jsonl", records)
    with pytest.raises(DataError, match=message):
        read_manifest(manifest, num_classes=3)


def test_skip_bad_records_reports_the_count(files):
    folder, records = files
    records[0]["image"] = "gone.png"
    records[2]["label"] = 9
    manifest = _jsonl(folder / "m.jsonl", records)
    with pytest.warns(DataWarning, match="Skipped 2 of 3 records"):
        data = read_manifest(manifest, num_classes=3, skip_bad=True)
    assert data.labels.tolist() == [1]
    assert [n for n, _ in data.skipped] == [1, 3]


def test_manifest_level_errors(tmp_path, files):
    with pytest.raises(DataError, match="Manifest not found"):
        read_manifest(tmp_path / "none.csv")
    (tmp_path / "m.txt").write_text("x")
    with pytest.raises(DataError, match="must end in .csv or .jsonl"):
        read_manifest(tmp_path / "m.txt")
    folder, records = files
    manifest = _csv(folder / "m.csv", records)
    with pytest.raises(DataError, match=r"Unknown modality \['video'\]"):
        read_manifest(manifest, modalities=("video",))
    only_text = _jsonl(folder / "t.jsonl", [{"text": "one", "label": 0}])
    with pytest.raises(DataError, match=r"no column for \['image'\]"):
        read_manifest(only_text, modalities=("image",))
    (folder / "broken.jsonl").write_text('{"text": "a"}\n{oops\n')
    with pytest.raises(DataError, match="line 2 is not valid JSON"):
        read_manifest(folder / "broken.jsonl")
