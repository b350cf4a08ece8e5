"""`build_multimodal_model`: config -> flat `tf_keras` functional model."""

from tfmm._keras import check_keras2, keras
from tfmm.errors import ConfigError
from tfmm.models.audio_branch import apply_audio_branch
from tfmm.models.configs import MultimodalConfig
from tfmm.models.fusion import apply_fusion
from tfmm.models.heads import apply_head, default_loss, default_metrics
from tfmm.models.image_branch import apply_image_branch
from tfmm.models.text_branch import apply_text_branch

__all__ = ["build_multimodal_model", "compile_model", "model_inputs"]

_BRANCHES = {
    "image": apply_image_branch,
    "text": apply_text_branch,
    "audio": apply_audio_branch,
}


def model_inputs(config):
    """Return `{modality: tf_keras.Input}` for the modalities of `config`.

    Image and audio inputs are float32; text token ids are int32.

    Args:
        config: A `tfmm.models.MultimodalConfig`.

    Returns:
        An ordered dict of named Keras inputs.

    Example:
        >>> inputs = tfmm.models.model_inputs(tfmm.models.get_preset("tiny"))
    """
    inputs = {}
    if config.image is not None:
        inputs["image"] = keras.Input(config.image.input_shape, dtype="float32", name="image")
    if config.text is not None:
        inputs["text"] = keras.Input((config.text.sequence_length,), dtype="int32", name="text")
    if config.audio is not None:
        inputs["audio"] = keras.Input(config.audio.input_shape, dtype="float32", name="audio")
    return inputs


def build_multimodal_model(config):
    """Build a flat multimodal functional model from a config.

    The model takes a dict with exactly the keys of the present modalities
    (`image`, `text`, `audio`) and returns class probabilities. There is no
    Model nested inside it, so TFMOT can wrap and quantize every layer.

    Args:
        config: A `tfmm.models.MultimodalConfig` (or a dict for `from_dict`).

    Returns:
        An uncompiled `tf_keras.Model`.

    Raises:
        ConfigError: The config is invalid, or a hub encoder folder is missing.

    Example:
        >>> cfg = tfmm.models.get_preset("tiny")
        >>> model = tfmm.models.build_multimodal_model(cfg)
        >>> sorted(model.input_names)
        ['audio', 'image', 'text']
    """
    if isinstance(config, dict):
        config = MultimodalConfig.from_dict(config)
    if not isinstance(config, MultimodalConfig):
        raise ConfigError(
            "build_multimodal_model expects a MultimodalConfig or a dict. Received: "
            f"{type(config).__name__}"
        )
    inputs = model_inputs(config)
    vectors = {m: _BRANCHES[m](x, getattr(config, m), name=m) for m, x in inputs.items()}
    fused = apply_fusion(vectors, config.fusion, name="fusion")
    outputs = apply_head(
        fused,
        num_classes=config.num_classes,
        task=config.task,
        hidden_units=config.head_hidden_units,
        dropout=config.head_dropout,
        name="head",
    )
    return keras.Model(inputs=inputs, outputs=outputs, name=config.name)


def compile_model(
    model, *, task="multiclass", optimizer="adam", learning_rate=1e-3, run_eagerly=False
):
    """Compile `model` with the loss and accuracy metric that match its head.

    Args:
        model: A `tf_keras.Model` from `build_multimodal_model`.
        task: `"multiclass"` or `"multilabel"`.
        optimizer: `"adam"` or a `tf_keras` optimizer instance.
        learning_rate: Used when `optimizer` is `"adam"`.
        run_eagerly: Skip graph tracing (faster for tiny models and debugging).

    Returns:
        The same model, compiled.

    Raises:
        TypeError: `model` is a Keras 3 model.

    Example:
        >>> model = tfmm.models.compile_model(model)  # doctest: +SKIP
    """
    check_keras2(model)
    if optimizer == "adam":
        optimizer = keras.optimizers.Adam(learning_rate)
    model.compile(
        optimizer=optimizer,
        loss=default_loss(task),
        metrics=default_metrics(task),
        run_eagerly=run_eagerly,
    )
    return model
