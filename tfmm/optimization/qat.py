"""Quantization-aware training of the whole multimodal model.

`quantize_model` fails on our models for two reasons that tfmm fixes at the
scheme level rather than per model:
- the default layout transform puts a `QuantizeLayer` after *every* input,
  and fake-quantizing the int32 token ids raises a TypeError: tfmm's scheme only
  quantizes float inputs;
- Conv1D, Embedding, BatchNormalization (after Conv1D), LSTM, attention ... are
  not in TFMOT's 8-bit registry: each layer is annotated by its tfmm policy.
"""

import dataclasses
from typing import Tuple, Union

from tfmm._args import require_model
from tfmm._keras import check_keras2, hub_custom_objects, keras, tfmot, unwrap
from tfmm.config import Config
from tfmm.optimization.folding import conv1d_batch_norm_pairs, fold_conv1d_batch_norms, layer_graph
from tfmm.optimization.policies import get_layer_policy
from tfmm.optimization.pruning import _copy_weights
from tfmm.optimization.scope import LayerScope, excluded_scope
from tfmm.optimization.quantize_configs import ReplicaAllValuesQuantizer, WeightsQuantizeConfig, quantize_custom_objects

__all__ = ["QuantizationConfig", "TfmmQuantizeScheme", "apply_qat", "quantization_plan", "qat_scope"]

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


@dataclasses.dataclass(frozen=True)
class QuantizationConfig(Config):
    """Quantization-aware training settings (a recipe's `quantize` stage).

    Args:
        preserve_sparsity: Keep pruned weights at zero during QAT (prune-preserving
            QAT). A recipe turns it on when a `prune` stage ran before.
        exclude: Layers left float during QAT: a `LayerScope` or a list of
            names, patterns and class names (see `LayerScope.parse`). An entry
            that matches no layer is an error.
        epochs: Fine-tuning epochs of this stage in a recipe.
        learning_rate: Learning rate of the QAT fine-tuning in a recipe (QAT
            starts from a trained model: a lower rate than training is usual).
        fold_batch_norm: Fold each BatchNormalization that follows a Conv1D into
            it before QAT (moving statistics, frozen while fine-tuning), as TFMOT
            does for Conv2D: the int8 file then has one fused convolution per
            audio block instead of CONV_2D + MUL + ADD + RELU (see
            `tfmm.optimization.folding`). A recipe turns it off after clustering
            (per-channel scaling would break the clusters).

    Example:
        >>> cfg = tfmm.optimization.QuantizationConfig(preserve_sparsity=True, epochs=1)
    """

    preserve_sparsity: bool = False
    exclude: Union[Tuple[str, ...], LayerScope] = ()
    epochs: int = 1
    learning_rate: float = 2e-4
    fold_batch_norm: bool = True

    def validate(self):
        self._check_bool("preserve_sparsity")
        self._check_bool("fold_batch_norm")
        LayerScope.parse(self.exclude)
        self._check_positive_int("epochs")
        if isinstance(self.learning_rate, bool) or not isinstance(self.learning_rate, (int, float)) or not (
            0 < self.learning_rate < 1
        ):
            self._fail("learning_rate", "must be a number in (0, 1)")


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
            from tensorflow_model_optimization.python.core.quantization.keras.collab_opts.prune_preserve import (
                prune_preserve_quantize_registry,
            )

            return prune_preserve_quantize_registry.Default8bitPrunePreserveQuantizeRegistry()
        return registry8.Default8BitQuantizeRegistry()


def quantization_plan(model, config=None):
    """Say, for every layer, how QAT will treat it and why.

    Args:
        model: A `tf_keras` functional model.
        config: Optional `QuantizationConfig` (its `exclude` patterns apply).

    Returns:
        A list of dicts `{"layer", "class_name", "mode", "reason"}` where mode is one of
        `default`, `weights`, `output`, `float`, `input`, or `folded` (a
        BatchNormalization after a Conv2D, folded into it at conversion, or after
        a Conv1D, folded into it before QAT when `config.fold_batch_norm`).

    Raises:
        ConfigError: An `exclude` entry matches no layer of `model`.

    Example:
        >>> plan = tfmm.optimization.quantization_plan(model)  # doctest: +SKIP
        >>> [p["layer"] for p in plan if p["mode"] == "float"]  # doctest: +SKIP
        ['text_embedding', 'text_lstm1']
    """
    require_model(model, "model")
    from tfmm.optimization.pruning import strip

    if isinstance(config, dict):
        config = QuantizationConfig.from_dict(config)
    config = config or QuantizationConfig()
    model = strip(model)  # as `apply_qat` sees it: a wrapped Conv2D would hide its BatchNormalization's fold
    excluded = excluded_scope(model, config)
    plan = []
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            dtype = layer.dtype if isinstance(layer.dtype, str) else layer.dtype.name
            float_input = dtype.startswith("float")
            plan.append(dict(
                layer=layer.name, class_name="InputLayer", mode="input" if float_input else "float",
                reason="" if float_input else f"{dtype} token ids are never fake-quantized",
            ))
            continue
        inner = unwrap(layer)
        if excluded.matches(inner):
            plan.append(dict(layer=inner.name, class_name=type(inner).__name__, mode="float",
                             reason="excluded by the QuantizationConfig"))
            continue
        policy = get_layer_policy(inner)
        plan.append(dict(layer=inner.name, class_name=type(inner).__name__, mode=policy.quantize,
                         reason=policy.reason))
    return _mark_folded_batch_norms(model, plan, fold_conv1d=config.fold_batch_norm)


