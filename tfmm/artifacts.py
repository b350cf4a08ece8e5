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
"""

import contextlib
import io
import json
import os
import warnings
import zipfile

import numpy as np

from tfmm._files import atomic_write_text, check_output_path, publish_file, temp_name
from tfmm._keras import check_keras2, hub_custom_objects, keras, tfmot
from tfmm.errors import ConfigError, SecurityError

__all__ = [
    "FORMAT",
    "MODEL_SUFFIXES",
    "check_model_config",
    "load_model",
    "load_tokenizer",
    "save_model",
    "sidecar_path",
]

FORMAT = "tfmm.Model/1"
MODEL_SUFFIXES = (".keras", ".tfmm", ".h5")
SIDECARS = {"vocabulary": ".vocab.json", "labels": ".labels.txt", "config": ".yaml"}
_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
_ZIP_MAGIC = b"PK\x03\x04"
_KERAS_MODULES = ("keras", "tf_keras", "tensorflow_model_optimization", "tfmm", "tensorflow_hub")
_OPT_IN = "load_model(path, safe_mode=False) or `--unsafe-load` on the command line"
# Built-in namespaces a config may name classes from (layers, initializers, ...).
_BUILTIN_NAMESPACES = ("layers", "initializers", "regularizers", "constraints", "optimizers",
                       "losses", "metrics", "activations")
_BUILTIN_MODELS = {"Functional", "Sequential", "Model"}
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


def _custom_objects(extra=None):
    """Every class tfmm knows how to rebuild: its own, TFMOT's wrappers, TF Hub's layer."""
    from tfmm.models.layers import LogMelSpectrogram
    from tfmm.optimization.quantize_configs import quantize_custom_objects

    objects = {"LogMelSpectrogram": LogMelSpectrogram, **quantize_custom_objects(), **hub_custom_objects()}
    mot = tfmot()
    for scope in (mot.quantization.keras.quantize_scope(), mot.sparsity.keras.prune_scope(),
                  mot.clustering.keras.cluster_scope()):
        for mapping in scope.custom_objects:
            objects.update(mapping)
    for schedule in ("ConstantSparsity", "PolynomialDecay"):
        objects[schedule] = getattr(mot.sparsity.keras, schedule)
    objects.update(extra or {})
    return objects


def _builtin_names():
    names = set(_BUILTIN_MODELS)
    for namespace in _BUILTIN_NAMESPACES:
        module = getattr(keras, namespace)
        names.update(n for n in dir(module) if n[:1].isupper())
    names.update(n for n in dir(keras.optimizers.schedules) if n[:1].isupper())
    return names


def _is_remote(handle):
    text = str(handle).strip().lower()
    return "://" in text or text.startswith(("www.", "tfhub.dev", "kaggle.com", "storage.googleapis"))


def _layer_name(node, path):
    config = node.get("config") if isinstance(node.get("config"), dict) else {}
    return config.get("name") or "/".join(path) or node.get("class_name")


def check_model_config(config, *, safe_mode=True, custom_objects=None):
    """Check a model's config for anything that would run code or fetch a URL on load.

    Args:
        config: The model config: a dict (`model.get_config()` form, or the
            `{"class_name": ..., "config": ...}` JSON of `model.to_json()`) or JSON text.
        safe_mode: With False, only unknown classes are refused.
        custom_objects: Extra classes the caller trusts by name.

    Returns:
        A sorted list of the class names the config uses.

    Raises:
        SecurityError: A `Lambda` layer or a remote TF Hub handle (safe mode only).
        ConfigError: A class that is neither built in nor registered, a TF Hub
            handle that is not an existing local folder, or a module outside Keras,
            TFMOT, TF Hub and tfmm.

    Example:
        >>> names = tfmm.artifacts.check_model_config(model.to_json())  # doctest: +SKIP
    """
    if isinstance(config, (str, bytes)):
        try:
            config = json.loads(config)
        except ValueError as e:
            raise ConfigError(f"The model config is not valid JSON ({e}). Re-save the model.") from None
    known = set(_custom_objects(custom_objects)) | _builtin_names()
    used = set()

    def visit(node, path):
        if isinstance(node, list):
            for item in node:
                visit(item, path)
            return
        if not isinstance(node, dict):
            return
        class_name = node.get("class_name")
        if isinstance(class_name, str):
            used.add(class_name)
            where = _layer_name(node, path)
            module = node.get("module")
            if module and not str(module).split(".")[0] in _KERAS_MODULES:
                raise ConfigError(
                    f"Layer {where!r} names module {module!r}, outside Keras / TFMOT / TF Hub / tfmm; "
                    "tfmm does not import modules named by a file. Rebuild the model with registered layers."
                )
            bare = class_name.split(">")[-1]
            if bare == "Lambda" and safe_mode:
                raise SecurityError(
                    f"Layer {where!r} is a Lambda layer: loading it runs Python code stored in the file. "
                    f"Load only files you trust that way, with {_OPT_IN}; better, replace the Lambda by a "
                    "registered layer class."
                )
            if class_name == "KerasLayer":
                _check_hub_handle(node.get("config") or {}, where, safe_mode)
            if class_name not in known and bare not in known:
                raise ConfigError(
                    f"Layer {where!r} is of class {class_name!r}, which is neither a Keras built-in nor "
                    "registered. If you trust it, pass it by name: load_model(path, "
                    f"custom_objects={{{bare!r}: {bare}}}), or register it with "
                    "tf_keras.utils.register_keras_serializable."
                )
            path = path + [str(where)]
        for value in node.values():
            visit(value, path)

    visit(config, [])
    return sorted(used)


def _check_hub_handle(config, where, safe_mode):
    handle = config.get("handle")
    if handle is None or not safe_mode:
        return
    if not isinstance(handle, str) or _is_remote(handle):
        raise SecurityError(
            f"TF Hub layer {where!r} has handle {handle!r}: loading it would fetch that URL. tfmm loads hub "
            f"encoders from local folders only; download it once and point the model at the folder, or opt in "
            f"with {_OPT_IN}."
        )
    if not os.path.isfile(os.path.join(handle, "saved_model.pb")):
        raise ConfigError(
            f"TF Hub layer {where!r} has handle {handle!r}, which is not a local SavedModel folder "
            "(no saved_model.pb there). Put the encoder's folder at that path, then load again."
        )


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
    objects = _custom_objects(custom_objects)
    if kind == "savedmodel":
        if safe_mode:
            raise SecurityError(
                f"{path!r} is a SavedModel folder: tfmm cannot check what its Keras metadata rebuilds. "
                f"Re-save it as .keras, or, if you trust it, use {_OPT_IN}."
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
    with zipfile.ZipFile(path) as z:
        meta = json.loads(z.read("tfmm.json"))
        if meta.get("format") != FORMAT:
            raise ConfigError(f"{path!r} is a tfmm model of format {meta.get('format')!r}; this tfmm reads {FORMAT!r}.")
        config = z.read("model.json")
        weights = np.load(io.BytesIO(z.read("weights.npz")), allow_pickle=False)
        arrays = {name: weights[name] for name in weights.files}
    check_model_config(config, safe_mode=safe_mode, custom_objects=custom_objects)
    with _scope(objects):
        model = _guard(path, lambda: keras.models.model_from_json(config.decode("utf-8")))
        if _has_tfmot_wrappers(model):
            # Rebuilt from JSON, a QAT quantize_layer builds its range variables twice; a clone
            # builds them once, as the saved model had them (get_weights() copies then fit).
            model = keras.models.clone_model(model)
    _set_layer_weights(model, meta.get("weights", []), arrays, path)
    if compile and meta.get("compile"):
        training = meta["compile"]
        with _scope(objects):
            model.compile(optimizer=keras.optimizers.get(training["optimizer"]),
                          loss=keras.losses.get(training["loss"]), metrics=training.get("metrics") or None)
    return model


def _layer_weights(model):
    """`[(layer name, weight name, variable)]` in layer order (what `.tfmm` files store)."""
    return [(layer.name, w.name, w) for layer in model.layers for w in layer.weights]


def _set_layer_weights(model, entries, arrays, path):
    """Assign saved weights layer by layer, by weight name.

    A weight is matched by its full name, else by its last name part (variables of a
    rebuilt layer may sit in another name scope).
    """
    saved = {}
    for key, (layer, name) in zip((f"w{i}" for i in range(len(entries))), entries):
        saved.setdefault(layer, {})[name] = arrays[key]
    pairs, used = [], set()
    for layer, name, variable in _layer_weights(model):
        values = saved.get(layer, {})
        base = name.split("/")[-1]
        match = name if name in values else next((n for n in values if n.split("/")[-1] == base), None)
        if match is None or tuple(values[match].shape) != tuple(variable.shape):
            raise ConfigError(f"{path!r}: no saved value fits weight {name!r} of layer {layer!r}. The file "
                              "is damaged or from another model; save the model again.")
        pairs.append((variable, values[match]))
        used.add((layer, match))
    unused = [(layer, name) for layer, names in saved.items() for name in names if (layer, name) not in used]
    if unused:
        raise ConfigError(f"{path!r}: saved weights {unused[:3]} fit no weight of the rebuilt model. "
                          "The file is damaged; save the model again.")
    keras.backend.batch_set_value(pairs)


def _has_tfmot_wrappers(model):
    return any(type(layer).__name__ in _WRAPPER_CLASSES for layer in model.layers)


def _compile_state(model):
    """The optimizer / loss / metric names of a compiled model, when they are plain names."""
    optimizer = getattr(model, "optimizer", None)
    loss = getattr(model, "loss", None)
    if optimizer is None or loss is None:
        return None
    try:
        loss_name = loss if isinstance(loss, str) else keras.losses.serialize(loss)
        return {"optimizer": keras.optimizers.serialize(optimizer), "loss": loss_name,
                "metrics": [m for m in (getattr(model, "compiled_metrics", None) and
                                        model.compiled_metrics._user_metrics or []) if isinstance(m, str)]}
    except (TypeError, ValueError, AttributeError):
        return None


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
            _write_tfmm(model, tmp)
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
    written = [os.fspath(path)]
    if tokenizer is not None:
        written.append(tokenizer.save(sidecar_path(path, "vocabulary")))
    if class_names is not None:
        written.append(atomic_write_text(sidecar_path(path, "labels"), "\n".join(map(str, class_names)) + "\n"))
    if config is not None:
        config.to_yaml(sidecar_path(path, "config"))
        written.append(sidecar_path(path, "config"))
    return written


def _write_tfmm(model, target):
    from tfmm import __version__

    entries = _layer_weights(model)
    values = keras.backend.batch_get_value([v for _, _, v in entries])
    buffer = io.BytesIO()
    np.savez(buffer, **{f"w{i}": value for i, value in enumerate(values)})
    meta = {"format": FORMAT, "tfmm_version": __version__, "keras_version": keras.__version__,
            "weights": [[layer, name] for layer, name, _ in entries], "compile": _compile_state(model)}
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("tfmm.json", json.dumps(meta, indent=1, default=str))
        z.writestr("model.json", model.to_json())
        z.writestr("weights.npz", buffer.getvalue())


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
