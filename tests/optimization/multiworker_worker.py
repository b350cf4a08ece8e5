"""One worker of the two-process pruning test (`test_distribute.py`); reads TF_CONFIG.

Usage: python multiworker_worker.py OUT.npz

Runs the recipe prune 60% -> sparsity-preserving QAT on the tiny 3-branch model
and saves the final weights (QAT ranges and pruning steps included).
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tfmm  # noqa: E402,F401  (selects Keras 2 before TensorFlow loads)
from tfmm.optimization import is_chief, make_strategy, optimize, sparsity_report  # noqa: E402

strategy = make_strategy("multi-worker")  # first TensorFlow work of the process

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from tests.helpers import data_for, tiny_config  # noqa: E402
from tfmm._keras import keras  # noqa: E402
from tfmm.models import build_multimodal_model  # noqa: E402

keras.utils.set_random_seed(0)
config = tiny_config(num_classes=4)
x, y = data_for(config, n=64, seed=1)
with strategy.scope():
    model = build_multimodal_model(config)
recipe = {"prune": {"target_sparsity": 0.6, "epochs": 1}, "quantize": {"epochs": 1}}
result = optimize(model, recipe, (x, y), strategy=strategy, verbose=0)
weights = {f"weight_{i}:{v.name}": w for i, (v, w) in enumerate(zip(result.model.weights, result.model.get_weights()))}
np.savez(sys.argv[1], sparsity=sparsity_report(result.model)["overall"], chief=is_chief(strategy),
         replicas=strategy.num_replicas_in_sync, **weights)
