import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tfmm  # noqa: E402,F401  (before TensorFlow: selects Keras 2)

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from tfmm._keras import keras  # noqa: E402
from tfmm.models import build_multimodal_model, compile_model  # noqa: E402

from tests.helpers import data_for, tiny_config  # noqa: E402

# The longest tests (1-3 minutes each under `make test`), started first and handed
# out one at a time (`--maxschedchunk 1` in the Makefile): the two workers then end
# together instead of one of them starting a three-minute test as the other finishes.
_LONGEST_FIRST = (
    "tests/test_cli.py::test_quick_demo",
    "tests/test_cli.py::test_train_optimize_export",
    "tests/optimization/test_distribute.py::test_two_workers",
    "tests/test_notebooks.py::test_notebook_executes",
    "tests/optimization/test_distillation.py::test_recipe_distill",
    "tests/optimization/test_clustering.py::test_pcqat",
)


def pytest_collection_modifyitems(config, items):
    def rank(item):
        return next((i for i, prefix in enumerate(_LONGEST_FIRST) if item.nodeid.startswith(prefix)),
                    len(_LONGEST_FIRST))

    items.sort(key=rank)  # stable: the rest keep their order


@pytest.fixture(scope="session")
def learnable():
    """A trained tiny 3-branch model (ResNet, Embedding+LSTM, Conv1D) and its data."""
    keras.utils.set_random_seed(0)
    cfg = tiny_config(num_classes=4)
    x, y = data_for(cfg, n=384, seed=1)
    xv, yv = data_for(cfg, n=128, seed=2)
    model = compile_model(build_multimodal_model(cfg), learning_rate=3e-3)
    model.fit(x, y, batch_size=32, epochs=6, verbose=0)
    accuracy = float(np.mean(model.predict(xv, verbose=0).argmax(-1) == yv))
    assert accuracy > 0.8, f"the fixture task should be learnable (got {accuracy:.2f})"
    return dict(config=cfg, model=model, train=(x, y), validation=(xv, yv), accuracy=accuracy)


def copy_model(model):
    from tfmm.artifacts import copy_model as copy

    return compile_model(copy(model))
