"""The one place tfmm drives the LiteRT interpreter (`ai_edge_litert`)."""

import os

import numpy as np

from tfmm._quiet import native_stderr_captured
from tfmm._args import positive_int
from tfmm.errors import ConfigError, ExportError

__all__ = ["TFLiteRunner"]


def _interpreter_class():
    from ai_edge_litert.interpreter import Interpreter

    return Interpreter


def _no_delegates():
    from ai_edge_litert.interpreter import OpResolverType

    return OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES


class TFLiteRunner:
    """Run a `.tflite` file through its signature runner, on float or integer inputs.

    Inputs are given as float / int arrays of the model's *logical* values;
    int8 / int16 inputs are quantized with each tensor's scale and zero point, and
    quantized outputs are dequantized, so callers always see real values.

    Args:
        path: The `.tflite` file.
        num_threads: Interpreter threads (XNNPACK is on by default in LiteRT).
        signature: Signature key; defaults to the only / first signature.
        xnnpack: Apply LiteRT's default XNNPACK delegate (False: TFLite's builtin
            kernels only, to see what XNNPACK brings).

    Raises:
        ExportError: The file is missing, corrupt or has no signature.

    Example:
        >>> runner = tfmm.export.TFLiteRunner("model.tflite")  # doctest: +SKIP
        >>> probs = runner({"image": x["image"][:1], "text": x["text"][:1]})  # doctest: +SKIP
    """

    def __init__(self, path, *, num_threads=1, signature=None, xnnpack=True):
        positive_int(num_threads, "num_threads")
        if not isinstance(path, (str, os.PathLike)):
            raise ConfigError(f"`path` must be the path of a .tflite file. Received: {type(path).__name__}")
        self.path = os.fspath(path)
        if not os.path.isfile(self.path):
            raise ExportError(f"No TFLite file at {self.path!r}.")
        try:
            with native_stderr_captured():  # LiteRT logs the XNNPACK delegate when it applies it
                options = {} if xnnpack else {"experimental_op_resolver_type": _no_delegates()}
                self.interpreter = _interpreter_class()(model_path=self.path, num_threads=num_threads, **options)
                self.interpreter.allocate_tensors()  # so that state variables can be reset
            signatures = self.interpreter.get_signature_list()
            if not signatures:
                raise ValueError("the model has no signature")
            self.signature = signature or next(iter(signatures))
            self.runner = self.interpreter.get_signature_runner(self.signature)
            self.input_details = self.runner.get_input_details()
            self.output_details = self.runner.get_output_details()
        except ExportError:
            raise
        except Exception as e:  # the interpreter raises ValueError / RuntimeError on bad files
            raise ExportError(
                f"{self.path!r} is not a readable TFLite model ({str(e).splitlines()[0]}). "
                "Re-export it; a truncated or corrupt file cannot be run."
            ) from None

    @staticmethod
    def _quantize(value, detail):
        dtype = detail["dtype"]
        scale, zero_point = detail["quantization"]
        if np.issubdtype(dtype, np.integer) and scale:
            info = np.iinfo(dtype)
            value = np.clip(np.round(np.asarray(value, np.float32) / scale + zero_point), info.min, info.max)
        return np.asarray(value).astype(dtype)

    @staticmethod
    def _dequantize(value, detail):
        scale, zero_point = detail["quantization"]
        if np.issubdtype(value.dtype, np.integer) and scale:
            return (value.astype(np.float32) - zero_point) * scale
        return value.astype(np.float32)

    def __call__(self, features):
        """Run one example (batch 1) and return `{output_name: float array}`.

        Args:
            features: Dict `{input_name: array of shape (1, ...)}`.

        Returns:
            The dequantized outputs.

        Raises:
            ExportError: An input is missing or has the wrong shape.
        """
        missing = sorted(set(self.input_details) - set(features))
        if missing:
            raise ExportError(f"Inputs {missing} are missing; {self.path!r} needs {sorted(self.input_details)}.")
        feed = {}
        for name, detail in self.input_details.items():
            value = np.asarray(features[name])
            if tuple(value.shape) != tuple(detail["shape"]):
                raise ExportError(
                    f"Input {name!r} has shape {tuple(value.shape)}; {self.path!r} expects "
                    f"{tuple(detail['shape'])}."
                )
            feed[name] = self._quantize(value, detail)
        outputs = self.invoke(feed)
        return {k: self._dequantize(v, self.output_details[k]) for k, v in outputs.items()}

    def invoke(self, feed):
        """Run already-quantized inputs from a fresh state; return raw outputs.

        Fused LSTM ops keep their state in variable tensors that survive between
        invocations; they are reset first so that each example is independent
        (an Android app does the same with `Interpreter.resetVariableTensors()`).

        Args:
            feed: `{input_name: array}` in the file's input dtypes.

        Returns:
            `{output_name: array}` in the file's output dtypes.
        """
        self.interpreter.reset_all_variables()
        return self.runner(**feed)

    def predict(self, features, *, progress=False):
        """Run every example of a dict of arrays; return the first output, stacked.

        Args:
            features: Dict of arrays with a leading example axis.
            progress: Show a progress bar (tqdm) on long runs.

        Returns:
            A float array `(examples, ...)`.
        """
        n = len(next(iter(features.values())))
        indices = range(n)
        if progress:
            from tqdm.auto import tqdm

            indices = tqdm(indices, desc="LiteRT", unit="ex", leave=False)
        name = next(iter(self.output_details))
        return np.concatenate(
            [self({k: v[i : i + 1] for k, v in features.items()})[name] for i in indices]
        )

    def ops(self):
        """Return the list of op details (name, inputs, outputs) of the model."""
        return self.interpreter._get_ops_details()  # the public API has no op listing

    def tensor(self, index):
        """Return the details of tensor `index` (dtype, shape, quantization)."""
        return self.interpreter._get_tensor_details(index, subgraph_index=0)
