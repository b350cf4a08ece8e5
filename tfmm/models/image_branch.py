"""The image branch: a ResNet v1.5 applied to tensors (no nested Model)."""

from tfmm._keras import keras
from tfmm.models.hub import apply_hub_encoder

__all__ = ["apply_image_branch"]

_LAYOUTS = {10: (1, 1, 1, 1), 18: (2, 2, 2, 2), 34: (3, 4, 6, 3), 50: (3, 4, 6, 3)}
_BN = dict(momentum=0.9, epsilon=1e-5)


def _conv_bn(x, filters, kernel, stride, name, relu=True):
    x = keras.layers.Conv2D(
        filters, kernel, strides=stride, padding="same", use_bias=False, name=f"{name}_conv"
    )(x)
    x = keras.layers.BatchNormalization(**_BN, name=f"{name}_bn")(x)
    if relu:
        x = keras.layers.ReLU(name=f"{name}_relu")(x)
    return x


def _shortcut(x, out_filters, stride, name):
    if stride == 1 and x.shape[-1] == out_filters:
        return x
    return _conv_bn(x, out_filters, 1, stride, f"{name}_proj", relu=False)


def _basic_block(x, filters, stride, name):
    shortcut = _shortcut(x, filters, stride, name)
    y = _conv_bn(x, filters, 3, stride, f"{name}_1")
    y = _conv_bn(y, filters, 3, 1, f"{name}_2", relu=False)
    y = keras.layers.Add(name=f"{name}_add")([shortcut, y])
    return keras.layers.ReLU(name=f"{name}_out")(y)


def _bottleneck_block(x, filters, stride, name):
    # v1.5: the stride sits on the 3x3 convolution, not the first 1x1.
    shortcut = _shortcut(x, 4 * filters, stride, name)
    y = _conv_bn(x, filters, 1, 1, f"{name}_1")
    y = _conv_bn(y, filters, 3, stride, f"{name}_2")
    y = _conv_bn(y, 4 * filters, 1, 1, f"{name}_3", relu=False)
    y = keras.layers.Add(name=f"{name}_add")([shortcut, y])
    return keras.layers.ReLU(name=f"{name}_out")(y)


def apply_image_branch(x, config, name="image"):
    """Apply the image branch described by `config` to the image tensor `x`.

    Layers are named `f"{name}_stage{s}_block{b}_{op}"`, e.g.
    `image_stage2_block1_1_conv`.

    Args:
        x: Float tensor `(batch, height, width, channels)`.
        config: A `tfmm.models.ImageBranchConfig`.
        name: Prefix of every layer name.

    Returns:
        A `(batch, features)` tensor.

    Raises:
        ConfigError: The hub encoder folder is not a SavedModel.

    Example:
        >>> inputs = tf_keras.Input((28, 28, 1))
        >>> cfg = tfmm.models.ImageBranchConfig(input_shape=(28, 28, 1), depth=10)
        >>> vector = tfmm.models.apply_image_branch(inputs, cfg)
    """
    if config.rescale is not None:
        x = keras.layers.Rescaling(config.rescale, name=f"{name}_rescale")(x)
    if config.hub_encoder:
        y = apply_hub_encoder(x, config.hub_encoder, trainable=config.hub_trainable, name=name)
    else:
        y = _resnet(x, config, name)
    if config.dropout:
        y = keras.layers.Dropout(config.dropout, name=f"{name}_dropout")(y)
    return y


def _resnet(x, config, name):
    stem = config.stem
    if stem == "auto":
        stem = "compact" if min(config.input_shape[:2]) < 64 else "standard"
    if stem == "standard":
        x = _conv_bn(x, config.base_width, 7, 2, f"{name}_stem")
        x = keras.layers.MaxPooling2D(3, strides=2, padding="same", name=f"{name}_stem_pool")(x)
    else:
        x = _conv_bn(x, config.base_width, 3, 1, f"{name}_stem")
    block = _bottleneck_block if config.depth == 50 else _basic_block
    for s, num_blocks in enumerate(_LAYOUTS[config.depth][: config.num_stages], start=1):
        filters = config.base_width * 2 ** (s - 1)
        for b in range(1, num_blocks + 1):
            stride = 2 if (b == 1 and s > 1) else 1
            x = block(x, filters, stride, f"{name}_stage{s}_block{b}")
    return keras.layers.GlobalAveragePooling2D(name=f"{name}_pool")(x)
