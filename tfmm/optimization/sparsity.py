"""Sparsity after pruning: measure it (`sparsity_report`) and keep it (`SparsityMask`).

Every stage that runs after pruning (clustering, QAT) uses these; they read
weights from the innermost layer under any TFMOT wrapper, by the names the
layer's policy calls prunable.
"""

import numpy as np

from tfmm._args import require_model
from tfmm._keras import check_keras2, keras, unwrap
from tfmm.optimization.policies import find_weights, get_layer_policy

__all__ = ["SparsityMask", "sparsity_report"]


def sparsity_report(model):
    """Measure the sparsity of every prunable weight of `model`.

    Works on plain, pruning-wrapped and QAT-wrapped models: weights are read
    from the innermost layer, by the names its policy calls prunable.

    Args:
        model: A `tf_keras` model.

    Returns:
        A dict: `layers` maps layer name to `{"weights", "zeros", "sparsity"}`
        and `overall` is the zero fraction over all prunable weights.

    Example:
        >>> report = tfmm.optimization.sparsity_report(model)
        >>> round(report["overall"], 2)  # doctest: +SKIP
        0.75
    """
    require_model(model, "model")
    check_keras2(model)
    layers, total, zeros = {}, 0, 0
    for layer in model.layers:
        inner = unwrap(layer)
        policy = get_layer_policy(inner)
        values = []
        for attr in policy.prunable:
            values += [np.asarray(variable.numpy()).ravel() for variable in find_weights(layer, attr)]
        if not values:
            continue
        flat = np.concatenate(values)
        n_zero = int(np.sum(flat == 0))
        layers[inner.name] = {"weights": int(flat.size), "zeros": n_zero, "sparsity": n_zero / flat.size}
        total += flat.size
        zeros += n_zero
    return {"layers": layers, "overall": zeros / total if total else 0.0}


class SparsityMask(keras.callbacks.Callback):
    """Keep pruned weights at zero while fine-tuning (e.g. during QAT).

    At the start of training it records which prunable weights are zero, and
    after every batch it sets them back to zero. tfmm's sparsity-preserving
    quantizers already mask the layers QAT wraps; this callback also covers the
    layers QAT leaves float (the LSTM), whose pruned weights would regrow.

    Args:
        min_sparsity: Only weights at least this sparse are masked.

    Example:
        >>> qat.fit(ds, epochs=1, callbacks=[tfmm.optimization.SparsityMask()])  # doctest: +SKIP
    """

    def __init__(self, min_sparsity=0.01):
        super().__init__()
        self.min_sparsity = min_sparsity
        self._masks = []

    def on_train_begin(self, logs=None):
        self._masks = []
        for layer in self.model.layers:
            policy = get_layer_policy(unwrap(layer))
            for variable in (v for attr in policy.prunable for v in find_weights(layer, attr)):
                mask = np.asarray(variable.numpy()) != 0
                if 1.0 - mask.mean() >= self.min_sparsity:
                    self._masks.append((variable, mask.astype(variable.dtype.as_numpy_dtype)))

    def on_train_batch_end(self, batch, logs=None):
        for variable, mask in self._masks:
            variable.assign(variable * mask)
