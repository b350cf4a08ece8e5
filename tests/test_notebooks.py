"""The Colab notebooks run clean, top to bottom, in their quick mode."""

import os

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
    assert "test accuracy" in text
    assert (tmp_path / "tfmm-notebook-files").is_dir()
