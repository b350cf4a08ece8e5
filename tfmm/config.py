"""Frozen-dataclass base for every tfmm configuration object.

A config is a `@dataclass(frozen=True)` that subclasses `Config`. It gets
`to_dict()` / `from_dict()` (unknown keys rejected), YAML loading and saving, and
small validation helpers whose messages name the field, the value received and
what is allowed, in the Keras style.
"""

import dataclasses
import os
import typing

import yaml

from tfmm._files import atomic_write_text
from tfmm.errors import ConfigError

__all__ = ["Config"]


def _to_plain(value):
    if isinstance(value, Config):
        return value.to_dict()
    if isinstance(value, (tuple, list)):
        return [_to_plain(v) for v in value]
    return value


def _nested_config_type(annotation):
    """Return the Config subclass a field holds (possibly Optional), or None."""
    candidates = typing.get_args(annotation) or (annotation,)
    for candidate in candidates:
        if isinstance(candidate, type) and issubclass(candidate, Config):
            return candidate
    return None


@dataclasses.dataclass(frozen=True)
class Config:
    """Base class: subclasses are frozen dataclasses with a `validate()` method.

    Lists given for fields are stored as tuples so configs stay hashable and
    immutable. Nested configs are rebuilt from dicts by `from_dict`.
    """

    def __post_init__(self):
        hints = typing.get_type_hints(type(self))
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            nested = _nested_config_type(hints.get(field.name))
            if nested is not None and isinstance(value, dict):
                object.__setattr__(self, field.name, nested.from_dict(value))
            elif isinstance(value, list):
                object.__setattr__(self, field.name, tuple(value))
        self.validate()

    def validate(self):
        """Check field values; subclasses raise `ConfigError` on a bad one."""

    # -- serialization -----------------------------------------------------------
    def to_dict(self):
        """Return a plain dict (JSON/YAML-safe) of this config.

        Returns:
            A dict with one key per field; nested configs become dicts and tuples
            become lists.

        Example:
            >>> cfg = tfmm.models.TextBranchConfig(vocab_size=100, sequence_length=8)
            >>> cfg.to_dict()["vocab_size"]
            100
        """
        return {f.name: _to_plain(getattr(self, f.name)) for f in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls, data):
        """Build a config from a dict such as one `to_dict` returned.

        Args:
            data: A mapping of field names to values. Nested configs may be dicts.

        Returns:
            An instance of `cls`.

        Raises:
            ConfigError: `data` is not a mapping, has unknown keys, or a value is
                invalid.

        Example:
            >>> tfmm.models.FusionConfig.from_dict({"mode": "gated"}).mode
            'gated'
        """
        if isinstance(data, cls):
            return data
        if not isinstance(data, dict):
            raise ConfigError(
                f"{cls.__name__}.from_dict expects a mapping. Received: "
                f"{type(data).__name__} {data!r}"
            )
        fields = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - set(fields))
        if unknown:
            raise ConfigError(
                f"Unknown key(s) for {cls.__name__}: {unknown}. "
                f"Allowed keys: {sorted(fields)}"
            )
        try:
            return cls(**data)
        except TypeError as e:
            raise ConfigError(f"Cannot build {cls.__name__} from {data!r}: {e}") from e

    @classmethod
    def from_yaml(cls, path):
        """Load a config from a YAML file (read with `yaml.safe_load`).

        Args:
            path: Path to a YAML file holding one mapping.

        Returns:
            An instance of `cls`.

        Raises:
            ConfigError: The file is missing, is not valid YAML, or holds bad values.

        Example:
            >>> cfg = tfmm.models.MultimodalConfig.from_yaml("model.yaml")  # doctest: +SKIP
        """
        path = os.fspath(path)
        if not os.path.isfile(path):
            raise ConfigError(f"Config file not found: {path!r}. Pass the path of a YAML file.")
        with open(path, encoding="utf-8") as f:
            try:
                data = yaml.safe_load(f)
            except yaml.YAMLError as e:
                raise ConfigError(f"{path!r} is not valid YAML: {e}") from e
        return cls.from_dict(data if data is not None else {})

    def to_yaml(self, path=None):
        """Return this config as YAML text, and write it atomically when `path` is given.

        Args:
            path: Optional file to write.

        Returns:
            The YAML text.

        Example:
            >>> text = tfmm.models.FusionConfig().to_yaml()
        """
        text = yaml.safe_dump(self.to_dict(), sort_keys=False)
        if path is not None:
            atomic_write_text(path, text)
        return text

    # -- validation helpers ------------------------------------------------------
    def _fail(self, name, allowed):
        raise ConfigError(
            f"`{name}` {allowed}. Received: {name}={getattr(self, name)!r} "
            f"(in {type(self).__name__})"
        )

    def _check_positive_int(self, name, allow_none=False):
        value = getattr(self, name)
        if value is None and allow_none:
            return
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            self._fail(name, "must be a positive integer")

    def _check_positive_ints(self, name, allow_empty=False):
        value = getattr(self, name)
        if not isinstance(value, tuple) or (not value and not allow_empty) or any(
            isinstance(v, bool) or not isinstance(v, int) or v <= 0 for v in value
        ):
            self._fail(name, "must be a list of positive integers")

    def _check_fraction(self, name, low=0.0, high=1.0):
        value = getattr(self, name)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
            low <= value < high
        ):
            self._fail(name, f"must be a number in [{low}, {high})")

    def _check_choice(self, name, choices):
        value = getattr(self, name)
        if value not in choices:
            self._fail(name, f"must be one of {list(choices)}")

    def _check_bool(self, name):
        if not isinstance(getattr(self, name), bool):
            self._fail(name, "must be True or False")
