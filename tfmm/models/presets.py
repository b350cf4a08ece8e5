"""Named model configs: `tiny` (tests), `small` (the demo), `base`.

All presets fit the bundled AV-digits data by default: 28x28 grayscale images,
character token ids, and one second of 8 kHz audio.
"""

import dataclasses

from tfmm.errors import ConfigError
from tfmm.models.configs import (
    MODALITIES,
    AudioBranchConfig,
    FusionConfig,
    ImageBranchConfig,
    MultimodalConfig,
    TextBranchConfig,
)

__all__ = ["get_preset", "list_presets", "DEFAULT_SHAPES"]

DEFAULT_SHAPES = {
    "image_shape": (28, 28, 1),
    "vocab_size": 64,
    "sequence_length": 24,
    "audio_samples": 8000,
    "sample_rate": 8000,
}

_PRESETS = {
    "tiny": dict(
        image=dict(depth=10, base_width=8, num_stages=2),
        text=dict(embedding_dim=8, lstm_units=8),
        audio=dict(filters=(8, 16), kernel_sizes=9, strides=(8, 8)),
        fusion=dict(projection_dim=16, num_heads=2),
    ),
    "small": dict(
        image=dict(depth=10, base_width=16, num_stages=3),
        text=dict(embedding_dim=32, lstm_units=48),
        audio=dict(filters=(16, 32, 64, 64), kernel_sizes=(25, 9, 9, 9), strides=(4, 4, 2, 2)),
        fusion=dict(projection_dim=64, num_heads=4, dropout=0.2),
    ),
    "base": dict(
        image=dict(depth=18, base_width=32, num_stages=4),
        text=dict(embedding_dim=64, lstm_units=96, bidirectional=True),
        audio=dict(
            filters=(32, 64, 128, 128, 256), kernel_sizes=(25, 9, 9, 9, 9), strides=(4, 2, 2, 2, 2)
        ),
        fusion=dict(projection_dim=128, num_heads=4, hidden_units=(128,), dropout=0.2),
    ),
}


def list_presets():
    """Return the preset names.

    Returns:
        A tuple of names accepted by `get_preset`.

    Example:
        >>> tfmm.models.list_presets()
        ('tiny', 'small', 'base')
    """
    return tuple(_PRESETS)


def get_preset(
    name,
    *,
    num_classes=10,
    modalities=MODALITIES,
    fusion="concat",
    task="multiclass",
    image_shape=DEFAULT_SHAPES["image_shape"],
    vocab_size=DEFAULT_SHAPES["vocab_size"],
    sequence_length=DEFAULT_SHAPES["sequence_length"],
    audio_samples=DEFAULT_SHAPES["audio_samples"],
    sample_rate=DEFAULT_SHAPES["sample_rate"],
):
    """Return a named `MultimodalConfig`.

    Args:
        name: `"tiny"`, `"small"` or `"base"`.
        num_classes: Number of classes.
        modalities: Which of `image`, `text`, `audio` to include.
        fusion: Fusion mode name (`"concat"`, `"attention"`, `"gated"`).
        task: `"multiclass"` or `"multilabel"`.
        image_shape: `(height, width, channels)` of images.
        vocab_size: Text vocabulary size (token ids `0..vocab_size-1`).
        sequence_length: Token ids per text.
        audio_samples: Samples per waveform.
        sample_rate: Audio sample rate in Hz.

    Returns:
        A `tfmm.models.MultimodalConfig`.

    Raises:
        ConfigError: Unknown preset name or modality.

    Example:
        >>> cfg = tfmm.models.get_preset("small", modalities=("image", "audio"))
        >>> cfg.modalities
        ('image', 'audio')
    """
    if name not in _PRESETS:
        raise ConfigError(f"Unknown preset {name!r}. Available presets: {list(_PRESETS)}")
    if isinstance(modalities, str):
        modalities = (modalities,)
    unknown = [m for m in modalities if m not in MODALITIES]
    if unknown or not modalities:
        raise ConfigError(
            f"`modalities` must be a non-empty subset of {list(MODALITIES)}. "
            f"Received: modalities={list(modalities)!r}"
        )
    spec = _PRESETS[name]
    branches = {}
    if "image" in modalities:
        branches["image"] = ImageBranchConfig(input_shape=tuple(image_shape), **spec["image"])
    if "text" in modalities:
        branches["text"] = TextBranchConfig(
            vocab_size=vocab_size, sequence_length=sequence_length, **spec["text"]
        )
    if "audio" in modalities:
        branches["audio"] = AudioBranchConfig(
            input_shape=(audio_samples, 1), sample_rate=sample_rate, **spec["audio"]
        )
    fusion_config = FusionConfig(mode=fusion, **spec["fusion"])
    return MultimodalConfig(
        num_classes=num_classes, fusion=fusion_config, task=task, name=f"tfmm_{name}", **branches
    )


def with_overrides(config, **changes):
    """Return a copy of a frozen config with some fields replaced (and re-validated).

    Args:
        config: Any tfmm config.
        **changes: Field values to replace.

    Returns:
        A new config of the same class.

    Example:
        >>> cfg = with_overrides(tfmm.models.get_preset("tiny"), num_classes=3)
    """
    return dataclasses.replace(config, **changes)
