"""Real PNG / WAV / CSV manifests through `tfmm train`, `optimize` and `export`, for every modality subset."""

import itertools
import json
import os

import pytest

import tfmm.optimization.stages as stages
from tfmm.cli import main

from tests.reliability.fixtures import COLUMNS, make_files, write_csv

SUBSETS = [combo for r in (1, 2, 3) for combo in itertools.combinations(("image", "text", "audio"), r)]


@pytest.fixture(scope="module")
def manifest(tmp_path_factory):
    folder = tmp_path_factory.mktemp("manifest")
    records = make_files(folder, n=48)
    return folder, records


def _run(argv, capsys, code=0):
    result = main(argv)
    out, err = capsys.readouterr()
    assert result == code, err[-3000:]
    return out, err


def _mode(path):
    return oct(os.stat(path).st_mode & 0o777)


@pytest.mark.slow
@pytest.mark.parametrize("modalities", SUBSETS, ids=["+".join(s) for s in SUBSETS])
def test_manifest_trains_optimizes_and_exports(manifest, modalities, tmp_path, monkeypatch, capsys):
    folder, records = manifest
    data = write_csv(folder / f"{'-'.join(modalities)}.csv", records, columns=(*modalities, "label"))
    monkeypatch.chdir(tmp_path)
    _run(["train", "--preset", "tiny", "--data", data, "--epochs", "1", "--out", "m.keras", "--quiet"], capsys)
    expected = {"m.keras", "m.yaml"} | ({"m.vocab.json"} if "text" in modalities else set())
    assert set(os.listdir(tmp_path)) == expected
    umask = os.umask(0)
    os.umask(umask)
    assert all(_mode(tmp_path / name) == oct(0o666 & ~umask) for name in expected)
    if "text" in modalities:  # the tokenizer is adapted to the model's text length
        assert json.loads((tmp_path / "m.vocab.json").read_text())["sequence_length"] == 16

    (tmp_path / "r.yaml").write_text("quantize:\n  epochs: 1\n")
    _run(["optimize", "--model", "m.keras", "--data", data, "--recipe", "r.yaml", "--out", "o.tfmm", "--quiet"],
         capsys)
    assert (tmp_path / "o.tfmm").exists() and not (tmp_path / "o.checkpoint").exists()
    _run(["export", "--model", "o.tfmm", "--data", data, "--out", "o.tflite", "--runs", "3", "--quiet"], capsys)
    exported = json.loads((tmp_path / "o-export-report" / "results.json").read_text())
    assert exported["verification"]["num_examples"] == 5  # 10% of 48 held out for test
    inputs = {t["name"]: t["dtype"] for t in exported["export"]["summary"]["inputs"]}
    assert inputs == {m: ("int32" if m == "text" else "int8") for m in modalities}
    leftovers = [n for n in os.listdir(tmp_path) if n.startswith(".tfmm-tmp-")]
    assert not leftovers


@pytest.mark.slow
def test_interrupted_optimize_keeps_its_checkpoint_and_resumes(manifest, tmp_path, monkeypatch, capsys):
    folder, records = manifest
    data = write_csv(folder / "image.csv", records, columns=("image", "label"))
    monkeypatch.chdir(tmp_path)
    _run(["train", "--preset", "tiny", "--data", data, "--epochs", "1", "--out", "m.keras", "--quiet"], capsys)
    (tmp_path / "r.yaml").write_text("prune:\n  target_sparsity: 0.5\n  epochs: 1\nquantize:\n  epochs: 1\n")
    argv = ["optimize", "--model", "m.keras", "--data", data, "--recipe", "r.yaml", "--out", "o.tfmm", "--quiet"]

    class CtrlC(stages.Stage):
        name = "quantize"

        def run(self, context, model):
            raise KeyboardInterrupt

    class Counted(stages.Stage):
        name = "prune"

        def run(self, context, model):
            calls.append("ran")

    quantize = stages.STAGE_TYPES["quantize"]
    monkeypatch.setitem(stages.STAGE_TYPES, "quantize", CtrlC)
    _, err = _run(argv, capsys, code=130)
    assert err.strip().count("\n") == 0 and "interrupted" in err and "--resume" in err
    assert not (tmp_path / "o.tfmm").exists() and not (tmp_path / "o-optimize-report").exists()
    state = json.loads((tmp_path / "o.checkpoint" / "state.json").read_text())
    assert state["stages"] == ["prune"] and (tmp_path / "o.checkpoint" / "after-prune.tfmm").exists()

    _, err = _run(argv, capsys, code=2)  # a second run must not overwrite the checkpoint by accident
    assert "--resume" in err

    calls = []
    monkeypatch.setitem(stages.STAGE_TYPES, "prune", Counted)
    monkeypatch.setitem(stages.STAGE_TYPES, "quantize", quantize)
    _run(argv + ["--resume"], capsys)
    assert calls == []  # the finished stage was not run again
    results = json.loads((tmp_path / "o-optimize-report" / "results.json").read_text())
    assert abs(results["optimization"]["stages"]["prune"]["sparsity"] - 0.5) <= 0.02
    assert float(results["facts"]["sparsity"]) == pytest.approx(0.5, abs=0.02)
    assert (tmp_path / "o.tfmm").exists() and not (tmp_path / "o.checkpoint").exists()


