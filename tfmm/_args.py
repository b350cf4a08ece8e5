"""Argument checks shared by tfmm's public functions (messages name the argument, value and fix)."""

from tfmm.errors import ConfigError

__all__ = ["positive_int", "require_model"]


def positive_int(value, name, *, allow_none=False, minimum=1):
    """Return `value` when it is an integer >= `minimum` (or None, if allowed).

    Args:
        value: What the caller passed.
        name: The argument's name, used in the message.
        allow_none: Accept None.
        minimum: The smallest allowed value (0 for counts that may be empty).

    Returns:
        `value`.

    Raises:
        ConfigError: `value` is a bool, not an integer, or too small.

    Example:
        >>> tfmm._args.positive_int(3, "runs")
        3
    """
    if value is None and allow_none:
        return value
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        kind = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        raise ConfigError(f"`{name}` must be {kind}. Received: {name}={value!r}")
    return value


def require_model(model, name="model"):
    """Return `model` when it is a `tf_keras.Model`; raise a `TypeError` naming the fix otherwise.

    Args:
        model: What the caller passed.
        name: The argument's name.

    Returns:
        `model`.

    Raises:
        TypeError: A Keras 3 object, a path or anything else.

    Example:
        >>> m = tfmm._args.require_model(model)  # doctest: +SKIP
    """
    from tfmm._keras import check_keras2, keras

    check_keras2(model, name)
    if not isinstance(model, keras.Model):
        hint = " Load the file first with tfmm.models.load_model(path)." if isinstance(model, str) else ""
        raise TypeError(f"`{name}` must be a tf_keras.Model. Received: {type(model).__name__} {model!r:.80}.{hint}")
    return model
