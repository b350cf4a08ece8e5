"""The export table of modes and the frozen `ExportConfig` that `export_tflite` runs on.

One row per quantization mode says what it needs (calibration data), how recurrent
layers are laid out by default and how the converter is set up; `new_converter`
is the one place a converter is made from an exported SavedModel.
"""

import dataclasses
from typing import Optional

import tensorflow as tf

from tfmm._choices import MODES, PREFERENCES
from tfmm.config import Config
from tfmm.errors import ConfigError

__all__ = ["ExportConfig", "MODE_TABLE", "Mode", "new_converter"]


@dataclasses.dataclass(frozen=True)
class Mode:
    """One quantization mode of the export table.

    Attributes:
        name: The `quantization` value (`float32`, `dynamic`, ...).
        calibrated: Needs `representative_data` (activation ranges).
        rnn_layout: Default RNN layout (`fused` is smallest; `unrolled` is what
            int8 kernels run fast and calibrate well).
        weights: What the weights become.
        activations: What the activations compute in.
    """

    name: str
    calibrated: bool
    rnn_layout: str
    weights: str
    activations: str

    def configure(self, converter, calibration=None, *, int8_io=True, per_channel_dense=False):
        """Set `converter` (from `new_converter`) up for this mode."""
        if self.name == "float32":
            return converter
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if self.calibrated:
            converter.representative_dataset = calibration
            converter._experimental_disable_per_channel_quantization_for_dense_layers = not per_channel_dense
        if self.name == "float16":
            converter.target_spec.supported_types = [tf.float16]
        elif self.name == "int8":
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            if int8_io:
                converter.inference_input_type = tf.int8  # float inputs only; token ids stay int32
                converter.inference_output_type = tf.int8
        elif self.name == "int16x8":
            converter.target_spec.supported_ops = [
                tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8
            ]
        return converter


MODE_TABLE = {mode.name: mode for mode in (
    Mode("float32", False, "fused", "float32", "float32"),
    Mode("dynamic", False, "fused", "int8", "float32 (int8 matmuls where the kernel allows)"),
    Mode("float16", False, "fused", "float16", "float32"),
    Mode("int8", True, "unrolled", "int8", "int8 (int8 inputs / outputs with int8_io)"),
    Mode("int16x8", True, "unrolled", "int8", "int16"),
)}
assert tuple(MODE_TABLE) == MODES  # the CLI reads the names from tfmm._choices without TensorFlow


def new_converter(saved_model_dir, calibration=None):
    """Return a `TFLiteConverter` of the `serving_default` signature `export_saved_model` wrote.

    Args:
        saved_model_dir: The SavedModel folder.
        calibration: Optional representative-dataset callable: the converter is
            then set to calibrate (what selective int8 and the layer-error debugger need).

    Returns:
        A fresh `tf.lite.TFLiteConverter`.

    Example:
        >>> converter = new_converter("exported/saved_model")  # doctest: +SKIP
    """
    converter = tf.lite.TFLiteConverter.from_saved_model(saved_model_dir, signature_keys=["serving_default"])
    if calibration is not None:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = calibration
    return converter


@dataclasses.dataclass(frozen=True)
class ExportConfig(Config):
    """Every choice `export_tflite` makes, checked once (see `export_tflite` for each).

    Args:
        quantization: A mode of `MODE_TABLE`.
        num_calibration_samples: Calibration examples (int8 / int16x8).
        int8_io: int8 inputs / outputs for float tensors (int8).
        prefer: `"size"` or `"latency"` (int8).
        max_accuracy_drop: Largest accuracy loss allowed, a fraction (int8), or None.
        rnn_layout: `"fused"`, `"unrolled"`, or None for the mode's default.
        compact: Drop internal tensor names.
        per_channel_dense: One weight scale per output unit of dense layers.
        layer_errors: Measure each tensor's int8 error (int8).
        polyphase: Lower 1-channel strided Conv1D layers (`prepare_for_export`).

    Raises:
        ConfigError: A bad value, or a selective option without int8.

    Example:
        >>> tfmm.export.ExportConfig(quantization="int8", prefer="latency").layout
        'unrolled'
    """

    quantization: str = "int8"
    num_calibration_samples: int = 100
    int8_io: bool = True
    prefer: str = "size"
    max_accuracy_drop: Optional[float] = None
    rnn_layout: Optional[str] = None
    compact: bool = True
    per_channel_dense: bool = False
    layer_errors: bool = False
    polyphase: bool = True

    def validate(self):
        from tfmm.export.rnn import check_rnn_layout

        self._check_choice("quantization", MODES)
        self._check_choice("prefer", PREFERENCES)
        if self.rnn_layout is not None:
            check_rnn_layout(self.rnn_layout)
        self._check_positive_int("num_calibration_samples")
        for name in ("int8_io", "compact", "per_channel_dense", "layer_errors", "polyphase"):
            self._check_bool(name)
        if self.selective and self.quantization != "int8":
            raise ConfigError(
                "`prefer='latency'` and `max_accuracy_drop` choose which ops stay float in an int8 file; they "
                f"need quantization='int8'. Received: quantization={self.quantization!r}")
        drop = self.max_accuracy_drop
        if drop is not None and (isinstance(drop, bool) or not isinstance(drop, (int, float)) or not 0 <= drop < 1):
            self._fail("max_accuracy_drop", "must be a fraction in [0, 1), e.g. 0.01 for one point")

    @property
    def mode(self):
        """The `Mode` row of `quantization`."""
        return MODE_TABLE[self.quantization]

    @property
    def layout(self):
        """The RNN layout used: `rnn_layout`, or the mode's default."""
        return self.rnn_layout or self.mode.rnn_layout

    @property
    def selective(self):
        """True when some ops of the int8 file are chosen to stay float."""
        return self.prefer == "latency" or self.max_accuracy_drop is not None
