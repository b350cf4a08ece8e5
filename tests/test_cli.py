import json
import os
import subprocess
import sys

import pytest

from tfmm.cli import main


def _tfmm(*args, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "tfmm.cli", *args], capture_output=True, text=True, cwd=cwd, timeout=600
    )


def test_help_and_version(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    assert "demo" in capsys.readouterr().out
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0


@pytest.mark.parametrize("argv", [[], ["fly"], ["demo", "--epochs", "0"], ["demo", "--bogus"]])
def test_bad_usage_exits_with_code_2(argv, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    assert "usage: tfmm" in capsys.readouterr().err


@pytest.mark.slow
def test_quick_demo_trains_writes_files_and_prints_the_table(tmp_path):
    out = tmp_path / "demo"
    proc = _tfmm("demo", "--quick", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "test accuracy (Keras float)" in proc.stdout
    assert "cuda" not in proc.stderr.lower(), "TensorFlow start-up noise should be hidden"
    results = json.loads((out / "results.json").read_text())
    assert results["data"] == "AV-digits (bundled)"
    assert (results["train_examples"], results["test_examples"], results["epochs"]) == (3500, 1000, 2)
    # Ten classes: chance is 0.10; two epochs on AV-digits learn well above it.
    assert results["test_accuracy"] > 0.3
    assert f"{results['test_accuracy']:.3f}" in proc.stdout
    assert os.path.getsize(out / "model.keras") > 10_000
    assert (out / "config.yaml").read_text().startswith("num_classes: 10")
    assert json.loads((out / "vocabulary.json").read_text())["sequence_length"] == 24
    variants = {v["mode"]: v for v in results["variants"]}
    assert set(variants) == {"float32", "dynamic", "int8"}
    for mode, v in variants.items():
        assert os.path.getsize(out / f"model_{mode}.tflite") == v["size_bytes"]
        assert f"{v['size_bytes']:,}" in proc.stdout
    assert variants["float32"]["agreement"] == 1.0
    assert variants["int8"]["agreement"] >= 0.95
    assert variants["int8"]["size_bytes"] < variants["float32"]["size_bytes"]
    assert (out / "model_int8.labels.txt").read_text().split()[7] == "seven"
