"""Typed errors raised by tfmm.

Every tfmm error derives from `TfmmError`, so callers can catch them all at once,
and also from the closest built-in exception (`ValueError`, `TypeError`, ...), so
code written against plain Python conventions keeps working.
"""


class TfmmError(Exception):
    """Base class of every error tfmm raises on purpose."""


class ConfigError(TfmmError, ValueError):
    """A configuration value is missing, of the wrong type or out of range."""


class DataError(TfmmError, ValueError):
    """Input data is malformed: missing files, bad values, wrong shapes or keys."""


class UnsupportedLayerError(TfmmError, TypeError):
    """A layer cannot be handled by the requested optimization or export step."""


class ExportError(TfmmError, RuntimeError):
    """A model could not be exported, or an exported file cannot be read."""


class KerasVersionError(TfmmError, ImportError):
    """Keras 3 is active where tfmm needs Keras 2 (`tf_keras`)."""


class SecurityError(TfmmError, ValueError):
    """Loading a file would run code from it or fetch a URL, and the user did not opt in."""
