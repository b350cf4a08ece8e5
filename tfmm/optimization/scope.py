"""`LayerScope`: which layers a stage setting applies to, by name, pattern, type or branch.

Every stage (pruning, clustering, QAT, and the stages to come) names layers the
same way and checks the names against the model before any training: an entry
that matches no layer is a `ConfigError` (a typo never passes silently).
"""

import dataclasses
import fnmatch
from typing import Tuple

from tfmm._keras import unwrap
from tfmm.config import Config
from tfmm.errors import ConfigError

__all__ = ["LayerScope"]

_GLOB = set("*?[")


def _strings(value, field):
    if isinstance(value, str) or not isinstance(value, tuple) or not all(isinstance(v, str) and v for v in value):
        raise ConfigError(
            f"`{field}` must be a list of non-empty strings. Received: {field}={value!r} (in LayerScope)"
        )


@dataclasses.dataclass(frozen=True)
class LayerScope(Config):
    """A set of layers, named four ways; a layer is in scope when any entry matches it.

    Args:
        names: Exact layer names, e.g. `["text_lstm1"]`.
        patterns: Glob patterns on layer names, e.g. `["image_stage4_*"]`.
        types: Layer class names, matched against the class and its bases, e.g.
            `["LSTM"]`, or `["RNN"]` for every recurrent layer. Wrappers (pruning,
            QAT, clustering) are looked through.
        branches: tfmm branch prefixes (`image`, `text`, `audio`, `fusion`,
            `head`): layers named `<branch>_...`.

    Raises:
        ConfigError: An entry that is not a string (here), or one that matches no
            layer of the model (`check`).

    Example:
        >>> scope = tfmm.optimization.LayerScope(patterns=["image_stage4_*"], types=["LSTM"])
        >>> scope.is_empty
        False
    """

    names: Tuple[str, ...] = ()
    patterns: Tuple[str, ...] = ()
    types: Tuple[str, ...] = ()
    branches: Tuple[str, ...] = ()

    def validate(self):
        for field in ("names", "patterns", "types", "branches"):
            _strings(getattr(self, field), field)

    @classmethod
    def parse(cls, value, field="exclude"):
        """Return a `LayerScope` from any accepted form.

        Args:
            value: None, a `LayerScope`, a mapping with the four keys, or a list of
                strings in the short form: an entry with `*`, `?` or `[` is a
                pattern, one starting with a capital letter a layer type, any other
                an exact layer name.
            field: The setting's name, for error messages.

        Returns:
            A `LayerScope` (empty for None).

        Raises:
            ConfigError: Another kind of value.

        Example:
            >>> tfmm.optimization.LayerScope.parse(["image_*", "LSTM", "head_output"]).types
            ('LSTM',)
        """
        if value is None:
            return cls()
        if isinstance(value, cls):
            return value
        if isinstance(value, dict):
            return cls.from_dict(value)
        if isinstance(value, list):
            value = tuple(value)
        if isinstance(value, str) or not isinstance(value, tuple) or not all(isinstance(v, str) and v for v in value):
            raise ConfigError(
                f"`{field}` must be a list of layer names, patterns or class names, or a mapping with "
                f"names / patterns / types / branches. Received: {field}={value!r}"
            )
        patterns = tuple(v for v in value if _GLOB & set(v))
        types = tuple(v for v in value if v not in patterns and v[:1].isupper())
        names = tuple(v for v in value if v not in patterns and v not in types)
        return cls(names=names, patterns=patterns, types=types)

    @property
    def is_empty(self):
        """True when the scope names no layer at all."""
        return not (self.names or self.patterns or self.types or self.branches)

    def matches(self, layer):
        """Return True when `layer` (or the layer inside its wrappers) is in scope.

        Args:
            layer: A Keras layer, possibly wrapped.

        Returns:
            A bool.
        """
        inner = unwrap(layer)
        return any(self._hit(kind, entry, inner) for kind, entry in self._entries())

    def check(self, model, field="exclude"):
        """Raise `ConfigError` for every entry that matches no layer of `model`.

        Args:
            model: The `tf_keras` model the setting is for.
            field: The setting's name, for the message.

        Returns:
            The scope itself.

        Raises:
            ConfigError: An entry matches nothing; the message lists examples of
                the model's layer names and types.
        """
        layers = [unwrap(layer) for layer in model.layers]
        missing = [f"{kind[:-1]} {entry!r}" for kind, entry in self._entries()
                   if not any(self._hit(kind, entry, layer) for layer in layers)]
        if missing:
            names = [layer.name for layer in layers[1:5]]
            types = sorted({type(layer).__name__ for layer in layers})[:6]
            raise ConfigError(
                f"`{field}`: {', '.join(missing)} matches no layer of model {model.name!r}. Layer names look "
                f"like {names} and types like {types}; check the spelling."
            )
        return self

    def _entries(self):
        for kind in ("names", "patterns", "types", "branches"):
            for entry in getattr(self, kind):
                yield kind, entry

    @staticmethod
    def _hit(kind, entry, layer):
        if kind == "names":
            return layer.name == entry
        if kind == "patterns":
            return fnmatch.fnmatchcase(layer.name, entry)
        if kind == "types":
            return any(cls.__name__ == entry for cls in type(layer).__mro__)
        return layer.name.startswith(entry + "_")


def excluded_scope(model, config):
    """Check a stage config's layer settings against `model`; return its `exclude` scope.

    Args:
        model: The model the stage will run on.
        config: A stage config with `exclude` and optionally `per_layer`
            (`PruningConfig`, `ClusteringConfig`, `QuantizationConfig`).

    Returns:
        The `LayerScope` of the layers the stage must leave alone.

    Raises:
        ConfigError: A `per_layer` key or an `exclude` entry matches no layer.

    Example:
        >>> skip = excluded_scope(model, tfmm.optimization.PruningConfig(exclude=["text_*"]))  # doctest: +SKIP
    """
    LayerScope(patterns=tuple(getattr(config, "per_layer", None) or ())).check(model, "per_layer")
    return LayerScope.parse(config.exclude).check(model, "exclude")
