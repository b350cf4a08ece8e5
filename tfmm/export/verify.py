"""`verify_tflite`: run an exported file on data and compare with the Keras model."""

import dataclasses

import numpy as np

from tfmm._metrics import keras_predict, top1_accuracy
from tfmm.data import as_arrays, validate_arrays
from tfmm._args import positive_int, require_model
from tfmm.errors import DataError
from tfmm.export.interpreter import TFLiteRunner

__all__ = ["VerificationReport", "verify_tflite"]


@dataclasses.dataclass(frozen=True)
class VerificationReport:
    """How an exported model behaves on real data.

    Attributes:
        num_examples: Examples run.
        accuracy: Top-1 accuracy against the labels (None without labels).
        reference_accuracy: The Keras model's accuracy on the same data (or None).
        agreement: Fraction of examples where the file and the Keras model pick the
            same class (None without a reference model).
        mean_abs_error: Mean absolute difference of probabilities vs the reference.
        max_abs_error: Largest absolute difference of probabilities.
    """

    num_examples: int
    accuracy: float = None
    reference_accuracy: float = None
    agreement: float = None
    mean_abs_error: float = None
    max_abs_error: float = None

    def to_dict(self):
        """Return a JSON-safe dict."""
        return dataclasses.asdict(self)


def verify_tflite(path, data, *, reference_model=None, max_examples=None, progress=False):
    """Run `path` on `data` with the LiteRT interpreter and measure it.

    int8 inputs are quantized and outputs dequantized with each tensor's scale
    and zero point, so the figures compare real probabilities.

    Args:
        path: The `.tflite` file.
        data: `(features, labels)`, a dict of features, or a batched dataset;
            with `reference_model`, features may be a list in its input order.
        reference_model: Optional Keras model to compare with (agreement, errors).
        max_examples: Run only the first N examples.
        progress: Show a progress bar.

    Returns:
        A `VerificationReport`.

    Raises:
        ExportError: The file cannot be read or its inputs do not match the data.
        DataError: Malformed data.

    Example:
        >>> report = tfmm.export.verify_tflite("m.tflite", (x_test, y_test), reference_model=model)  # doctest: +SKIP
        >>> report.agreement  # doctest: +SKIP
        0.991
    """
    positive_int(max_examples, "max_examples", allow_none=True)
    if reference_model is not None:
        require_model(reference_model, "reference_model")
    runner = TFLiteRunner(path)
    features, labels = as_arrays(data, limit=max_examples, model=reference_model)
    if not features:
        raise DataError("verify_tflite got no examples: the data is empty.")
    num_classes = int(runner.output_details[next(iter(runner.output_details))]["shape"][-1])
    features, labels = validate_arrays(features, labels, num_classes=num_classes if num_classes > 1 else None,
                                       model=reference_model)
    probs = runner.predict(features, progress=progress)
    report = {"num_examples": len(probs)}
    if labels is not None:
        report["accuracy"] = top1_accuracy(probs, labels)
    if reference_model is not None:
        reference = keras_predict(reference_model, features)
        diff = np.abs(reference - probs)
        report.update(
            agreement=top1_accuracy(probs, reference.argmax(-1)),
            mean_abs_error=float(diff.mean()),
            max_abs_error=float(diff.max()),
        )
        if labels is not None:
            report["reference_accuracy"] = top1_accuracy(reference, labels)
    return VerificationReport(**report)