def _mark_folded_batch_norms(model, plan, fold_conv1d):
    """Mark the BatchNormalizations that will be folded (plan mode `folded`).

    After a Conv1D (with `fold_conv1d`): folded by tfmm before QAT
    (`fold_conv1d_batch_norms`). Right after a plain Conv2D: left to TFMOT's fold transform.

    With a tfmm output config on the BatchNormalization, TFMOT's
    `Conv2DBatchNorm*Quantize` transforms step aside and the QAT model
    fake-quantizes the convolution's output: the converter can then no longer
    fold the BatchNormalization into the convolution, and the int8 file keeps it
    as a MUL + ADD pair per layer (measured on the `small` preset: 13 pairs,
    4 separate RELUs and 3 extra QUANTIZE ops; QAT int8 ran 1.8x slower than
    PTQ int8).
    """
    modes = {p["layer"]: p["mode"] for p in plan}
    conv1d = conv1d_batch_norm_pairs(model) if fold_conv1d else {}
    inputs, _ = layer_graph(model)
    for entry in plan:
        if entry["layer"] in conv1d and entry["mode"] == "output":
            entry.update(mode="folded", reason=f"folded into {conv1d[entry['layer']]} before QAT (frozen statistics)")
            continue
        sources = inputs.get(entry["layer"], [])
        if entry["class_name"] != "BatchNormalization" or entry["mode"] != "output" or len(sources) != 1:
            continue
        source = model.get_layer(sources[0])
        if (type(source).__name__ in ("Conv2D", "DepthwiseConv2D") and modes.get(source.name) == "default"
                and source.get_config().get("activation") == "linear"):
            entry.update(mode="folded", reason=f"folded into {source.name} (TFMOT's Conv2D + BatchNorm transform)")
    return plan


def qat_scope():
    """Return the `quantize_scope` needed to load or clone tfmm QAT models.

    It knows tfmm's quantize configs and quantizers, and TF Hub's `KerasLayer`.

    Returns:
        A context manager (TFMOT's `quantize_scope` with those custom objects).

    Example:
        >>> with tfmm.optimization.qat_scope():
        ...     model = tf_keras.models.load_model("qat.keras")  # doctest: +SKIP
    """
    # TFMOT rebuilds the model from its config: hub layers must be known too.
    return tfmot().quantization.keras.quantize_scope({**quantize_custom_objects(), **hub_custom_objects()})


def apply_qat(model, config=None):
    """Return a quantization-aware copy of `model` (8-bit, whole model).

    Each layer is annotated by its policy: TFMOT's default config, a tfmm
    `WeightsQuantizeConfig` (Conv1D, Embedding without mask, ...), output-only
    (BatchNormalization), or left float with a reason (`quantization_plan`).
    Pruning wrappers are stripped first. The copy starts from `model`'s weights;
    compile and fine-tune it, then export it. With `preserve_sparsity`, also pass
    `tfmm.optimization.SparsityMask()` to `fit`: layers QAT leaves float (the
    LSTM) are not masked by quantizers (`optimize` does this for you).

    Args:
        model: A trained `tf_keras` functional model.
        config: A `QuantizationConfig` (or dict); defaults to plain QAT.

    Returns:
        An uncompiled QAT `tf_keras.Model`.

    Raises:
        TypeError: `model` is a Keras 3 model.
        ConfigError: An `exclude` entry matches no layer of `model`.

    Example:
        >>> qat = tfmm.optimization.apply_qat(model)
        >>> tfmm.models.compile_model(qat, learning_rate=2e-4)  # doctest: +SKIP
    """
    require_model(model, "model")
    from tfmm.optimization.pruning import strip

    check_keras2(model)
    if isinstance(config, dict):
        config = QuantizationConfig.from_dict(config)
    config = config or QuantizationConfig()
    model = strip(model)
    modes = {p["layer"]: p["mode"] for p in quantization_plan(model, config)}
    folded = {bn: conv for bn, conv in conv1d_batch_norm_pairs(model).items() if modes.get(bn) == "folded"}
    model = fold_conv1d_batch_norms(model, folded)
    annotate = tfmot().quantization.keras.quantize_annotate_layer

    def clone(layer):
        fresh = layer.__class__.from_config(layer.get_config())
        mode = modes.get(layer.name, "float")
        if mode == "float" or layer.name in folded:  # a folded BatchNormalization is an identity now
            return fresh
        if mode in ("default", "folded"):  # TFMOT's registry / transforms configure these
            return annotate(fresh)
        policy = get_layer_policy(layer)
        qconfig = WeightsQuantizeConfig(
            policy.weight_attrs if mode == "weights" else (),
            quantize_output=policy.quantize_output if mode == "weights" else True,
            preserve_sparsity=config.preserve_sparsity,
        )
        return annotate(fresh, quantize_config=qconfig)

    with qat_scope():
        annotated = keras.models.clone_model(model, clone_function=clone)
        _copy_weights(model, annotated)
        return tfmot().quantization.keras.quantize_apply(
            annotated, scheme=TfmmQuantizeScheme(preserve_sparsity=config.preserve_sparsity)
        )
