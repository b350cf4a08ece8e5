"""A small synthetic multimodal task with real signal, for fast tests.

Each class has a fixed image template, a set of preferred tokens and a tone
frequency; noise hides part of each so a model has to learn. It is not the
benchmark dataset (see `load_av_digits`), just quick and deterministic.
"""

import numpy as np

from tfmm.errors import DataError

__all__ = ["make_synthetic"]


def make_synthetic(
    num_samples,
    *,
    num_classes=10,
    image_shape=None,
    sequence_length=None,
    vocab_size=None,
    audio_samples=None,
    noise=0.5,
    seed=0,
):
    """Make a learnable synthetic dataset for the modalities whose shapes are given.

    Args:
        num_samples: Number of examples.
        num_classes: Number of classes; labels are `0..num_classes-1`, balanced.
        image_shape: `(height, width, channels)`, or None for no image.
        sequence_length: Token ids per text, or None for no text (needs `vocab_size`).
        vocab_size: Token ids are drawn from `1..vocab_size-1` (0 is padding).
        audio_samples: Waveform length, or None for no audio.
        noise: Standard deviation of the noise added to images and audio.
        seed: Random seed; the same arguments give the same arrays.

    Returns:
        `(features, labels)`: a dict of float32 / int32 arrays keyed `image`,
        `text`, `audio` (those requested) and an int32 label vector.

    Raises:
        DataError: No modality requested, or sizes are invalid.

    Example:
        >>> x, y = tfmm.data.make_synthetic(64, image_shape=(28, 28, 1), audio_samples=800)
        >>> x["image"].shape, y.shape
        ((64, 28, 28, 1), (64,))
    """
    if num_samples <= 0 or num_classes < 2:
        raise DataError(
            f"make_synthetic needs num_samples > 0 and num_classes >= 2. Received: "
            f"num_samples={num_samples}, num_classes={num_classes}"
        )
    if image_shape is None and sequence_length is None and audio_samples is None:
        raise DataError(
            "make_synthetic needs at least one of image_shape, sequence_length, audio_samples."
        )
    if sequence_length is not None and (vocab_size is None or vocab_size < 2 + num_classes):
        raise DataError(
            f"Text needs vocab_size >= num_classes + 2. Received: vocab_size={vocab_size}"
        )
    rng = np.random.default_rng(seed)
    labels = (np.arange(num_samples) % num_classes).astype("int32")
    rng.shuffle(labels)
    features = {}
    if image_shape is not None:
        templates = rng.uniform(0.0, 1.0, size=(num_classes, *image_shape)) > 0.5
        images = templates[labels].astype("float32")
        images += rng.normal(0.0, noise, size=images.shape).astype("float32")
        features["image"] = images
    if sequence_length is not None:
        # Each class favours its own token; the rest of the sequence is random.
        tokens = rng.integers(1, vocab_size, size=(num_samples, sequence_length))
        hits = rng.uniform(size=tokens.shape) < 0.3
        tokens[hits] = (labels[:, None] + 1).repeat(sequence_length, axis=1)[hits]
        lengths = rng.integers(sequence_length // 2, sequence_length + 1, size=num_samples)
        tokens[np.arange(sequence_length)[None, :] >= lengths[:, None]] = 0
        features["text"] = tokens.astype("int32")
    if audio_samples is not None:
        t = np.arange(audio_samples, dtype="float32") / audio_samples
        freqs = 20.0 + 15.0 * labels.astype("float32")
        phase = rng.uniform(0, 2 * np.pi, size=(num_samples, 1))
        wave = np.sin(2 * np.pi * freqs[:, None] * t[None, :] + phase)
        wave += rng.normal(0.0, noise, size=wave.shape)
        features["audio"] = wave[..., None].astype("float32")
    return features, labels
