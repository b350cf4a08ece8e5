"""Optimization of the whole multimodal model: pruning and quantization-aware training.

One layer-policy registry (`register_layer_policy`) decides what is prunable and
how each layer is quantized, so Conv1D, Embedding, LSTM, attention and TF Hub
layers no longer stop TFMOT. `optimize` runs a `Recipe`; `apply_pruning`,
`apply_qat` and `strip` serve users who run their own `fit`.

Example:
    >>> result = tfmm.optimization.optimize(
    ...     model, {"prune": {"target_sparsity": 0.75}, "quantize": {}},
    ...     train_ds, validation_data=val_ds)  # doctest: +SKIP
"""

from tfmm.optimization.clustering import (
    ClusteringConfig,
    ClusterPreserve,
    apply_clustering,
    cluster_report,
    strip_clustering,
)
from tfmm.optimization.distribute import is_chief, make_strategy, strategy_scope
from tfmm.optimization.distillation import DistillationConfig, Distiller, distill
from tfmm.optimization.folding import conv1d_batch_norm_pairs, fold_conv1d_batch_norms
from tfmm.optimization.pipeline import OptimizationResult, optimize
from tfmm.optimization.policies import LayerPolicy, get_layer_policy, register_layer_policy
from tfmm.optimization.pruning import (
    PruningConfig,
    SparsityMask,
    apply_pruning,
    pruning_schedule_steps,
    sparsity_report,
    strip,
)
from tfmm.optimization.qat import (
    QuantizationConfig,
    TfmmQuantizeScheme,
    apply_qat,
    qat_scope,
    quantization_plan,
)
from tfmm.optimization.quantize_configs import (
    SparsityPreservingWeightsQuantizer,
    WeightsQuantizeConfig,
    quantize_custom_objects,
)
from tfmm.optimization.recipe import Recipe

__all__ = [
    "ClusterPreserve",
    "ClusteringConfig",
    "DistillationConfig",
    "Distiller",
    "LayerPolicy",
    "OptimizationResult",
    "PruningConfig",
    "QuantizationConfig",
    "Recipe",
    "SparsityMask",
    "SparsityPreservingWeightsQuantizer",
    "TfmmQuantizeScheme",
    "WeightsQuantizeConfig",
    "apply_clustering",
    "apply_pruning",
    "apply_qat",
    "cluster_report",
    "conv1d_batch_norm_pairs",
    "distill",
    "fold_conv1d_batch_norms",
    "get_layer_policy",
    "is_chief",
    "make_strategy",
    "optimize",
    "pruning_schedule_steps",
    "qat_scope",
    "quantization_plan",
    "quantize_custom_objects",
    "register_layer_policy",
    "sparsity_report",
    "strategy_scope",
    "strip",
    "strip_clustering",
]
