"""The end-to-end demo behind `tfmm demo`.

Today it builds the `small` preset, trains it on the synthetic task and saves the
model; later stages (bundled data, optimization, export) plug in here.
"""

import json
import os
import time

import numpy as np

from tfmm.config import atomic_write_text

__all__ = ["run_demo"]


def run_demo(out_dir="tfmm-demo", *, quick=False, epochs=None, seed=0, verbose=1):
    """Train the default multimodal model and write it with its results.

    Args:
        out_dir: Folder for `model.keras`, `config.yaml` and `results.json`.
        quick: Fewer examples and one epoch (about a minute on 2 cores).
        epochs: Override the number of training epochs.
        seed: Random seed for data, weights and shuffling.
        verbose: Keras progress output (0 silent, 1 progress bar, 2 one line per epoch).

    Returns:
        A dict of results (`data`, `train_examples`, `test_accuracy`,
        `params`, `seconds`, `model_path`).

    Example:
        >>> results = tfmm.demo.run_demo("/tmp/demo", quick=True)  # doctest: +SKIP
    """
    from tfmm._keras import keras
    from tfmm.data import make_synthetic
    from tfmm.models import build_multimodal_model, compile_model, get_preset

    start = time.perf_counter()
    keras.utils.set_random_seed(seed)
    os.makedirs(out_dir, exist_ok=True)
    config = get_preset("small")
    n_train, n_test = (600, 200) if quick else (3000, 1000)
    epochs = epochs or (1 if quick else 3)
    shapes = dict(
        num_classes=config.num_classes,
        image_shape=config.image.input_shape,
        sequence_length=config.text.sequence_length,
        vocab_size=config.text.vocab_size,
        audio_samples=config.audio.input_shape[0],
        noise=1.0,
    )
    x_train, y_train = make_synthetic(n_train, seed=seed, **shapes)
    x_test, y_test = make_synthetic(n_test, seed=seed + 1, **shapes)
    model = compile_model(build_multimodal_model(config))
    model.fit(x_train, y_train, epochs=epochs, batch_size=32, verbose=verbose)
    probs = model.predict(x_test, batch_size=128, verbose=0)
    accuracy = float(np.mean(np.argmax(probs, axis=-1) == y_test))
    model_path = os.path.join(out_dir, "model.keras")
    tmp_path = os.path.join(out_dir, ".tmp-model.keras")
    model.save(tmp_path)
    os.replace(tmp_path, model_path)
    config.to_yaml(os.path.join(out_dir, "config.yaml"))
    results = {
        "data": "synthetic (class templates + noise)",
        "preset": "small",
        "train_examples": n_train,
        "test_examples": n_test,
        "epochs": epochs,
        "params": int(model.count_params()),
        "test_accuracy": accuracy,
        "seconds": round(time.perf_counter() - start, 1),
        "model_path": model_path,
    }
    atomic_write_text(os.path.join(out_dir, "results.json"), json.dumps(results, indent=2))
    return results
