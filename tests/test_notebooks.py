"""The Colab notebooks run clean, top to bottom, in their quick mode."""

import os
import re

import pytest

NOTEBOOKS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "notebooks")
NAMES = sorted(n for n in os.listdir(NOTEBOOKS) if n.endswith(".ipynb"))


def test_there_are_three_notebooks_without_outputs():
    import nbformat

    assert NAMES == ["01_build_and_train.ipynb", "02_prune_and_qat.ipynb", "03_export_int8_android.ipynb"]
    for name in NAMES:
        notebook = nbformat.read(os.path.join(NOTEBOOKS, name), as_version=4)
        nbformat.validate(notebook)
        code = [c for c in notebook.cells if c.cell_type == "code"]
        assert "pip" in code[0].source and not any(c.outputs for c in code), name
        assert not any("/work/" in c.source or "/home/" in c.source for c in notebook.cells), "no local paths"


_INSTALL_PROBE = """
import importlib.util, json, subprocess, sys
real = importlib.util.find_spec
importlib.util.find_spec = lambda name, *a: None if name == "tfmm" else real(name, *a)
calls = []
subprocess.check_call = lambda argv: calls.append(argv[-1])
try:
    exec(open(sys.argv[1]).read().split("import tfmm  # first")[0])
except SystemExit as e:
    calls.append("exit: " + str(e))
print(json.dumps(calls))
"""


@pytest.mark.parametrize("files, expected", [
    (["tfmm-0.1.0-py3-none-any.whl"], "tfmm-0.1.0-py3-none-any.whl"),  # uploaded to Colab's files
    (["tfmm/setup.cfg", "tfmm/tfmm/__init__.py"], "tfmm"),  # a clone beside the notebook
    ([], "exit: tfmm is not installed: upload the tfmm-*.whl wheel"),
])
def test_the_install_cell_finds_a_wheel_or_a_clone_and_names_no_placeholder_url(files, expected, tmp_path):
    import json
    import subprocess
    import sys

    import nbformat

    for name in files:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("")
    cell = nbformat.read(os.path.join(NOTEBOOKS, NAMES[0]), as_version=4).cells[1].source
    assert "github.com" not in cell and "TFMM_SOURCE" in cell
    (tmp_path / "cell.py").write_text(cell)
    (tmp_path / "probe.py").write_text(_INSTALL_PROBE)
    env = {k: v for k, v in os.environ.items() if k != "TFMM_SOURCE"}
    proc = subprocess.run([sys.executable, "probe.py", "cell.py"], cwd=tmp_path, capture_output=True, text=True,
                          env=env, timeout=120)
    calls = json.loads(proc.stdout.strip().splitlines()[-1])
    assert len(calls) == 1 and calls[0].startswith(expected), (calls, proc.stderr[-2000:])


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_notebook_executes(name, tmp_path, monkeypatch):
    import nbformat
    from nbclient import NotebookClient

    monkeypatch.setenv("TFMM_NOTEBOOK_QUICK", "1")
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "3")
    notebook = nbformat.read(os.path.join(NOTEBOOKS, name), as_version=4)
    NotebookClient(notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    errors = [o for c in notebook.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors
    text = "".join(o.get("text", "") for c in notebook.cells if c.cell_type == "code" for o in c.outputs)
    # Ten classes: chance is 0.10. The quick mode (small preset, 3 epochs on 1,500 examples) learns well above it.
    accuracy = float(re.search(r"test accuracy (\d\.\d+)", text).group(1))
    assert accuracy > 0.3, accuracy
    if name != NAMES[0]:  # the optimized (02) and exported (03) models as int8 files, verified on LiteRT
        found = re.search(r"int8 verified: accuracy (\d\.\d+), agreement (\d\.\d+) \((.+?)\)", text)
        assert found, text[-2000:]
        assert float(found.group(1)) > 0.3 and float(found.group(2)) >= 0.9
        assert (tmp_path / found.group(3)).stat().st_size > 10_000
    assert (tmp_path / "tfmm-notebook-files").is_dir()
