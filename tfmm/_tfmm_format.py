"""The `.tfmm` model format: a zip of `tfmm.json` (meta), `model.json` (the Keras config)
and `weights.npz` (one array per weight, in layer order, read with `allow_pickle=False`).

`tfmm.artifacts` checks the config before anything is rebuilt; this module only
reads and writes the three parts.
"""

import io
import json
import zipfile

import numpy as np

from tfmm._keras import keras
from tfmm.errors import ConfigError

__all__ = ["FORMAT", "assign_weights", "read", "write"]

FORMAT = "tfmm.Model/1"


def read(path):
    """Return `(meta, config_json_bytes, {name: array})` of a `.tfmm` file.

    Raises:
        ConfigError: The file is of another format version.
    """
    with zipfile.ZipFile(path) as z:
        meta = json.loads(z.read("tfmm.json"))
        if meta.get("format") != FORMAT:
            raise ConfigError(f"{path!r} is a tfmm model of format {meta.get('format')!r}; this tfmm reads {FORMAT!r}.")
        config = z.read("model.json")
        weights = np.load(io.BytesIO(z.read("weights.npz")), allow_pickle=False)
        arrays = {name: weights[name] for name in weights.files}
    return meta, config, arrays


def write(model, target):
    """Write `model` (config JSON, weights `.npz`, compile state) to the zip file `target`."""
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


def _layer_weights(model):
    """`[(layer name, weight name, variable)]` in layer order (what `.tfmm` files store)."""
    return [(layer.name, w.name, w) for layer in model.layers for w in layer.weights]


def assign_weights(model, meta, arrays, path):
    """Assign the weights `read` returned to the rebuilt `model`, layer by layer, by weight name.

    A weight is matched by its full name, else by its last name part (variables of a
    rebuilt layer may sit in another name scope).
    """
    entries = meta.get("weights", [])
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
