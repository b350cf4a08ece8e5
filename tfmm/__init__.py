"""tfmm: multimodal Keras models to small, fast, verified int8 TFLite files.

Importing tfmm makes sure TensorFlow uses Keras 2 (`tf_keras`), which
tensorflow-model-optimization needs: it sets `TF_USE_LEGACY_KERAS=1` when
TensorFlow has not been imported yet, and refuses to load when TensorFlow's
`tf.keras` already resolved to Keras 3.
"""

import os as _os
import sys as _sys

_TRUTHY = ("1", "true", "True", "TRUE")


def _ensure_legacy_keras():
    from tfmm.errors import KerasVersionError

    value = _os.environ.get("TF_USE_LEGACY_KERAS")
    if value is not None and value not in _TRUTHY:
        raise KerasVersionError(
            "tfmm needs Keras 2 (tf_keras), but the environment sets "
            f"TF_USE_LEGACY_KERAS={value!r}. Unset it or set TF_USE_LEGACY_KERAS=1 "
            "before starting Python."
        )
    _os.environ["TF_USE_LEGACY_KERAS"] = "1"
    tf = _sys.modules.get("tensorflow")
    if tf is None:
        return
    # tf.keras is resolved lazily on first access: if TensorFlow was imported but
    # tf.keras was never touched, the variable set above still takes effect.
    version_fn = getattr(tf.keras, "version", None)  # Keras 3 has it, tf_keras not
    version = str(version_fn()) if callable(version_fn) else "2"
    if version.startswith("3"):
        raise KerasVersionError(
            "TensorFlow was imported with Keras 3 active (tf.keras is Keras "
            f"{version}), but tfmm needs Keras 2 (tf_keras). Import tfmm before "
            "TensorFlow, or set TF_USE_LEGACY_KERAS=1 in the environment before "
            "starting Python."
        )


_ensure_legacy_keras()

from tfmm import errors  # noqa: E402,F401  (light: no TensorFlow)

__version__ = "0.1.0"

_SUBPACKAGES = ("artifacts", "config", "data", "evaluate", "export", "models", "optimization")

__all__ = ["errors", "__version__", *_SUBPACKAGES]


def __getattr__(name):
    # Subpackages load on first use, so `import tfmm` stays cheap and the CLI can
    # quiet TensorFlow's start-up logging before TensorFlow is imported.
    if name in _SUBPACKAGES:
        import importlib

        module = importlib.import_module(f"tfmm.{name}")
        globals()[name] = module
        return module
    raise AttributeError(f"module 'tfmm' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
