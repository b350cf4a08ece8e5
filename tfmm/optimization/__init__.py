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

from tfmm.optimization.channels import ChannelPruningConfig, prune_channels
from tfmm.optimization.clustering import (
    ClusteringConfig,
    ClusterPreserve,
    apply_clustering,
    cluster_report,
    strip_clustering,
)
from tfmm.optimization.distribute import is_chief, make_strategy
from tfmm.optimization.distillation import DistillationConfig, distill
from tfmm.optimization.lowrank import LowRankConfig, factorize_low_rank
from tfmm.optimization.pipeline import OptimizationResult, optimize
from tfmm.optimization.policies import LayerPolicy, get_layer_policy, register_layer_policy
from tfmm.optimization.pruning import PruningConfig, SparsityMask, apply_pruning, sparsity_report, strip
from tfmm.optimization.qat import QuantizationConfig, apply_qat, qat_scope, quantization_plan
from tfmm.optimization.recipe import Recipe
from tfmm.optimization.scope import LayerScope
from tfmm.optimization.stages import Stage, StageReport

# What users call. Building blocks (the quantize scheme and configs, BatchNorm
# folding, the schedule arithmetic, the Distiller model) stay in their modules.
__all__ = [
    "ChannelPruningConfig",
    "ClusterPreserve",
    "ClusteringConfig",
    "DistillationConfig",
    "LayerPolicy",
    "LayerScope",
    "LowRankConfig",
    "OptimizationResult",
    "PruningConfig",
    "QuantizationConfig",
    "Recipe",
    "SparsityMask",
    "Stage",
    "StageReport",
    "apply_clustering",
    "apply_pruning",
    "apply_qat",
    "cluster_report",
    "distill",
    "factorize_low_rank",
    "get_layer_policy",
    "is_chief",
    "make_strategy",
    "optimize",
    "prune_channels",
    "qat_scope",
    "quantization_plan",
    "register_layer_policy",
    "sparsity_report",
    "strip",
    "strip_clustering",
]
