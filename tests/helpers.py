"""Checks shared by the model tests: build, train step, predict, tf.data, round trips."""

import numpy as np
import tensorflow as tf

import tfmm
from tfmm.models import build_multimodal_model, compile_model

TINY_SHAPES = dict(image_shape=(16, 16, 1), vocab_size=32, sequence_length=8, audio_samples=512)


def tiny_config(modalities=("image", "text", "audio"), **kwargs):
    """The `tiny` preset at test-sized inputs."""
    shapes = dict(TINY_SHAPES)
    shapes.update({k: kwargs.pop(k) for k in list(kwargs) if k in shapes})
    return tfmm.models.get_preset("tiny", modalities=modalities, **shapes, **kwargs)


def data_for(config, n=8, seed=0):
    """Synthetic features and labels matching `config`'s inputs and head."""
    x, y = tfmm.data.make_synthetic(
        n,
        num_classes=max(config.num_classes, 2),
        image_shape=config.image.input_shape if config.image else None,
        sequence_length=config.text.sequence_length if config.text else None,
        vocab_size=config.text.vocab_size if config.text else None,
        audio_samples=config.audio.input_shape[0] if config.audio else None,
        seed=seed,
    )
    if config.task == "multilabel":
        y = np.eye(config.num_classes, dtype="float32")[y % config.num_classes]
    return x, y


def run_model_contract(config, n=8, graph=False):
    """Build, one train step (weights change), predict shape, tf.data input.

    Eager by default: tracing dominates the time of tiny models. `graph=True`
    runs the traced `tf.function` path.
    Returns the compiled model.
    """
    model = compile_model(build_multimodal_model(config), task=config.task, run_eagerly=not graph)
    x, y = data_for(config, n)
    assert sorted(model.input_names) == sorted(config.modalities)
    before = [w.numpy().copy() for w in model.trainable_weights]
    history = model.fit(x, y, batch_size=n, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    changed = [not np.allclose(a, b.numpy()) for a, b in zip(before, model.trainable_weights)]
    assert sum(changed) >= len(changed) // 2, "a training step should update the weights"
    probs = model.predict(x, verbose=0)
    assert probs.shape == (n, config.num_classes)
    if config.task == "multiclass":
        np.testing.assert_allclose(probs.sum(axis=-1), 1.0, rtol=1e-5)
    else:
        assert ((probs >= 0) & (probs <= 1)).all()
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(4)
    np.testing.assert_allclose(model.predict(dataset, verbose=0), probs, rtol=1e-4, atol=1e-5)
    return model
