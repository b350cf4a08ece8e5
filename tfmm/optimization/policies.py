"""The one layer-policy registry: what is prunable and how each layer is quantized.

TFMOT keeps this knowledge in three registries (pruning, quantization,
clustering) that disagree on our layers; tfmm writes it once per layer class.
A policy is a `LayerPolicy`, or a function `layer -> LayerPolicy` when the answer
depends on the layer's settings (an Embedding with a padding mask differs from
one without). Lookup walks the layer's class hierarchy, most specific first.

Example:
    >>> from tfmm.optimization import LayerPolicy, register_layer_policy
    >>> register_layer_policy(MyConv, LayerPolicy(prunable=("kernel",), quantize="weights",
    ...                                           weight_attrs=("kernel",)))  # doctest: +SKIP
"""

import dataclasses
import fnmatch
import functools
from typing import Tuple

from tfmm._keras import hub_custom_objects, keras, tfmot
from tfmm.errors import ConfigError

__all__ = ["LayerPolicy", "register_layer_policy", "get_layer_policy", "QUANTIZE_MODES"]

# default: TFMOT's 8-bit registry; weights: tfmm WeightsQuantizeConfig on
# `weight_attrs` (+ output); output: only the output; float: left float in QAT
# (the TFLite converter still calibrates it for int8 from representative data).
QUANTIZE_MODES = ("default", "weights", "output", "float")


@dataclasses.dataclass(frozen=True)
class LayerPolicy:
    """How tfmm treats one kind of layer.

    Args:
        prunable: Names of the weights magnitude pruning may zero (empty: never
            pruned).
        quantize: One of `QUANTIZE_MODES`: `"default"` (TFMOT's 8-bit config),
            `"weights"` (fake-quantize `weight_attrs` and, if `quantize_output`,
            the output), `"output"` (only the output) or `"float"`.
        weight_attrs: Weights fake-quantized in `"weights"` mode.
        quantize_output: Whether `"weights"` mode quantizes the output too.
        reason: Why the layer is left float or treated specially: shown in reports.
        clusterable: Names of the weights clustering may share.

    Example:
        >>> LayerPolicy(prunable=("kernel",), quantize="default")
        LayerPolicy(prunable=('kernel',), quantize='default', weight_attrs=(), quantize_output=True, reason='', clusterable=())
    """

    prunable: Tuple[str, ...] = ()
    quantize: str = "default"
    weight_attrs: Tuple[str, ...] = ()
    quantize_output: bool = True
    reason: str = ""
    clusterable: Tuple[str, ...] = ()

    def __post_init__(self):
        if self.quantize not in QUANTIZE_MODES:
            raise ConfigError(
                f"`quantize` must be one of {list(QUANTIZE_MODES)}. Received: quantize={self.quantize!r}"
            )
        if self.quantize == "weights" and not self.weight_attrs:
            raise ConfigError("`quantize='weights'` needs `weight_attrs`, e.g. ('kernel',).")


_REGISTRY = {}


def register_layer_policy(layer_class, policy):
    """Register (or replace) the policy of a layer class.

    Args:
        layer_class: A `tf_keras.layers.Layer` subclass.
        policy: A `LayerPolicy`, or a function taking the layer and returning one.

    Returns:
        The previous policy of that class, or None.

    Raises:
        ConfigError: `layer_class` is not a Keras layer class or `policy` is invalid.

    Example:
        >>> old = tfmm.optimization.register_layer_policy(
        ...     tf_keras.layers.Dense, tfmm.optimization.LayerPolicy(quantize="float"))
    """
    if not (isinstance(layer_class, type) and issubclass(layer_class, keras.layers.Layer)):
        raise ConfigError(
            f"register_layer_policy expects a tf_keras layer class. Received: {layer_class!r}"
        )
    if not (isinstance(policy, LayerPolicy) or callable(policy)):
        raise ConfigError(f"`policy` must be a LayerPolicy or a function. Received: {policy!r}")
    previous = _REGISTRY.get(layer_class)
    _REGISTRY[layer_class] = policy
    return previous