@pytest.mark.parametrize("extra, message", [
    (["--out", "sub/missing/o.tflite"], "does not exist. Create it first"),
    (["--out", "."], "is a folder; pass a file path inside it"),
    (["--out", "o.tfl"], "must end in .tflite"),
    (["--vocabulary", "missing.json"], "Vocabulary file not found: 'missing.json'"),
])
def test_export_checks_before_loading(manifest, extra, message, tmp_path, monkeypatch, capsys):
    folder, records = manifest
    monkeypatch.chdir(tmp_path)
    (tmp_path / "m.keras").write_bytes(b"never read")
    argv = ["export", "--model", "m.keras", "--data", write_csv(folder / "t.csv", records, columns=("text", "label"))]
    _, err = _run(argv + extra, capsys, code=2)
    assert message in err and "Traceback" not in err


def test_export_of_a_text_model_needs_its_tokenizer(manifest, tmp_path, monkeypatch, capsys):
    folder, records = manifest
    data = write_csv(folder / "t.csv", records, columns=("text", "label"))
    monkeypatch.chdir(tmp_path)
    _run(["train", "--preset", "tiny", "--data", data, "--epochs", "1", "--out", "m.keras", "--quiet"], capsys)
    os.remove(tmp_path / "m.vocab.json")
    _, err = _run(["export", "--model", "m.keras", "--data", data, "--quiet"], capsys, code=2)
    assert "no tokenizer was saved with it" in err and "--vocabulary" in err
    assert not (tmp_path / "model.tflite").exists()


def test_manifest_outside_paths_need_the_flag(manifest, tmp_path, monkeypatch, capsys):
    folder, records = manifest
    (tmp_path / "sub").mkdir()
    moved = [{**r, "image": os.path.join("..", os.path.basename(folder), r["image"])} for r in records]
    data = write_csv(tmp_path / "sub" / "m.csv", moved, columns=("image", "label"))
    os.symlink(folder, tmp_path / os.path.basename(folder))
    monkeypatch.chdir(tmp_path)
    _, err = _run(["train", "--preset", "tiny", "--data", data, "--epochs", "1", "--quiet"], capsys, code=2)
    assert "outside the manifest's folder" in err and "--allow-outside" in err
    assert not (tmp_path / "model.keras").exists()
    assert COLUMNS  # the fixture columns stay the contract of the manifest format


@pytest.mark.slow
def test_a_users_own_list_input_model_goes_through_optimize_and_export(manifest, tmp_path, monkeypatch, capsys):
    """Bring your own model: a hand-written Keras model (list inputs, GRU, SeparableConv2D, audio as (512,))."""
    from tfmm._keras import keras

    folder, records = manifest
    data = write_csv(folder / "image-audio.csv", records, columns=("image", "audio", "label"))
    monkeypatch.chdir(tmp_path)
    keras.utils.set_random_seed(0)
    image, audio = keras.Input((16, 16, 1), name="image"), keras.Input((512,), name="audio")  # loader gives (512, 1)
    h = keras.layers.GlobalAveragePooling2D()(keras.layers.SeparableConv2D(8, 3, activation="relu")(image))
    s = keras.layers.GRU(8)(keras.layers.Reshape((64, 8))(audio))
    hidden = keras.layers.Dense(16, activation="relu")(keras.layers.Concatenate()([h, s]))
    out = keras.layers.Dense(4, activation="softmax")(hidden)
    model = keras.Model([image, audio], out, name="users_model")
    model.compile("adam", "sparse_categorical_crossentropy", ["accuracy"])
    model.save(tmp_path / "mine.keras")
    (tmp_path / "r.yaml").write_text("channel_prune:\n  fraction: 0.5\n  epochs: 1\n"
                                     "prune:\n  target_sparsity: 0.5\n  epochs: 2\nquantize:\n  epochs: 1\n")
    _run(["optimize", "--model", "mine.keras", "--data", data, "--recipe", "r.yaml", "--out", "o.tfmm", "--quiet"],
         capsys)
    results = json.loads((tmp_path / "o-optimize-report" / "results.json").read_text())
    stages_report = results["optimization"]
    assert abs(stages_report["stages"]["prune"]["sparsity"] - 0.5) <= 0.02
    channels = stages_report["stages"]["channel_prune"]
    assert channels["params_after"] < channels["params_before"] and "->" in results["facts"]["parameters"]
    _run(["export", "--model", "o.tfmm", "--data", data, "--out", "o.tflite", "--runs", "3", "--quiet"], capsys)
    exported = json.loads((tmp_path / "o-export-report" / "results.json").read_text())
    assert {t["name"]: t["dtype"] for t in exported["export"]["summary"]["inputs"]} == {"image": "int8",
                                                                                         "audio": "int8"}
    assert exported["verification"]["num_examples"] == 5 and exported["verification"]["agreement"] >= 0.8
