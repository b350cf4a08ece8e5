"""The one place tfmm saves and loads models and their sidecar files, safely by default.

Loading a Keras file can run code from it: a `Lambda` layer in an `.h5` file holds
Python bytecode that Keras executes while it rebuilds the model (an HDF5 file renamed
`.keras` takes the same path), and a `hub.KerasLayer` whose handle is a URL fetches it.
`load_model` therefore reads the model's config *before* anything is deserialized and
refuses, unless the caller opts in by name (`safe_mode=False`):

- `Lambda` layers (`SecurityError`),
- TF Hub layers whose handle is not an existing local folder (`SecurityError` for a
  URL, `ConfigError` for a missing folder),
- classes that are neither Keras built-ins nor registered (tfmm's, TFMOT's, TF Hub's,
  `keras.utils.register_keras_serializable`, or `custom_objects=`): `ConfigError`,
- SavedModel folders, whose Keras metadata is not checked (`SecurityError`).

The file's kind is read from its first bytes, never from its name. Formats:

- `.keras`: Keras's own zip, loaded with Keras safe mode on. Float models.
- `.tfmm`: tfmm's zip of the model config (JSON) and its weights (`.npz`, loaded with
  `allow_pickle=False`): QAT, pruned and clustered models round-trip through it, which
  `.keras` cannot do for QAT models with tf-keras 2.21 (their `quantize_layer` loads
  with a different variable count). The CLI's default for optimized models.
- `.h5`: legacy HDF5, for trusted files; loaded after the same config check.

Sidecars follow one naming rule: `<stem>.vocab.json` (text tokenizer),
`<stem>.labels.txt` (class names), `<stem>.yaml` (the `MultimodalConfig`).

Length: this is the whole public surface for files (load, save, copy, sidecars);
the config check lives in `tfmm._safety` and the `.tfmm` format in `tfmm._tfmm_format`.
"""

import contextlib
import os
import warnings
import zipfile

from tfmm._files import atomic_write_text, check_output_path, publish_file, temp_name
from tfmm import _tfmm_format as tfmm_format
from tfmm._safety import OPT_IN, check_model_config, trusted_classes
from tfmm._tfmm_format import FORMAT
from tfmm._keras import check_keras2, keras
from tfmm.errors import ConfigError, SecurityError

__all__ = [
    "FORMAT",
    "MODEL_SUFFIXES",
    "check_model_config",
    "copy_model",
    "load_model",
    "load_tokenizer",
    "model_from_config",
    "save_model",
    "sidecar_path",
    "write_sidecars",
]

MODEL_SUFFIXES = (".keras", ".tfmm", ".h5")
SIDECARS = {"vocabulary": ".vocab.json", "labels": ".labels.txt", "config": ".yaml"}
_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
_ZIP_MAGIC = b"PK\x03\x04"
_WRAPPER_CLASSES = ("QuantizeWrapper", "QuantizeWrapperV2", "QuantizeLayer", "PruneLowMagnitude", "ClusterWeights")


def sidecar_path(model_path, kind):
    """Return where the sidecar `kind` of a model file lives.

    Args:
        model_path: A model file, e.g. `"model.keras"`.
        kind: `"vocabulary"`, `"labels"` or `"config"`.

    Returns:
        `<stem>.vocab.json`, `<stem>.labels.txt` or `<stem>.yaml`.

    Raises:
        ConfigError: Unknown `kind`.

    Example:
        >>> tfmm.artifacts.sidecar_path("out/model.keras", "vocabulary")
        'out/model.vocab.json'
    """
    if kind not in SIDECARS:
        raise ConfigError(f"Unknown sidecar kind {kind!r}: use one of {sorted(SIDECARS)}.")
    return os.path.splitext(os.fspath(model_path))[0] + SIDECARS[kind]


def _kind(path):
    if os.path.isdir(path):
        return "savedmodel"
    with open(path, "rb") as f:
        head = f.read(8)
    if head.startswith(_HDF5_MAGIC):
        return "h5"
    if head.startswith(_ZIP_MAGIC) and zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as z:
            names = set(z.namelist())
        if "tfmm.json" in names:
            return "tfmm"
        if "config.json" in names:
            return "keras"
    return None


@contextlib.contextmanager
def _scope(objects):
    with keras.utils.custom_object_scope(objects), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*HDF5 file.*")
        warnings.filterwarnings("ignore", message=".*compile.*")
        yield


def _short(error):
    text = str(error).strip().splitlines()
    return (text[0] if text else type(error).__name__)[:240]