@functools.lru_cache(maxsize=1)
def _default_registry():
    from tensorflow_model_optimization.python.core.quantization.keras.default_8bit import (
        default_8bit_quantize_registry,
    )

    return default_8bit_quantize_registry.Default8BitQuantizeRegistry()


def get_layer_policy(layer):
    """Return the `LayerPolicy` that applies to `layer`.

    Layers without a registered policy use TFMOT's 8-bit config when TFMOT
    supports them, and are otherwise left float with a reason saying how to
    register one.

    Args:
        layer: A `tf_keras` layer.

    Returns:
        A `LayerPolicy`.

    Example:
        >>> tfmm.optimization.get_layer_policy(tf_keras.layers.Conv1D(4, 3)).quantize
        'weights'
    """
    for cls in type(layer).__mro__:
        if cls in _REGISTRY:
            policy = _REGISTRY[cls]
            return policy if isinstance(policy, LayerPolicy) else policy(layer)
    if _default_registry().supports(layer):
        return LayerPolicy(quantize="default")
    return LayerPolicy(
        quantize="float",
        reason=(
            f"no tfmm policy for {type(layer).__name__} and TFMOT's 8-bit registry does not "
            "support it; call tfmm.optimization.register_layer_policy to quantize it"
        ),
    )


def find_weights(layer, attr):
    """Every variable named `attr` (e.g. `kernel`) of a plain or wrapped layer.

    Searched by variable name on the outermost layer: QAT wrappers track the
    kernel themselves and replace the inner `kernel` attribute with a quantized
    tensor. A `Bidirectional` layer has two of each (forward and backward).
    """
    return [w for w in layer.weights if w.name.split("/")[-1].split(":")[0] == attr]


def find_weight(layer, attr):
    """The first variable named `attr` of a plain or wrapped layer, or None (see `find_weights`)."""
    found = find_weights(layer, attr)
    return found[0] if found else None


def layer_setting(layer_name, per_layer, per_branch, default):
    """The value for one layer: first matching name pattern, then its branch, then `default`.

    Branches are name prefixes (`image_...`, `text_...`); patterns are globs.
    """
    for pattern, value in per_layer.items():
        if fnmatch.fnmatchcase(layer_name, pattern):
            return value
    return per_branch.get(layer_name.split("_")[0], default)


def _embedding_policy(layer):
    if layer.mask_zero:
        return LayerPolicy(
            quantize="float", clusterable=("embeddings",),
            reason=(
                "Embedding with mask_zero: TFMOT wrappers drop Keras masks, which would change "
                "the LSTM's result; left unwrapped (the converter still quantizes it; clustering "
                "works in place) and not pruned"
            ),
        )
    return LayerPolicy(
        prunable=("embeddings",),
        quantize="weights",
        weight_attrs=("embeddings",),
        clusterable=("embeddings",),
    )


def _time_distributed_policy(layer):
    # The wrapped layer's weights are pruned and clustered under their own names; QAT
    # has no TFMOT config for the wrapper, so the converter calibrates it.
    inner = get_layer_policy(layer.layer)
    return LayerPolicy(
        prunable=inner.prunable, quantize="float", clusterable=inner.clusterable,
        reason=f"TimeDistributed({type(layer.layer).__name__}) has no TFMOT config; left float during QAT and "
               "calibrated by the converter (the wrapped weights are pruned and clustered)")


def _conv1d_policy(layer):
    # A linear Conv1D is followed by BatchNormalization / ReLU, which quantize the output
    # (and fold into it); one with its own activation must quantize its output itself, or
    # the QAT model and the int8 file disagree (measured: 0.85 agreement with ReLU inside).
    linear = getattr(layer.activation, "__name__", "") == "linear"
    return LayerPolicy(prunable=("kernel",), quantize="weights", weight_attrs=("kernel",),
                       quantize_output=not linear, clusterable=("kernel",))


