"""What loading a model file may rebuild: the check behind `tfmm.artifacts.load_model`.

A model's config is read *before* anything is deserialized, and everything that
would run code (`Lambda`), import a module, or fetch a URL (a TF Hub handle) is
refused unless the caller opts in by name.
"""

import json
import os

from tfmm._keras import hub_custom_objects, keras, tfmot
from tfmm.errors import ConfigError, SecurityError

__all__ = ["OPT_IN", "check_model_config", "trusted_classes"]

_KERAS_MODULES = ("keras", "tf_keras", "tensorflow_model_optimization", "tfmm", "tensorflow_hub")
OPT_IN = "load_model(path, safe_mode=False) or `--unsafe-load` on the command line"
# Built-in namespaces a config may name classes from (layers, initializers, ...).
_BUILTIN_NAMESPACES = ("layers", "initializers", "regularizers", "constraints", "optimizers",
                       "losses", "metrics", "activations")
_BUILTIN_MODELS = {"Functional", "Sequential", "Model"}


def trusted_classes(extra=None):
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
    known = set(trusted_classes(custom_objects)) | _builtin_names()
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
                    f"Load only files you trust that way, with {OPT_IN}; better, replace the Lambda by a "
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
            f"with {OPT_IN}."
        )
    if not os.path.isfile(os.path.join(handle, "saved_model.pb")):
        raise ConfigError(
            f"TF Hub layer {where!r} has handle {handle!r}, which is not a local SavedModel folder "
            "(no saved_model.pb there). Put the encoder's folder at that path, then load again."
        )
