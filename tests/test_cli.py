import json
import os
import subprocess
import sys

import pytest

import tfmm

from tfmm.cli import main
from tfmm.data.av_digits import SEQUENCE_LENGTH


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


def test_python_dash_m_tfmm_runs_the_cli_and_the_package_claims_this_python():
    import configparser
    import os

    proc = subprocess.run([sys.executable, "-m", "tfmm", "--version"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and proc.stdout.strip() == f"tfmm {tfmm.__version__}", proc.stderr
    proc = subprocess.run([sys.executable, "-m", "tfmm", "fly"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "usage: tfmm" in proc.stderr
    setup = configparser.ConfigParser()
    setup.read(os.path.join(os.path.dirname(os.path.dirname(__file__)), "setup.cfg"))
    from packaging.specifiers import SpecifierSet

    supported = SpecifierSet(setup["options"]["python_requires"])
    here = ".".join(map(str, sys.version_info[:3]))
    assert here in supported and all(v in supported for v in ("3.10.0", "3.12.1", "3.13.0")), supported


@pytest.mark.parametrize("argv", [[], ["fly"], ["demo", "--epochs", "0"], ["demo", "--bogus"]])
def test_bad_usage_exits_with_code_2(argv, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    assert "usage: tfmm" in capsys.readouterr().err


@pytest.mark.slow
def test_quick_demo_trains_writes_files_and_prints_the_table(tmp_path):
    out = tmp_path / "demo"
    proc = _tfmm("demo", "--quick", "--limit", "1000", "--out", str(out))  # `--quick` alone: < 3 min
    assert proc.returncode == 0, proc.stderr
    assert "test accuracy (Keras float)" in proc.stdout
    assert "cuda" not in proc.stderr.lower(), "TensorFlow start-up noise should be hidden"
    results = json.loads((out / "results.json").read_text())
    assert results["data"] == "AV-digits (bundled)"
    assert (results["train_examples"], results["test_examples"], results["epochs"]) == (1000, 1000, 2)
    # Ten classes: chance is 0.10; two epochs on 1,000 examples learn well above it (0.37 measured).
    assert results["test_accuracy"] > 0.25
    assert f"{results['test_accuracy']:.3f}" in proc.stdout
    assert os.path.getsize(out / "model.keras") > 10_000
    assert (out / "model.yaml").read_text().startswith("num_classes: 10")
    assert json.loads((out / "model.vocab.json").read_text())["sequence_length"] == SEQUENCE_LENGTH
    variants = {v["mode"]: v for v in results["variants"]}
    assert set(variants) == {"float32", "dynamic", "prune+QAT int8"}
    for v in variants.values():
        assert os.path.getsize(v["path"]) == v["size_bytes"]
        assert f"{v['size_bytes']:,}" in proc.stdout
        assert f"{v['test_accuracy']:.3f}" in proc.stdout
    assert variants["float32"]["agreement"] == 1.0
    optimized = variants["prune+QAT int8"]
    assert optimized["agreement"] >= 0.85
    assert optimized["size_bytes"] < 0.5 * variants["float32"]["size_bytes"]
    assert optimized["gzip_bytes"] < 0.2 * variants["float32"]["gzip_bytes"]  # 75% zeros compress
    assert abs(results["optimization"]["quantize"]["sparsity"] - 0.75) <= 0.02
    assert (out / "optimized_int8.labels.txt").read_text().split()[7] == "seven"
    # The report: Markdown, self-contained HTML with plots, JSON with the table's numbers.
    report = out / "report"
    html = (report / "report.html").read_text()
    assert html.count("data:image/png;base64,") >= 3 and "prune+QAT int8" in html
    assert "prune+QAT int8" in (report / "report.md").read_text()
    table = {v["name"]: v for v in json.loads((report / "results.json").read_text())["variants"]}
    assert table["prune+QAT int8"]["size_bytes"] == optimized["size_bytes"]
    assert table["keras float"]["accuracy"] == results["test_accuracy"]


def _run(argv, capsys):
    """`tfmm ARGV` in this process (the demo test covers the installed script): (exit code, stdout)."""
    code = main(argv)
    out, err = capsys.readouterr()
    assert code == 0, err[-3000:]
    return out


@pytest.mark.slow
def test_train_optimize_export_inspect_bench_chain(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TF_CONFIG", raising=False)
    out = _run(["train", "--preset", "tiny", "--modalities", "image,text", "--epochs", "3", "--limit", "1200",
                "--out", "m.keras", "--json"], capsys)
    figures = json.loads(out.strip().splitlines()[-1])
    assert 0.2 < figures["test_accuracy"] <= 1 and len(figures["history"]["accuracy"]) == 3
    assert {p.name for p in tmp_path.iterdir()} >= {"m.keras", "m.yaml", "m.vocab.json"}
    assert "text:" in (tmp_path / "m.yaml").read_text() and "audio: null" in (tmp_path / "m.yaml").read_text()

    (tmp_path / "recipe.yaml").write_text("prune:\n  target_sparsity: 0.5\n  epochs: 1\nquantize:\n  epochs: 1\n")
    _run(["optimize", "--model", "m.keras", "--recipe", "recipe.yaml", "--out", "opt.tfmm", "--quiet",
          "--limit", "800", "--strategy", "mirrored"], capsys)
    results = json.loads((tmp_path / "opt-optimize-report" / "results.json").read_text())
    assert abs(results["optimization"]["stages"]["prune"]["sparsity"] - 0.5) <= 0.02
    assert (tmp_path / "opt-optimize-report" / "report.html").stat().st_size > 1000

    assert not (tmp_path / "opt.checkpoint").exists()  # a finished run leaves no checkpoint
    _run(["export", "--model", "opt.tfmm", "--out", "opt.tflite", "--runs", "20", "--quiet",
          "--limit", "400", "--layer-errors"], capsys)
    exported = json.loads((tmp_path / "opt-export-report" / "results.json").read_text())
    verification = exported["verification"]
    assert verification["num_examples"] == 400 and verification["agreement"] >= 0.8
    assert exported["variants"][0]["size_bytes"] == (tmp_path / "opt.tflite").stat().st_size
    assert (tmp_path / "opt.vocab.json").exists() and (tmp_path / "opt.labels.txt").exists()
    errors = exported["export"]["layer_errors"]
    assert len(errors) > 10 and all(e["error"] >= 0 for e in errors)
    assert [e["error"] for e in errors] == sorted((e["error"] for e in errors), reverse=True)
    assert (tmp_path / "opt-export-report" / "plots" / "int8_error.png").stat().st_size > 1000

    summary = json.loads(_run(["inspect", "opt.tflite", "--json"], capsys))
    assert {t["name"]: t["dtype"] for t in summary["inputs"]} == {"image": "int8", "text": "int32"}
    latency = json.loads(_run(["bench", "opt.tflite", "--threads", "2", "--runs", "10", "--json"], capsys))
    assert latency["num_threads"] == 2 and 0 < latency["p50_ms"] <= latency["p90_ms"]
    (tmp_path / "copy.tflite").write_bytes((tmp_path / "opt.tflite").read_bytes())
    turns = json.loads(_run(["bench", "opt.tflite", "copy.tflite", "--runs", "5", "--rounds", "2", "--json"], capsys))
    assert list(turns) == ["opt.tflite", "copy.tflite"] and turns["opt.tflite"]["ratio"] == 1.0
    assert len(turns["copy.tflite"]["rounds"]) == 2 and turns["copy.tflite"]["low_ms"] <= turns["copy.tflite"]["p50_ms"]


@pytest.mark.parametrize("argv, message", [
    (["optimize", "--model", "missing.keras", "--out", "o.tfmm"], "No saved model at 'missing.keras'"),
    (["optimize", "--model", "m.keras", "--out", "o.keras"], "do not load back from .keras"),
    (["export", "--model", "m.keras", "--data", "nowhere.csv"], "No data at 'nowhere.csv'"),
    (["export", "--model", "m.keras"], "'m.keras' is not a Keras model file"),
    (["train", "--config", "bad.yaml"], "depth"),
    (["optimize", "--model", "m.keras", "--out", "o.tfmm", "--strategy", "multi-worker"], "needs TF_CONFIG"),
])
def test_bad_inputs_exit_2_with_a_message(argv, message, tmp_path, monkeypatch, capsys):
    (tmp_path / "bad.yaml").write_text("num_classes: 10\nimage:\n  depth: 11\n")
    (tmp_path / "m.keras").write_text("placeholder")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TF_CONFIG", raising=False)
    assert main(argv) == 2  # in process: the same `main` as the `tfmm` script, without a TF start-up each
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_usage_errors_of_the_verbs(capsys):
    for argv in (["export"], ["export", "--model", "m.keras", "--max-accuracy-drop", "2"],
                 ["bench", "m.tflite", "--threads", "0"], ["train", "--preset", "huge"]):
        with pytest.raises(SystemExit) as info:
            main(argv)
        assert info.value.code == 2, argv
        assert "usage: tfmm" in capsys.readouterr().err


def test_inspect_of_a_corrupt_file_exits_1(tmp_path, capsys):
    (tmp_path / "bad.tflite").write_bytes(b"not a model" * 20)
    assert main(["inspect", str(tmp_path / "bad.tflite")]) == 1
    assert "not a readable TFLite model" in capsys.readouterr().err
