"""Nothing lost, nothing half-written: temp files are swept, interrupted runs resume per epoch."""

import json
import os
import tempfile

import numpy as np
import pytest

from tfmm import _files
from tfmm._keras import keras
from tfmm.errors import ConfigError
from tfmm.models import build_multimodal_model, compile_model
from tfmm.optimization import optimize, sparsity_report

from tests.helpers import data_for, tiny_config


def _dead_pid():
    pid = 4_000_000
    while True:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return pid
        pid += 1


def test_stale_temp_files_of_killed_runs_are_swept(tmp_path):
    dead = _dead_pid()
    stale_file = tmp_path / f"{_files.TMP_PREFIX}{dead}-abc-model.tflite"
    stale_file.write_bytes(b"half")
    stale_run = tempfile.mkdtemp(prefix=f"{_files.RUN_PREFIX}{dead}-")
    mine = tmp_path / f"{_files.TMP_PREFIX}{os.getpid()}-abc-x"
    mine.write_bytes(b"in use")
    keep = tmp_path / ".tmp-user-file"
    keep.write_bytes(b"not ours")
    _files.check_output_path(str(tmp_path / "out.tflite"))
    assert not stale_file.exists() and os.path.exists(mine) and keep.exists()
    with _files.run_scratch() as folder:
        assert not os.path.exists(stale_run)
        with _files.scratch_dir("x") as sub:
            assert os.path.dirname(sub) == folder
    assert not os.path.exists(folder)


def test_scratch_is_removed_on_ctrl_c():
    with pytest.raises(KeyboardInterrupt):
        with _files.run_scratch() as folder:
            open(os.path.join(folder, "x"), "w").close()
            raise KeyboardInterrupt
    assert not os.path.exists(folder)


def test_atomic_write_leaves_nothing_on_failure(tmp_path, monkeypatch):
    def boom(tmp, path):
        raise OSError("disk full")

    monkeypatch.setattr(_files, "publish_file", boom)
    with pytest.raises(OSError, match="disk full"):
        _files.atomic_write_bytes(str(tmp_path / "a.bin"), b"data")
    assert os.listdir(tmp_path) == []


class _StopAt(keras.callbacks.Callback):
    """Ctrl-C at the start of epoch `epoch` (0-based)."""

    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.epoch:
            raise KeyboardInterrupt


@pytest.mark.slow
def test_optimize_resumes_inside_a_stage_at_the_next_epoch(tmp_path):
    keras.utils.set_random_seed(0)
    config = tiny_config(modalities=("image",))
    model = compile_model(build_multimodal_model(config))
    data = data_for(config, n=64, seed=3)
    recipe = {"prune": {"target_sparsity": 0.5, "epochs": 3}}
    folder = str(tmp_path / "ckpt")
    with pytest.raises(KeyboardInterrupt):
        optimize(model, recipe, data, checkpoint_dir=folder, callbacks=[_StopAt(2)], verbose=0)
    state = json.loads(open(os.path.join(folder, "state.json")).read())
    assert state["stages"] == [] and state["epoch"]["stage"] == "prune" and state["epoch"]["done"] == 2
    with pytest.raises(ConfigError, match="holds the checkpoint of an earlier run"):
        optimize(model, recipe, data, checkpoint_dir=folder, verbose=0)
    with pytest.raises(ConfigError, match="was made with recipe"):
        optimize(model, {"prune": {"target_sparsity": 0.6, "epochs": 3}}, data, checkpoint_dir=folder,
                 resume=True, verbose=0)
    epochs_run = []
    seen = keras.callbacks.LambdaCallback(on_epoch_begin=lambda epoch, logs: epochs_run.append(epoch))
    result = optimize(model, recipe, data, checkpoint_dir=folder, resume=True, callbacks=[seen], verbose=0)
    assert epochs_run == [2]  # only the epoch left
    assert len(result.history["prune"]["loss"]) == 3  # the run's whole history
    assert abs(sparsity_report(result.model)["overall"] - 0.5) <= 0.02
    assert np.isfinite(result.report["stages"]["prune"]["metrics"].get("loss", 0.0))
    assert json.loads(open(os.path.join(folder, "state.json")).read())["stages"] == ["prune"]
