"""Quantization-aware training of the whole multimodal model.

`quantize_model` fails on our models for two reasons that tfmm fixes at the
scheme level rather than per model:
- the default layout transform puts a `QuantizeLayer` after *every* input,
  and fake-quantizing the int32 token ids raises a TypeError: tfmm's scheme only
  quantizes float inputs;
- Conv1D, Embedding, BatchNormalization (after Conv1D), LSTM, attention ... are
  not in TFMOT's 8-bit registry: each layer is annotated by its tfmm policy.

Length: the config, the plan (policy, folding, the float-reader and mask rules that
decide each layer's mode, all measured against verified int8 files) and `apply_qat`.
"""

import dataclasses
from typing import Tuple, Union

from tfmm._args import require_model
from tfmm._keras import check_keras2, hub_custom_objects, keras, tfmot, unwrap
from tfmm.config import Config
from tfmm.models.flatten import flatten_model
from tfmm.optimization.folding import conv1d_batch_norm_pairs, fold_conv1d_batch_norms, layer_graph
from tfmm.optimization.policies import _default_registry as default_registry, get_layer_policy
from tfmm.optimization.pruning import _copy_weights
from tfmm.optimization.scope import LayerScope, excluded_scope
from tfmm.optimization.quantize_configs import WeightsQuantizeConfig, quantize_custom_objects
from tfmm.optimization.quantize_scheme import TfmmQuantizeScheme, prune_preserve_registry

__all__ = ["QuantizationConfig", "TfmmQuantizeScheme", "apply_qat", "quantization_plan", "qat_scope"]

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


def quantization_plan(model, config=None):
    """Say, for every layer, how QAT will treat it and why.

    Args:
        model: A `tf_keras` functional model.
        config: Optional `QuantizationConfig` (its `exclude` patterns apply).

    Returns:
        A list of dicts `{"layer", "class_name", "mode", "reason"}` where mode is one of
        `default`, `weights`, `output`, `float`, `input`, or `folded` (a
        BatchNormalization after a Conv2D, folded into it at conversion, or after
        a Conv1D, folded into it before QAT when `config.fold_batch_norm`). A
        layer whose output feeds a float layer keeps that output float
        (`weights` mode with `"quantize_output": False` and its `"weight_attrs"`,
        or `float` without weights): int8 files were wrong otherwise.

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
    model = flatten_model(strip(model))  # as `apply_qat` sees it: a wrapped Conv2D would hide its BN's fold
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
        if policy.quantize != "float" and _reads_a_mask(inner):
            plan.append(dict(layer=inner.name, class_name=type(inner).__name__, mode="float",
                             reason="reads a Keras mask (a masked Embedding before it), which TFMOT's wrapper "
                                    "would pass to a call() that cannot take it and drop for the layers after"))
            continue
        plan.append(dict(layer=inner.name, class_name=type(inner).__name__, mode=policy.quantize,
                         reason=policy.reason))
    return _keep_float_inputs_float(model, _mark_folded_batch_norms(model, plan, fold_conv1d=config.fold_batch_norm))


def _reads_a_mask(layer):
    """Whether `layer` is called on a tensor that carries a Keras mask (e.g. after `Embedding(mask_zero=True)`)."""
    for node in layer.inbound_nodes:
        for tensor in node.keras_inputs:
            if getattr(tensor, "_keras_mask", None) is not None:
                return True
    return False


def _keep_float_inputs_float(model, plan):
    """Leave float the output of every layer that feeds a layer left float.

    Measured: a GRU left float behind an Embedding whose output QAT fake-quantized
    gave an int8 file at chance (0.41 agreement with the Keras model; 0.99 with the
    Embedding's output float), and a `MultiHeadAttention` behind a quantized
    Reshape did not convert at all (its FULLY_CONNECTED got an int8 input with
    float weights). An Embedding read by a float GRU *and* a quantized Conv1D
    still gave 0.88, so one float reader is enough; the quantized readers get
    their input range from calibration. Until nothing changes: a layer with weights keeps its
    fake-quantized weights but not its output (mode `weights`, `quantize_output`
    False); a layer without weights is left float.
    """
    inputs, _ = layer_graph(model)
    readers = {}
    for name, sources in inputs.items():
        for source in sources:
            readers.setdefault(source, []).append(name)
    entries = {p["layer"]: p for p in plan}
    changed = True
    while changed:
        changed = False
        for entry in plan:
            users = readers.get(entry["layer"], [])
            if entry["mode"] in ("float", "input", "folded") or entry.get("quantize_output") is False or not users:
                continue
            floats = [user for user in users if entries.get(user, {}).get("mode") == "float"]
            if not floats:
                continue
            attrs = _weight_attrs(model.get_layer(entry["layer"]), entry["mode"])
            why = f"its output feeds layers left float ({', '.join(floats[:3])})"
            if attrs:
                entry.update(mode="weights", weight_attrs=list(attrs), quantize_output=False,
                             reason=f"weights fake-quantized, output left float: {why}")
            else:
                entry.update(mode="float", reason=f"left float: {why}")
            changed = True
    return plan


def _weight_attrs(layer, mode):
    """The weights QAT fake-quantizes in `layer` (TFMOT's choice for `default` layers)."""
    inner = unwrap(layer)
    if mode == "weights":
        return get_layer_policy(inner).weight_attrs
    if mode != "default" or not inner.weights:
        return ()
    registry = default_registry()
    if not registry.supports(inner):
        return ()
    return tuple(getattr(registry.get_quantize_config(inner), "weight_attrs", ()))


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
    model = flatten_model(strip(model))
    entries = {p["layer"]: p for p in quantization_plan(model, config)}
    modes = {name: p["mode"] for name, p in entries.items()}
    folded = {bn: conv for bn, conv in conv1d_batch_norm_pairs(model).items() if modes.get(bn) == "folded"}
    model = fold_conv1d_batch_norms(model, folded)
    annotate = tfmot().quantization.keras.quantize_annotate_layer
    preserving = prune_preserve_registry()

    def clone(layer):
        fresh = layer.__class__.from_config(layer.get_config())
        mode = modes.get(layer.name, "float")
        if mode == "float" or layer.name in folded:  # a folded BatchNormalization is an identity now
            return fresh
        policy, entry = get_layer_policy(layer), dict(entries[layer.name])
        if mode == "default" and config.preserve_sparsity and layer.weights and not preserving.supports(layer):
            # TFMOT configures it, but its prune-preserving registry does not (Conv2DTranspose, ...):
            # tfmm's sparsity-preserving weights config, on the weights TFMOT would quantize.
            mode = "weights"
            entry.update(weight_attrs=_weight_attrs(layer, "default"), quantize_output=True)
        if mode in ("default", "folded"):  # TFMOT's registry / transforms configure these
            return annotate(fresh)
        qconfig = WeightsQuantizeConfig(
            tuple(entry.get("weight_attrs") or policy.weight_attrs) if mode == "weights" else (),
            quantize_output=entry.get("quantize_output", policy.quantize_output) if mode == "weights" else True,
            preserve_sparsity=config.preserve_sparsity,
        )
        return annotate(fresh, quantize_config=qconfig)

    with qat_scope():
        annotated = keras.models.clone_model(model, clone_function=clone)
        _copy_weights(model, annotated)
        return tfmot().quantization.keras.quantize_apply(
            annotated, scheme=TfmmQuantizeScheme(preserve_sparsity=config.preserve_sparsity)
        )
