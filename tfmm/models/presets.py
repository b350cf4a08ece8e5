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

__all__ = ["get_preset", "list_presets", "student_config", "DEFAULT_SHAPES"]

DEFAULT_SHAPES = {
    "image_shape": (28, 28, 1),
    "vocab_size": 64,
    "sequence_length": 16,
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


_SMALLER_DEPTH = {50: 34, 34: 18, 18: 10, 10: 10}


def _scale(value, width, minimum=4):
    return max(minimum, int(round(value * width)))


def student_config(teacher, *, width=0.5, shallower=True, per_branch=None, name=None):
    """Derive a smaller student config from a teacher config, for distillation.

    Widths (ResNet base width, embedding and LSTM units, Conv1D filters, fusion
    projection) are multiplied by `width`; `shallower` also steps the ResNet
    depth down (50 -> 34 -> 18 -> 10). Input shapes, vocabulary, classes and
    fusion mode stay the teacher's so both models read the same data.

    Args:
        teacher: The teacher's `MultimodalConfig`.
        width: Width multiplier in (0, 1].
        shallower: Also use a shallower ResNet.
        per_branch: Optional `{"image": w, "text": w, "audio": w, "fusion": w}`
            overriding `width` per branch.
        name: Model name (default: teacher name + `_student`).

    Returns:
        A `MultimodalConfig`.

    Raises:
        ConfigError: `width` outside (0, 1] or an unknown branch in `per_branch`.

    Example:
        >>> teacher = tfmm.models.get_preset("small")
        >>> tfmm.models.student_config(teacher, width=0.5).text.lstm_units
        24
    """
    per_branch = dict(per_branch or {})
    unknown = sorted(set(per_branch) - {"image", "text", "audio", "fusion"})
    if unknown:
        raise ConfigError(f"`per_branch` keys must be among image, text, audio, fusion. Received: {unknown}")
    for key, value in [("width", width), *per_branch.items()]:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 1:
            raise ConfigError(f"`{key}` must be a width multiplier in (0, 1]. Received: {value!r}")
    w = {b: per_branch.get(b, width) for b in ("image", "text", "audio", "fusion")}
    changes = {"name": name or f"{teacher.name}_student"}
    if teacher.image is not None:
        image = dataclasses.replace(teacher.image, base_width=_scale(teacher.image.base_width, w["image"]))
        if shallower:
            image = dataclasses.replace(image, depth=_SMALLER_DEPTH[image.depth])
        changes["image"] = image
    if teacher.text is not None and not teacher.text.hub_encoder:
        changes["text"] = dataclasses.replace(
            teacher.text, embedding_dim=_scale(teacher.text.embedding_dim, w["text"]),
            lstm_units=_scale(teacher.text.lstm_units, w["text"]))
    if teacher.audio is not None and not teacher.audio.hub_encoder:
        changes["audio"] = dataclasses.replace(
            teacher.audio, filters=tuple(_scale(f, w["audio"]) for f in teacher.audio.filters))
    heads = teacher.fusion.num_heads
    projection = _scale(teacher.fusion.projection_dim, w["fusion"], minimum=8)
    changes["fusion"] = dataclasses.replace(
        teacher.fusion, projection_dim=max(heads, projection // heads * heads),
        hidden_units=tuple(_scale(u, w["fusion"]) for u in teacher.fusion.hidden_units))
    return dataclasses.replace(teacher, **changes)
