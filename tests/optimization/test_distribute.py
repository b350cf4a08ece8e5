"""Fine-tuning under tf.distribute: two worker processes, and strategy checks."""

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest

from tfmm.errors import ConfigError
from tfmm.optimization import is_chief, make_strategy, optimize
from tfmm.optimization.distribute import strategy_scope

from tests.conftest import copy_model

WORKER = os.path.join(os.path.dirname(__file__), "multiworker_worker.py")


def _free_ports(n):
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def test_two_workers_prune_and_qat_to_identical_weights_and_target_sparsity(tmp_path):
    workers = [f"127.0.0.1:{p}" for p in _free_ports(2)]
    processes = []
    for index in range(2):
        env = dict(os.environ, TF_CONFIG=json.dumps(
            {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}))
        processes.append(subprocess.Popen(
            [sys.executable, WORKER, str(tmp_path / f"worker{index}.npz")], env=env,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    outputs = []
    try:
        for p in processes:
            outputs.append(p.communicate(timeout=240)[0])
    finally:
        for p in processes:
            p.kill()
    for p, out in zip(processes, outputs):
        assert p.returncode == 0, out[-3000:]
    first, second = (np.load(tmp_path / f"worker{i}.npz") for i in range(2))
    assert int(first["replicas"]) == 2
    assert bool(first["chief"]) and not bool(second["chief"])
    for f in (first, second):
        assert abs(float(f["sparsity"]) - 0.6) <= 0.02
    names = [k for k in first.files if k.startswith("weight_")]  # QAT ranges and pruning steps too
    assert names and sorted(names) == sorted(k for k in second.files if k.startswith("weight_"))
    differ = [name for name in names if not np.array_equal(first[name], second[name])]
    assert not differ, f"{len(differ)} of {len(names)} weights differ between the workers: {differ[:8]}"


def test_distill_under_a_strategy_trains_a_copy_in_its_scope(learnable, tmp_path):
    import tensorflow as tf

    from tfmm.optimization import distill

    teacher = str(tmp_path / "teacher.keras")
    learnable["model"].save(teacher)
    strategy = tf.distribute.MirroredStrategy(["/cpu:0"])
    student = copy_model(learnable["model"])
    before = [w.copy() for w in student.get_weights()]
    trained, history = distill(student, {"teacher": teacher, "epochs": 1}, learnable["train"], strategy=strategy,
                               verbose=0)
    assert trained is not student and np.isfinite(history["loss"][0])
    assert all(strategy.extended.variable_created_in_scope(v) for v in trained.weights)
    assert any(not np.array_equal(a, b) for a, b in zip(before, trained.get_weights()))


def test_bad_strategies_raise_config_error(learnable, monkeypatch):
    with pytest.raises(ConfigError, match="one of"):
        make_strategy("tpu")
    monkeypatch.setenv("TF_CONFIG", "{not json")
    with pytest.raises(ConfigError, match="TF_CONFIG"):
        make_strategy("multi-worker")
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": 3}}))
    with pytest.raises(ConfigError, match="index 3"):
        make_strategy("multi-worker")
    with pytest.raises(ConfigError, match="tf.distribute.Strategy"):
        strategy_scope("mirrored")
    with pytest.raises(ConfigError, match="Received: str"):
        optimize(learnable["model"], {"prune": {"target_sparsity": 0.5}}, learnable["train"], strategy="mirrored")
    assert make_strategy("none") is None and is_chief(None)