_LSTM_REASON = (
    "LSTM left float during QAT and calibrated by the converter: measured against weights-only "
    "QAT of its kernels (benchmarks/lstm_qat.py), it gave the better verified int8 accuracy "
    "(92.7% vs 91.9%) and keeps the Keras mask that TFMOT's wrapper drops"
)


def _register_defaults():
    layers = keras.layers
    register_layer_policy(layers.Conv2D, LayerPolicy(prunable=("kernel",), clusterable=("kernel",)))
    register_layer_policy(layers.Dense, LayerPolicy(prunable=("kernel",), clusterable=("kernel",)))
    register_layer_policy(layers.Conv1D, _conv1d_policy)
    register_layer_policy(layers.Embedding, _embedding_policy)
    register_layer_policy(
        layers.LSTM, LayerPolicy(prunable=("kernel", "recurrent_kernel"), quantize="float", reason=_LSTM_REASON,
                                 clusterable=("kernel", "recurrent_kernel"))
    )
    for rnn in (layers.GRU, layers.SimpleRNN):
        register_layer_policy(rnn, LayerPolicy(
            prunable=("kernel", "recurrent_kernel"), quantize="float", clusterable=("kernel", "recurrent_kernel"),
            reason=f"{rnn.__name__} left float during QAT (no TFMOT config) and calibrated by the converter, "
                   "like the LSTM; its kernels are pruned"))
    register_layer_policy(layers.Bidirectional, LayerPolicy(
        prunable=("kernel", "recurrent_kernel"), quantize="float", clusterable=("kernel", "recurrent_kernel"),
        reason="Bidirectional RNN left float during QAT (no TFMOT config) and calibrated by the converter; "
               "the kernels of both directions are pruned and clustered"))
    register_layer_policy(layers.TimeDistributed, _time_distributed_policy)
    register_layer_policy(layers.DepthwiseConv2D, LayerPolicy(
        prunable=("depthwise_kernel",),
        reason="depthwise kernels are not clustered (TFMOT: big unrecoverable accuracy loss)"))
    register_layer_policy(layers.SeparableConv2D, LayerPolicy(
        prunable=("depthwise_kernel", "pointwise_kernel"), quantize="float", clusterable=("pointwise_kernel",),
        reason="SeparableConv2D has no TFMOT 8-bit config; left float during QAT and calibrated by the "
               "converter (both kernels pruned, the pointwise one clustered)"))
    register_layer_policy(layers.BatchNormalization, LayerPolicy(quantize="output"))
    register_layer_policy(
        layers.MultiHeadAttention,
        LayerPolicy(
            quantize="float",
            reason="MultiHeadAttention has no TFMOT config; the converter quantizes its ops from calibration",
        ),
    )
    register_layer_policy(layers.Attention, LayerPolicy(
        quantize="float", reason="Attention has no weights and no TFMOT config (a scaled dot product and "
                                 "softmax); the converter quantizes its ops from calibration"))
    register_layer_policy(
        layers.LayerNormalization,
        LayerPolicy(quantize="float", reason="LayerNormalization has no TFMOT config"),
    )
    register_layer_policy(
        layers.Rescaling, LayerPolicy(quantize="float", reason="input rescaling: a constant multiply")
    )


def _register_optional():
    from tfmm.models import LogMelSpectrogram

    register_layer_policy(
        LogMelSpectrogram,
        LayerPolicy(quantize="float", reason="log-mel front end: signal processing without weights"),
    )
    hub_layer = hub_custom_objects().get("KerasLayer")
    if hub_layer is None:  # pragma: no cover - tensorflow-hub is a dependency
        return
    register_layer_policy(
        hub_layer,
        LayerPolicy(
            quantize="float",
            reason="TF Hub encoder: an opaque SavedModel that TFMOT cannot wrap; left float, not pruned",
        ),
    )


tfmot()  # TFMOT must be importable before policies are used
_register_defaults()
_register_optional()
