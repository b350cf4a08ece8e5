"""Weight clustering on the whole multimodal model, and keeping the clusters through QAT.

`apply_clustering` wraps each layer whose policy names clusterable weights with
TFMOT's `cluster_weights` (k-means on the kernel; `preserve_sparsity` keeps pruned
zeros), one layer at a time. Layers a wrapper would break (the masked Embedding:
TFMOT's wrapper drops its mask) or that TFMOT cannot wrap (TimeDistributed) are
clustered in place by `kmeans_1d` and frozen until `strip_clustering`; layers
without clusterable weights (hub encoders) stay as they are, listed with a reason.

Cluster preservation during QAT (CQAT / PCQAT) is done by projection:
`ClusterPreserve` records each clustered kernel's cluster of every weight when
QAT starts and, after each training batch, sets every weight to its cluster's
mean (zeros stay zero). The kernels then never have more distinct values than
clusters, whichever quantize config wraps the layer (TFMOT's, or tfmm's for
Conv1D / Embedding, which TFMOT's cluster-preserving scheme does not cover).
"""

import dataclasses
from typing import Dict, Tuple, Union

import numpy as np
import tensorflow as tf

from tfmm._args import require_model
from tfmm._keras import check_keras2, keras, tfmot, unwrap
from tfmm.config import Config
from tfmm.artifacts import copy_model
from tfmm.errors import ConfigError
from tfmm.models.flatten import flatten_model
from tfmm.optimization.policies import find_weights, get_layer_policy, layer_setting
from tfmm.optimization.scope import LayerScope, excluded_scope

__all__ = ["ClusteringConfig", "ClusterPreserve", "apply_clustering", "cluster_report", "kmeans_1d", "strip_clustering"]

_INITS = ("kmeans++", "linear", "density", "random")
_NORMALIZATION = (keras.layers.BatchNormalization, keras.layers.LayerNormalization)


@dataclasses.dataclass(frozen=True)
class ClusteringConfig(Config):
    """Weight clustering settings (a recipe's `cluster` stage).

    Args:
        number_of_clusters: Distinct values per clustered weight tensor (>= 2).
        centroid_init: `kmeans++`, `linear`, `density` or `random`.
        per_branch: Cluster counts by branch (`image`, `text`, `audio`, `fusion`, `head`).
        per_layer: Cluster counts by layer-name glob pattern.
        exclude: Layers left unclustered: a `LayerScope` or a list of names,
            patterns and class names (see `LayerScope.parse`).
        preserve_sparsity: Keep zero weights at zero (after pruning); a recipe
            turns it on when a `prune` stage ran before.
        epochs: Fine-tuning epochs of this stage.
        learning_rate: Learning rate of the clustering fine-tune.

    Raises:
        ConfigError: A bad value.

    Example:
        >>> cfg = tfmm.optimization.ClusteringConfig(number_of_clusters=16, per_branch={"text": 8})
    """

    number_of_clusters: int = 16
    centroid_init: str = "kmeans++"
    per_branch: Dict[str, int] = dataclasses.field(default_factory=dict)
    per_layer: Dict[str, int] = dataclasses.field(default_factory=dict)
    exclude: Union[Tuple[str, ...], LayerScope] = ()
    preserve_sparsity: bool = False
    epochs: int = 1
    learning_rate: float = 1e-4

    def validate(self):
        for name, value in [("number_of_clusters", self.number_of_clusters),
                            *((f"per_branch[{k!r}]", v) for k, v in self.per_branch.items()),
                            *((f"per_layer[{k!r}]", v) for k, v in self.per_layer.items())]:
            if isinstance(value, bool) or not isinstance(value, int) or value < 2:
                raise ConfigError(f"`{name}` must be an integer >= 2. Received: {value!r}")
        self._check_choice("centroid_init", _INITS)
        LayerScope.parse(self.exclude)
        self._check_bool("preserve_sparsity")
        self._check_positive_int("epochs")
        if isinstance(self.learning_rate, bool) or not isinstance(self.learning_rate, (int, float)) or not (
            0 < self.learning_rate < 1
        ):
            self._fail("learning_rate", "must be a number in (0, 1)")


