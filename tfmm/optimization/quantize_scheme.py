"""`TfmmQuantizeScheme`: TFMOT's default 8-bit QAT scheme, with float-only input quantization.

`quantize_model` puts a `QuantizeLayer` after *every* input, and fake-quantizing
the int32 token ids raises a TypeError; this scheme's layout transform only
matches float inputs, with ranges kept equal across replicas.
"""

from tfmm.optimization.quantize_configs import ReplicaAllValuesQuantizer

__all__ = ["TfmmQuantizeScheme", "prune_preserve_registry"]

from tensorflow_model_optimization.python.core.quantization.keras import quantize_scheme  # noqa: E402
from tensorflow_model_optimization.python.core.quantization.keras.default_8bit import (  # noqa: E402
    default_8bit_quantize_layout_transform as layout8,
    default_8bit_quantize_registry as registry8,
    default_8bit_transforms as transforms8,
)
from tensorflow_model_optimization.python.core.quantization.keras.graph_transformations import (  # noqa: E402
    model_transformer,
    transforms,
)


class _FloatInputLayerQuantize(transforms8.InputLayerQuantize):
    """Quantize float inputs only (token ids stay int32), with replica-consistent ranges."""

    def pattern(self):
        return transforms.LayerPattern("InputLayer", config={"dtype": "float32"})

    def replacement(self, match_layer):
        node = super().replacement(match_layer)
        quantizer = ReplicaAllValuesQuantizer()
        node.layer["config"]["quantizer"] = {"class_name": type(quantizer).__name__, "config": quantizer.get_config()}
        return node


class _LayoutTransform(layout8.Default8BitQuantizeLayoutTransform):
    def apply(self, model, layer_quantize_map):
        # TFMOT's own list, with its InputLayerQuantize swapped for the float-only one.
        names = (
            "SeparableConv1DQuantize", "SeparableConvQuantize",
            "Conv2DReshapeBatchNormReLUQuantize", "Conv2DReshapeBatchNormActivationQuantize",
            "Conv2DBatchNormReLUQuantize", "Conv2DBatchNormActivationQuantize",
            "Conv2DReshapeBatchNormQuantize", "Conv2DBatchNormQuantize",
            "ConcatTransform6Inputs", "ConcatTransform5Inputs", "ConcatTransform4Inputs",
            "ConcatTransform3Inputs", "ConcatTransform", "DenseBatchNormQuantize",
            "DenseBatchNormReLUQuantize", "DenseBatchNormActivationQuantize",
            "LayerReLUQuantize", "LayerReluActivationQuantize",
        )
        steps = [_FloatInputLayerQuantize()] + [getattr(transforms8, n)() for n in names]
        return model_transformer.ModelTransformer(
            model, steps, set(layer_quantize_map.keys()), layer_quantize_map
        ).transform()


class TfmmQuantizeScheme(quantize_scheme.QuantizeScheme):
    """TFMOT's default 8-bit scheme, with float-only input quantization.

    Args:
        preserve_sparsity: Use TFMOT's prune-preserving registry for the layers
            its default registry handles (Conv2D, Dense).

    Example:
        >>> scheme = tfmm.optimization.TfmmQuantizeScheme(preserve_sparsity=True)
    """

    def __init__(self, preserve_sparsity=False):
        self.preserve_sparsity = preserve_sparsity

    def get_layout_transformer(self):
        return _LayoutTransform()

    def get_quantize_registry(self):
        if self.preserve_sparsity:
            return prune_preserve_registry()
        return registry8.Default8BitQuantizeRegistry()


def prune_preserve_registry():
    """TFMOT's prune-preserving registry, claiming only the layers it can configure.

    TFMOT's own says every layer without trainable weights is supported, then
    fails in `get_quantize_config` on those its default registry does not know
    (measured: `Attention` after pruning raised ValueError in `quantize_apply`).

    Returns:
        A `Default8bitPrunePreserveQuantizeRegistry` with a consistent `supports`.
    """
    from tensorflow_model_optimization.python.core.quantization.keras.collab_opts.prune_preserve import (
        prune_preserve_quantize_registry,
    )

    from tfmm.optimization.policies import _default_registry  # the one cached default registry

    class _Registry(prune_preserve_quantize_registry.Default8bitPrunePreserveQuantizeRegistry):
        def supports(self, layer):
            return super().supports(layer) and _default_registry().supports(layer)

    return _Registry()
