"""`tf.distribute` strategies for fine-tuning: choose one by name, enter its scope, find the chief.

Multi-worker runs follow TensorFlow's convention: every process runs the same
program with its own `TF_CONFIG`, e.g. for two machines

    TF_CONFIG='{"cluster": {"worker": ["10.0.0.1:12345", "10.0.0.2:12345"]},
                "task": {"type": "worker", "index": 0}}'

(`index` 1 on the second machine), and the strategy is created before any other
TensorFlow work. Every worker computes the same updates; only the chief
(worker 0) should write files.
"""

import contextlib
import json
import os

import tensorflow as tf

from tfmm._choices import STRATEGIES
from tfmm.errors import ConfigError

__all__ = ["STRATEGIES", "is_chief", "make_strategy", "strategy_scope"]


def make_strategy(name):
    """Create the `tf.distribute.Strategy` called `name`.

    Args:
        name: `"none"` (or None: no strategy), `"mirrored"` (all local devices)
            or `"multi-worker"` (the processes listed in `TF_CONFIG`).

    Returns:
        A `tf.distribute.Strategy`, or None for `"none"`.

    Raises:
        ConfigError: Unknown name, or `"multi-worker"` without a valid `TF_CONFIG`.

    Example:
        >>> strategy = tfmm.optimization.make_strategy("mirrored")  # doctest: +SKIP
        >>> tfmm.optimization.optimize(model, recipe, data, strategy=strategy)  # doctest: +SKIP
    """
    if name is None or name == "none":
        return None
    if name not in STRATEGIES:
        raise ConfigError(f"Unknown strategy {name!r}; use one of {list(STRATEGIES)}.")
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    raw = os.environ.get("TF_CONFIG")
    try:
        config = json.loads(raw) if raw else None
        workers = config["cluster"]["worker"]
        index = int(config["task"]["index"])
    except (ValueError, KeyError, TypeError):
        raise ConfigError(
            "The multi-worker strategy needs TF_CONFIG naming the workers and this process's task, e.g. "
            '{"cluster": {"worker": ["host1:12345", "host2:12345"]}, "task": {"type": "worker", "index": 0}}. '
            f"Received: TF_CONFIG={raw!r}"
        ) from None
    if not 0 <= index < len(workers):
        raise ConfigError(f"TF_CONFIG task index {index} is not among the {len(workers)} workers {workers}.")
    return tf.distribute.MultiWorkerMirroredStrategy()


def is_chief(strategy):
    """True unless `strategy` is multi-worker and this process is not worker 0 (or the chief).

    Args:
        strategy: A `tf.distribute.Strategy` or None.

    Returns:
        Whether this process should write outputs.

    Example:
        >>> if tfmm.optimization.is_chief(strategy): model.save("out.h5")  # doctest: +SKIP
    """
    resolver = getattr(getattr(strategy, "extended", None), "_cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return True
    if resolver.task_type == "chief":
        return True
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return resolver.task_type == "worker" and resolver.task_id == 0 and not has_chief


def strategy_scope(strategy):
    """`strategy.scope()`, or a context that does nothing when `strategy` is None.

    Args:
        strategy: A `tf.distribute.Strategy` or None.

    Returns:
        A context manager.

    Raises:
        ConfigError: `strategy` is neither None nor a `tf.distribute.Strategy`.

    Example:
        >>> with tfmm.optimization.strategy_scope(strategy):  # doctest: +SKIP
        ...     model = build_multimodal_model(config)
    """
    if strategy is None:
        return contextlib.nullcontext()
    if not isinstance(strategy, tf.distribute.Strategy):
        raise ConfigError(
            "`strategy` must be a tf.distribute.Strategy (e.g. tf.distribute.MirroredStrategy() or "
            f"tf.distribute.MultiWorkerMirroredStrategy()) or None. Received: {type(strategy).__name__}"
        )
    return strategy.scope()