def _init(name):
    init = tfmot().clustering.keras.CentroidInitialization
    return {"kmeans++": init.KMEANS_PLUS_PLUS, "linear": init.LINEAR, "density": init.DENSITY_BASED,
            "random": init.RANDOM}[name]


def apply_clustering(model, config):
    """Return a copy of `model` whose clusterable layers are wrapped for clustering.

    Args:
        model: A trained `tf_keras` functional model (pruning wrappers stripped).
        config: A `ClusteringConfig` or dict.

    Returns:
        `(clustered_model, left_out)`: the model to compile and fine-tune, and
        `[{"layer", "class_name", "reason"}]` for layers with weights that stay unclustered.

    Raises:
        TypeError: `model` is a Keras 3 model.
        ConfigError: Bad config, or a `per_layer` / `exclude` entry that matches no layer.

    Example:
        >>> clustered, left_out = tfmm.optimization.apply_clustering(model, {"number_of_clusters": 16})  # doctest: +SKIP
    """
    require_model(model, "model")
    check_keras2(model)
    if isinstance(config, dict):
        config = ClusteringConfig.from_dict(config)
    model = flatten_model(model)
    excluded = excluded_scope(model, config)
    cluster = tfmot().clustering.keras
    left_out = []
    # Wrap the layers of a copy that already holds the trained weights: the
    # wrappers compute their centroids from them when they are built.
    copy = copy_model(model)

    def wrap(layer):
        if not layer.weights:
            return layer
        policy = get_layer_policy(layer)
        reason = None
        if not policy.clusterable:
            if isinstance(layer, _NORMALIZATION):  # scales and shifts: nothing to cluster
                return layer
            reason = f"no clusterable weights in its policy ({policy.reason or type(layer).__name__})"
        elif excluded.matches(layer):
            reason = "excluded by the recipe"
        if reason is None:
            k = layer_setting(layer.name, config.per_layer, config.per_branch, config.number_of_clusters)
            # A wrapper would drop the mask an LSTM reads; TFMOT's k-means++ fails on weights
            # with fewer values than it samples (a 1-channel stem's 9 weights).
            tiny = min(w.shape.num_elements() for a in policy.clusterable for w in find_weights(layer, a)) < 4 * k
            if getattr(layer, "mask_zero", False) or tiny:
                return _project(layer, policy.clusterable, k, config.preserve_sparsity)
            try:
                return cluster.cluster_weights(layer, number_of_clusters=k, cluster_centroids_init=_init(
                    config.centroid_init), preserve_sparsity=config.preserve_sparsity)
            except (ValueError, TypeError):  # TimeDistributed, ...: TFMOT has no wrapper for it
                return _project(layer, policy.clusterable, k, config.preserve_sparsity)
        left_out.append({"layer": layer.name, "class_name": type(layer).__name__, "reason": reason})
        return layer

    return keras.models.clone_model(copy, clone_function=wrap), left_out


def _project(layer, attrs, k, preserve_sparsity):
    """Cluster `layer`'s weights in place (no wrapper) and freeze it until `strip_clustering`."""
    for attr in attrs:
        for variable in find_weights(layer, attr):
            variable.assign(kmeans_1d(variable.numpy(), k, keep_zeros=preserve_sparsity))
    layer.trainable = False
    layer._tfmm_frozen_clusters = True
    return layer


