"""The layer policy table in README.md, generated from the registry (`python scripts/policy_table.py`).

One row per common tf_keras layer: what pruning, 2:4 sparsity, QAT and clustering
do to it, and why, read from `tfmm.optimization.policies`.
"""

from tfmm._keras import keras
from tfmm.optimization.policies import get_layer_policy

__all__ = ["policy_table", "policy_table_markdown"]


def _sample_layers():
    """One instance of each common tf_keras layer (the rows of the policy table)."""
    layers = keras.layers
    return [
        ("Dense", layers.Dense(4)), ("Conv1D", layers.Conv1D(4, 3)), ("Conv2D", layers.Conv2D(4, 3)),
        ("DepthwiseConv2D", layers.DepthwiseConv2D(3)), ("SeparableConv2D", layers.SeparableConv2D(4, 3)),
        ("Conv2DTranspose", layers.Conv2DTranspose(4, 3)), ("Embedding", layers.Embedding(8, 4)),
        ("Embedding (mask_zero)", layers.Embedding(8, 4, mask_zero=True)), ("LSTM", layers.LSTM(4)),
        ("GRU", layers.GRU(4)), ("SimpleRNN", layers.SimpleRNN(4)),
        ("Bidirectional(LSTM)", layers.Bidirectional(layers.LSTM(4))),
        ("TimeDistributed(Dense)", layers.TimeDistributed(layers.Dense(4))),
        ("MultiHeadAttention", layers.MultiHeadAttention(2, 4)), ("Attention", layers.Attention()),
        ("LayerNormalization", layers.LayerNormalization()), ("BatchNormalization", layers.BatchNormalization()),
        ("Flatten", layers.Flatten()), ("Reshape", layers.Reshape((4,))), ("MaxPooling2D", layers.MaxPooling2D()),
        ("GlobalAveragePooling2D", layers.GlobalAveragePooling2D()), ("Concatenate", layers.Concatenate()),
    ]


def policy_table():
    """Return the policy of each common tf_keras layer, as README's table shows it.

    Returns:
        `[{"layer", "prune", "two_by_four", "quantize", "cluster", "reason"}]`,
        one row per layer kind, read from the registry (and TFMOT's 8-bit
        registry for the layers tfmm leaves to it).

    Example:
        >>> rows = tfmm.optimization.policy_table.policy_table()
        >>> next(r for r in rows if r["layer"] == "Dense")["quantize"]
        'default'
    """
    rows = []
    for name, layer in _sample_layers():
        policy = get_layer_policy(layer)
        structured = bool(policy.prunable) and isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense))
        rows.append({"layer": name, "prune": ", ".join(policy.prunable) or "-",
                     "two_by_four": "yes" if structured else "-", "quantize": policy.quantize,
                     "cluster": ", ".join(policy.clusterable) or "-", "reason": policy.reason})
    return rows


def policy_table_markdown():
    """`policy_table()` as the markdown table in README.md (`python scripts/policy_table.py`)."""
    lines = ["| layer | pruned weights | 2:4 | QAT | clustered weights | why |", "|---|---|---|---|---|---|"]
    for row in policy_table():
        lines.append(f"| {row['layer']} | {row['prune']} | {row['two_by_four']} | {row['quantize']} | "
                     f"{row['cluster']} | {row['reason'] or '-'} |")
    lines.append("| nested Model / Sequential / keras.applications backbone | its layers' | its layers' | "
                 "its layers' | its layers' | inlined by `tfmm.models.flatten_model` before every stage "
                 "(`report['flattened']`); each inner layer follows its own row |")
    return "\n".join(lines)
