"""TFLite Metadata inside the exported file: written from the published schema, read back."""

import zipfile

import numpy as np
import pytest

import tfmm
from tfmm.errors import ExportError
from tfmm.export import TFLiteRunner, export_tflite, read_metadata

from tests.helpers import data_for, tiny_config


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("meta")
    config = tiny_config(num_classes=3)
    model = tfmm.models.build_multimodal_model(config)
    x, _ = data_for(config, n=16)
    tokenizer = tfmm.data.TextTokenizer.adapt(["one two", "three four"], sequence_length=config.text.sequence_length)
    with_meta = export_tflite(model, str(folder / "m.tflite"), representative_data=x, tokenizer=tokenizer,
                              class_names=["cat", "dog", "émeu"])
    without = export_tflite(model, str(folder / "plain.tflite"), representative_data=x, metadata=False)
    return dict(model=model, x=x, tokenizer=tokenizer, meta=with_meta, plain=without)


def test_metadata_reads_back_with_inputs_normalization_and_files(files):
    meta = read_metadata(files["meta"].path)
    assert meta["name"] == files["model"].name and meta["version"] == f"tfmm {tfmm.__version__}, int8"
    assert meta["min_parser_version"] == "1.0.1" and meta["author"] == "tfmm"
    inputs = {entry["name"]: entry for entry in meta["inputs"]}
    assert set(inputs) == {t.name for t in files["meta"].summary.inputs} == {"image", "text", "audio"}
    assert inputs["image"]["normalization"] == {"mean": [0.0], "std": [255.0]}
    assert inputs["audio"]["normalization"] == {"mean": [0.0], "std": [32768.0]}
    image = next(t for t in files["meta"].summary.inputs if t.name == "image")
    low, high = inputs["image"]["range"]
    assert low == pytest.approx((-128 - image.zero_point) * image.scale, rel=1e-5)
    assert high == pytest.approx((127 - image.zero_point) * image.scale, rel=1e-5)
    assert inputs["text"]["files"] == [{"name": "vocab.txt", "description": "token of id i on line i (0: padding)",
                                        "type": "vocabulary"}]
    assert [f["type"] for f in meta["outputs"][0]["files"]] == ["labels"]
    assert meta["files"]["labels.txt"].splitlines() == ["cat", "dog", "émeu"]
    assert meta["files"]["vocab.txt"].split("\n")[:-1] == files["tokenizer"].vocabulary


def test_metadata_does_not_change_what_the_interpreter_computes(files):
    assert zipfile.is_zipfile(files["meta"].path)  # associated files appended as a zip, as tflite-support does
    assert files["meta"].size_bytes > files["plain"].size_bytes
    with_meta, plain = TFLiteRunner(files["meta"].path), TFLiteRunner(files["plain"].path)
    example = {k: v[:1] for k, v in files["x"].items()}
    np.testing.assert_array_equal(with_meta(example)["head_output"], plain(example)["head_output"])
    with pytest.raises(ExportError, match="has no TFLite Metadata"):
        read_metadata(files["plain"].path)
