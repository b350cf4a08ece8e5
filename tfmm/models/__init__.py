"""Multimodal model builders: flat `tf_keras` functional models.

Example:
    >>> import tfmm
    >>> config = tfmm.models.get_preset("small")
    >>> model = tfmm.models.build_multimodal_model(config)
"""

from tfmm.models.audio_branch import apply_audio_branch
from tfmm.artifacts import load_model  # the one loader, safe by default
from tfmm.models.builder import build_multimodal_model, compile_model, model_inputs
from tfmm.models.flatten import flatten_model, nested_models
from tfmm.models.configs import (
    AudioBranchConfig,
    FusionConfig,
    ImageBranchConfig,
    MultimodalConfig,
    TextBranchConfig,
)
from tfmm.models.fusion import apply_fusion
from tfmm.models.heads import apply_head, default_loss, default_metrics
from tfmm.models.image_branch import apply_image_branch
from tfmm.models.layers import LogMelSpectrogram
from tfmm.models.presets import get_preset, list_presets, student_config
from tfmm.models.text_branch import apply_text_branch

__all__ = [
    "AudioBranchConfig",
    "FusionConfig",
    "ImageBranchConfig",
    "LogMelSpectrogram",
    "MultimodalConfig",
    "TextBranchConfig",
    "apply_audio_branch",
    "apply_fusion",
    "apply_head",
    "apply_image_branch",
    "apply_text_branch",
    "build_multimodal_model",
    "compile_model",
    "default_loss",
    "default_metrics",
    "get_preset",
    "list_presets",
    "student_config",
    "flatten_model",
    "load_model",
    "model_inputs",
    "nested_models",
]
