"""`export_saved_model`: the batch-1 serving signature every TFLite conversion starts from.

`from_keras_model` fails on the LSTM ("TensorListReserve ... element_shape to be
static"): tfmm converts a batch-1 signature with the model's input names, saved as
a SavedModel so calibration finds its signature.
"""

import os
import shutil
import tempfile

import tensorflow as tf

from tfmm._args import require_model
from tfmm._files import TMP_PREFIX
from tfmm._keras import check_keras2
from tfmm.errors import ExportError
from tfmm.export.prepare import prepare_for_export

__all__ = ["export_saved_model"]


def _signature(model):
    specs = {
        t.name.split(":")[0]: tf.TensorSpec((1, *t.shape[1:]), t.dtype, name=t.name.split(":")[0])
        for t in model.inputs
    }
    names = list(model.output_names)

    @tf.function
    def serve(inputs):
        outputs = model(inputs, training=False)
        outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
        return dict(zip(names, outputs))

    return serve.get_concrete_function(specs)


def export_saved_model(model, path, *, rnn_layout="fused", polyphase=True):
    """Save `model` as a SavedModel with a batch-1 `serving_default` signature.

    The signature's inputs are named like the model's inputs (`image`, `text`,
    `audio`); pruning wrappers are stripped and RNNs laid out first, as for TFLite.

    Args:
        model: A `tf_keras` model.
        path: Destination folder (replaced atomically if it exists).
        rnn_layout: `"fused"` or `"unrolled"` (see `prepare_for_export`).
        polyphase: Lower 1-channel strided Conv1D layers (see `prepare_for_export`).

    Returns:
        The folder path.

    Raises:
        TypeError: `model` is a Keras 3 model.
        ExportError: Saving failed (nothing is left at `path`).

    Example:
        >>> tfmm.export.export_saved_model(model, "exported/saved_model")  # doctest: +SKIP
    """
    require_model(model, "model")
    check_keras2(model)
    path = os.path.abspath(os.fspath(path))
    model = prepare_for_export(model, rnn_layout=rnn_layout, polyphase=polyphase)
    parent = os.path.dirname(path)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(dir=parent, prefix=f"{TMP_PREFIX}{os.getpid()}-savedmodel-")  # swept if killed
    try:
        # Only the signature and the variables it reads: saving the Keras model itself
        # traces every layer's call too (measured: 32 s of a 45 s QAT int8 export).
        module = tf.Module()
        module.variables_read = list(model.variables)
        tf.saved_model.save(module, tmp, signatures={"serving_default": _signature(model)})
        if os.path.exists(path):
            shutil.rmtree(path)
        os.replace(tmp, path)
    except Exception as e:
        shutil.rmtree(tmp, ignore_errors=True)
        raise ExportError(f"Saving a SavedModel to {path!r} failed: {str(e).splitlines()[0]}") from e
    return path