def kmeans_1d(values, k, *, keep_zeros=False, iterations=20):
    """`values` with each entry replaced by the mean of its cluster (k-means on scalars, linear init).

    Args:
        values: A numpy array.
        k: Number of clusters (distinct values left).
        keep_zeros: Zeros stay zero (their own cluster) and the rest share `k - 1` clusters.
        iterations: Lloyd iterations.

    Returns:
        An array of `values`' shape and dtype with at most `k` distinct values.

    Example:
        >>> len(set(kmeans_1d(np.linspace(-1, 1, 100), 4).tolist()))
        4
    """
    values = np.asarray(values)
    flat = values.ravel().astype("float64")
    out = np.zeros_like(flat)
    chosen = flat != 0 if keep_zeros else np.ones(flat.shape, bool)
    points = flat[chosen]
    n = k - 1 if keep_zeros else k
    if points.size == 0:
        return values
    centroids = np.linspace(points.min(), points.max(), max(n, 1))
    for _ in range(iterations):
        index = np.argmin(np.abs(points[:, None] - centroids[None, :]), axis=1)
        for c in range(centroids.size):
            members = points[index == c]
            if members.size:
                centroids[c] = members.mean()
    out[chosen] = centroids[np.argmin(np.abs(points[:, None] - centroids[None, :]), axis=1)]
    return out.reshape(values.shape).astype(values.dtype)


def strip_clustering(model):
    """Remove clustering wrappers, leaving plain layers with clustered weights.

    Args:
        model: A model from `apply_clustering` (after fine-tuning).

    Returns:
        A plain `tf_keras` model.

    Example:
        >>> plain = tfmm.optimization.strip_clustering(clustered)  # doctest: +SKIP
    """
    require_model(model, "model")
    plain = tfmot().clustering.keras.strip_clustering(model)
    for layer in plain.layers:  # clustered in place by apply_clustering: trainable again
        if getattr(layer, "_tfmm_frozen_clusters", False):
            layer.trainable = True
            layer._tfmm_frozen_clusters = False
    return plain


def _clusterable_weights(model):
    """`[(layer_name, variable)]` of the clusterable weights of plain or QAT-wrapped layers."""
    out = []
    for layer in model.layers:
        for attr in get_layer_policy(unwrap(layer)).clusterable:
            out += [(unwrap(layer).name, variable) for variable in find_weights(layer, attr)]
    return out


def cluster_report(model):
    """Count the distinct values of every clusterable weight.

    Args:
        model: A plain or QAT model.

    Returns:
        `{layer_name: {"unique": int, "sparsity": float}}`.

    Example:
        >>> tfmm.optimization.cluster_report(model)["image_stem_conv"]["unique"]  # doctest: +SKIP
        16
    """
    require_model(model, "model")
    values = {}
    for name, variable in _clusterable_weights(model):
        values.setdefault(name, []).append(variable.numpy().ravel())
    report = {}
    for name, parts in values.items():  # `unique`: the most distinct values of any one weight
        report[name] = {"unique": max(int(np.unique(p).size) for p in parts),
                        "sparsity": float(np.mean(np.concatenate(parts) == 0))}
    return report


class ClusterPreserve(keras.callbacks.Callback):
    """Keep clustered kernels clustered while fine-tuning (CQAT / PCQAT).

    On `on_train_begin` each kernel with at most `max_clusters` distinct values
    has its cluster map recorded; after every batch each weight is set to the
    mean of its cluster, and the zero cluster stays zero.

    Args:
        max_clusters: Kernels with more distinct values are left alone.

    Example:
        >>> qat.fit(ds, callbacks=[tfmm.optimization.ClusterPreserve()])  # doctest: +SKIP
    """

    def __init__(self, max_clusters=256):
        super().__init__()
        self.max_clusters = int(max_clusters)
        self._maps = []

    def on_train_begin(self, logs=None):
        self._maps = []
        for _, variable in _clusterable_weights(self.model):
            values, index = np.unique(variable.numpy(), return_inverse=True)
            if values.size <= self.max_clusters:
                zero = int(np.argmin(np.abs(values))) if np.any(values == 0) else -1
                self._maps.append((variable, tf.constant(index.reshape(variable.shape), tf.int32),
                                   values.size, zero))

    def on_train_batch_end(self, batch, logs=None):
        for variable, index, count, zero in self._maps:
            flat = tf.reshape(variable, [-1])
            ids = tf.reshape(index, [-1])
            means = tf.math.unsorted_segment_mean(flat, ids, count)
            if zero >= 0:
                means = tf.tensor_scatter_nd_update(means, [[zero]], [0.0])
            variable.assign(tf.reshape(tf.gather(means, ids), variable.shape))