def load_model(path, *, safe_mode=True, compile=True, custom_objects=None):
    """Load a model saved by tfmm or Keras (`.keras`, `.tfmm`, `.h5`), safely by default.

    Float, pruned, clustered and QAT models all load; TF Hub encoders load from the
    local folders their handles name.

    Args:
        path: A model file (its kind is read from its content, not its name).
        safe_mode: Refuse `Lambda` layers, remote TF Hub handles and SavedModel
            folders (see the module docs). Pass False only for files you trust.
        compile: Restore the training configuration too (where the file has one).
        custom_objects: `{name: class}` of your own layers, trusted by name.

    Returns:
        The `tf_keras.Model`.

    Raises:
        ConfigError: No file at `path`, not a Keras model, an unknown class, or a
            file that does not load (the message says why).
        SecurityError: The file would run code or fetch a URL (safe mode).
        TypeError: `path` is not a path.

    Example:
        >>> model = tfmm.artifacts.load_model("model.keras")  # doctest: +SKIP
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"`path` must be the path of a model file. Received: {type(path).__name__}")
    path = os.fspath(path)
    if not os.path.exists(path):
        raise ConfigError(f"No saved model at {path!r}. Pass a .keras / .tfmm / .h5 file written by tfmm or Keras.")
    if custom_objects is not None and not isinstance(custom_objects, dict):
        raise TypeError(f"`custom_objects` must be a dict of name -> class. Received: {type(custom_objects).__name__}")
    kind = _kind(path)
    objects = trusted_classes(custom_objects)
    if kind == "savedmodel":
        if safe_mode:
            raise SecurityError(
                f"{path!r} is a SavedModel folder: tfmm cannot check what its Keras metadata rebuilds. "
                f"Re-save it as .keras, or, if you trust it, use {OPT_IN}."
            )
        with _scope(objects):
            return _guard(path, lambda: keras.models.load_model(path, compile=compile))
    if kind is None:
        raise ConfigError(
            f"{path!r} is not a Keras model file (neither a .keras / .tfmm zip nor HDF5). "
            "Pass a file written by `tfmm train`, `tfmm optimize` or model.save()."
        )
    if kind == "h5":
        import h5py

        with h5py.File(path, "r") as f:
            config = f.attrs.get("model_config")
            if config is None:
                raise ConfigError(f"{path!r} is an HDF5 file without a model config (weights only?). "
                                  "Pass a whole model saved with model.save().")
            check_model_config(config, safe_mode=safe_mode, custom_objects=custom_objects)
            with _scope(objects):
                return _guard(path, lambda: keras.models.load_model(f, compile=compile))
    if kind == "keras":
        with zipfile.ZipFile(path) as z:
            check_model_config(z.read("config.json"), safe_mode=safe_mode, custom_objects=custom_objects)
        with _scope(objects):
            return _guard(path, lambda: keras.models.load_model(path, compile=compile, safe_mode=safe_mode))
    return _load_tfmm(path, objects, safe_mode, custom_objects, compile)


def _guard(path, load):
    try:
        return load()
    except (ValueError, OSError, KeyError, TypeError, AttributeError) as e:
        raise ConfigError(f"{path!r} did not load as a Keras model ({_short(e)}).") from None


def _load_tfmm(path, objects, safe_mode, custom_objects, compile):
    meta, config, arrays = tfmm_format.read(path)
    check_model_config(config, safe_mode=safe_mode, custom_objects=custom_objects)
    with _scope(objects):
        model = _guard(path, lambda: keras.models.model_from_json(config.decode("utf-8")))
        if _has_tfmot_wrappers(model):
            # Rebuilt from JSON, a QAT quantize_layer builds its range variables twice; a clone
            # builds them once, as the saved model had them (get_weights() copies then fit).
            model = keras.models.clone_model(model)
    tfmm_format.assign_weights(model, meta, arrays, path)
    if compile and meta.get("compile"):
        training = meta["compile"]
        with _scope(objects):
            model.compile(optimizer=keras.optimizers.get(training["optimizer"]),
                          loss=keras.losses.get(training["loss"]), metrics=training.get("metrics") or None)
    return model


def _has_tfmot_wrappers(model):
    return any(type(layer).__name__ in _WRAPPER_CLASSES for layer in model.layers)


def save_model(model, path, *, tokenizer=None, class_names=None, config=None):
    """Save a model atomically, with its sidecars under the one naming rule.

    Args:
        model: A `tf_keras.Model` (float, pruned, clustered or QAT).
        path: `.tfmm` (any model; the safe format for optimized ones), `.keras`
            (models without TFMOT wrappers) or `.h5` (legacy).
        tokenizer: Optional `TextTokenizer`, written to `<stem>.vocab.json`.
        class_names: Optional class names, written to `<stem>.labels.txt`.
        config: Optional `MultimodalConfig`, written to `<stem>.yaml`.

    Returns:
        The list of files written, the model first.

    Raises:
        ConfigError: Bad path or ending, or a QAT / pruned model saved as `.keras`.
        TypeError: `model` is not a Keras 2 model.

    Example:
        >>> tfmm.artifacts.save_model(model, "optimized.tfmm")  # doctest: +SKIP
        ['optimized.tfmm']
    """
    if not isinstance(model, keras.Model):
        check_keras2(model)
        raise TypeError(f"`model` must be a tf_keras.Model. Received: {type(model).__name__}")
    full = check_output_path(path, argname="path", suffixes=MODEL_SUFFIXES)
    suffix = os.path.splitext(full)[1].lower()
    if suffix == ".keras" and _has_tfmot_wrappers(model):
        raise ConfigError(
            f"path {path!r}: a model with TFMOT wrappers (QAT, pruning, clustering) does not load back "
            "from .keras with tf-keras 2.21. Save it as .tfmm (tfmm's safe format), e.g. "
            f"{os.path.splitext(os.fspath(path))[0] + '.tfmm'!r}."
        )
    tmp = temp_name(full)
    try:
        if suffix == ".tfmm":
            tfmm_format.write(model, tmp)
        else:
            os.remove(tmp)  # Keras picks the format from the ending: keep it
            tmp = tmp + suffix
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=".*HDF5 file.*")
                try:
                    model.save(tmp)
                except (ValueError, OSError, TypeError) as e:
                    raise ConfigError(f"Keras could not save {path!r} ({_short(e)}). Save it as .tfmm "
                                      "(tfmm's format for any model) instead.") from None
        publish_file(tmp, full)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise
    return [os.fspath(path), *write_sidecars(path, tokenizer=tokenizer, class_names=class_names, config=config)]


def write_sidecars(path, *, tokenizer=None, class_names=None, config=None):
    """Write the sidecar files of a model or `.tflite` file, each atomically.

    Args:
        path: The model or `.tflite` file the sidecars belong to.
        tokenizer: Optional `TextTokenizer` -> `<stem>.vocab.json`.
        class_names: Optional class names -> `<stem>.labels.txt`, one a line.
        config: Optional `MultimodalConfig` -> `<stem>.yaml`.

    Returns:
        The list of files written.

    Example:
        >>> tfmm.artifacts.write_sidecars("model_int8.tflite", class_names=["a", "b"])  # doctest: +SKIP
        ['model_int8.labels.txt']
    """
    written = []
    if tokenizer is not None:
        written.append(tokenizer.save(sidecar_path(path, "vocabulary")))
    if class_names is not None:
        written.append(atomic_write_text(sidecar_path(path, "labels"), "\n".join(map(str, class_names)) + "\n"))
    if config is not None:
        config.to_yaml(sidecar_path(path, "config"))
        written.append(sidecar_path(path, "config"))
    return written


def copy_model(model):
    """Return an independent copy of `model` with the same weights (no compile state).

    Works for float, pruned, clustered and QAT models and models with TF Hub or
    tfmm layers: every class tfmm can load, it can copy.

    Args:
        model: A `tf_keras.Model`.

    Returns:
        A new `tf_keras.Model`.

    Raises:
        TypeError: `model` is not a tf_keras model.

    Example:
        >>> clone = tfmm.artifacts.copy_model(model)  # doctest: +SKIP
    """
    if not isinstance(model, keras.Model):
        check_keras2(model)
        raise TypeError(f"`model` must be a tf_keras.Model. Received: {type(model).__name__}")
    with _scope(trusted_classes()):
        clone = keras.models.clone_model(model)
    clone.set_weights(model.get_weights())
    return clone


def model_from_config(config):
    """Build a functional model from `model.get_config()` output (any class tfmm can load).

    Used by model surgery (channel pruning, low-rank) that edits a config and
    rebuilds the smaller graph; weights are set by the caller.

    Args:
        config: A functional model config dict.

    Returns:
        A new, uncompiled `tf_keras.Model` with fresh weights.

    Example:
        >>> clone = tfmm.artifacts.model_from_config(model.get_config())  # doctest: +SKIP
    """
    with _scope(trusted_classes()):
        return keras.Model.from_config(config)


def load_tokenizer(model_path, explicit=None):
    """Return the text tokenizer of a model: `explicit` if given, else its sidecar.

    Args:
        model_path: The model file; its `<stem>.vocab.json` is looked for.
        explicit: A tokenizer JSON the user named (it must exist).

    Returns:
        A `TextTokenizer`, or None when there is none.

    Raises:
        DataError: `explicit` is missing or not a tokenizer file.

    Example:
        >>> tok = tfmm.artifacts.load_tokenizer("model.keras")  # doctest: +SKIP
    """
    from tfmm.data import TextTokenizer

    if explicit:
        return TextTokenizer.load(explicit)  # raises DataError when missing
    candidate = sidecar_path(model_path, "vocabulary")
    return TextTokenizer.load(candidate) if os.path.isfile(candidate) else None
