"""Find the ops of a `.tflite` file that LiteRT's XNNPACK delegate refuses to prepare.

When XNNPACK rejects one op, LiteRT only says "failed to create XNNPACK runtime"
for a whole partition of hundreds of ops. Each op is therefore loaded alone, in a
one-op copy of the model (its activations become the inputs): an op that fails
with XNNPACK and prepares without it is one XNNPACK rejects.

The case met so far (TF 2.21): an int8 matmul or convolution whose output was
calibrated to a ~1e-8 scale because the calibration data never reached it with a
non-zero value. XNNPACK needs `input_scale * weight_scale / output_scale < 256`.
`widen_degenerate_scales` gives such outputs the smallest scale XNNPACK accepts
(with a margin): the calibration saw only zeros there, and zero stays exact.
"""

import copy

import numpy as np

from tfmm._quiet import native_stderr_captured

__all__ = ["ops_xnnpack_rejects", "widen_degenerate_scales", "xnnpack_partitions"]

_REQUANTIZED = ("FULLY_CONNECTED", "CONV_2D", "DEPTHWISE_CONV_2D", "BATCH_MATMUL")


def _prepares(content, *, xnnpack):
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    resolver = OpResolverType.AUTO if xnnpack else OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    try:
        with native_stderr_captured():
            Interpreter(model_content=content, experimental_op_resolver_type=resolver).allocate_tensors()
    except (RuntimeError, ValueError):
        return False
    return True


def _scale(tensor):
    q = tensor.quantization
    if q is None or q.scale is None or not len(q.scale):
        return None
    return float(np.max(q.scale))


def _describe(model, graph, index, op):
    from ai_edge_litert.tools import flatbuffer_utils

    name = flatbuffer_utils.opcode_to_name(model, op.opcodeIndex)
    scales = [_scale(graph.tensors[i]) if i >= 0 else None for i in op.inputs]
    out = _scale(graph.tensors[op.outputs[0]])
    if not out:
        return f"op #{index} {name}"
    text = f"op #{index} {name}: input scales {[f'{s:.3g}' for s in scales if s]}, output scale {out:.3g}"
    if name in _REQUANTIZED and len(scales) > 1 and scales[0] and scales[1]:
        ratio = scales[0] * scales[1] / out
        if ratio >= 256:
            text += (f" (input x weight / output scale = {ratio:.0f} >= 256, XNNPACK's limit: the "
                     "calibration data never gave this output a non-zero range)")
    return text


def ops_xnnpack_rejects(content, *, limit=5):
    """Describe the ops of a `.tflite` model that prepare without XNNPACK but not with it.

    Slow (one interpreter per op: ~20 s for 500 ops); meant for the error path.

    Args:
        content: The model's bytes.
        limit: Stop after this many rejected ops.

    Returns:
        A tuple of one-line descriptions (op index in the main graph, op type,
        scales, and the reason when it is a known one); empty if none is found.

    Example:
        >>> ops_xnnpack_rejects(open("model.tflite", "rb").read())  # doctest: +SKIP
        ('op #53 FULLY_CONNECTED: input scales [...], output scale 7.84e-09 (...)',)
    """
    from ai_edge_litert.tools import flatbuffer_utils

    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(content))
    graph = model.subgraphs[0]

    def constant(i):
        data = model.buffers[graph.tensors[i].buffer].data
        return data is not None and len(data) > 0

    found = []
    for index, op in enumerate(graph.operators):
        single = copy.copy(graph)
        single.operators = [op]
        single.inputs = [i for i in op.inputs if i >= 0 and not constant(i)]
        single.outputs = list(op.outputs)
        probe = copy.copy(model)
        probe.subgraphs = [single, *model.subgraphs[1:]]
        probe.signatureDefs = []
        probe_bytes = bytes(flatbuffer_utils.convert_object_to_bytearray(probe))
        if not _prepares(probe_bytes, xnnpack=True) and _prepares(probe_bytes, xnnpack=False):
            found.append(_describe(model, graph, index, op))
            if len(found) >= limit:
                break
    return tuple(found)


# Margin below XNNPACK's limit of 256 for a widened output scale.
_SAFE_RATIO = 128.0


def widen_degenerate_scales(content):
    """Widen int8 output scales that XNNPACK refuses (a range calibration never opened).

    For every matmul / convolution whose `input_scale * weight_scale / output_scale`
    is 256 or more, the output scale becomes `input_scale * weight_scale / 128`;
    the zero point is kept, so a zero output stays exactly zero. The calibration
    data saw only zeros at such an output, so no calibrated value is lost.

    Args:
        content: The bytes of an int8 `.tflite` model.

    Returns:
        `(new bytes, [one-line description of each widened op])`; `content` itself
        and an empty list when nothing needed widening.

    Example:
        >>> content, widened = widen_degenerate_scales(open("m.tflite", "rb").read())  # doctest: +SKIP
    """
    from ai_edge_litert.tools import flatbuffer_utils

    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(content))
    widened = []
    for g, graph in enumerate(model.subgraphs):
        for index, op in enumerate(graph.operators):
            name = flatbuffer_utils.opcode_to_name(model, op.opcodeIndex)
            if name not in _REQUANTIZED or len(op.inputs) < 2 or min(op.inputs[:2]) < 0:
                continue
            scales = [_scale(graph.tensors[i]) for i in op.inputs[:2]]
            output = graph.tensors[op.outputs[0]]
            out = _scale(output)
            if not out or not all(scales) or scales[0] * scales[1] / out < 256:
                continue
            new = scales[0] * scales[1] / _SAFE_RATIO
            output.quantization.scale = np.full_like(np.asarray(output.quantization.scale, dtype=np.float32), new)
            widened.append(f"{'' if g == 0 else f'subgraph {g} '}op #{index} {name} "
                           f"(output scale {out:.3g} -> {new:.3g})")
    if not widened:
        return content, []
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model)), widened


def xnnpack_partitions(path):
    """How many partitions the XNNPACK delegate splits a `.tflite` file into (1 is best).

    Each partition is one delegate node in the interpreter's graph; ops between them
    run on TFLite's builtin kernels and every boundary costs a hand-over.

    Args:
        path: A `.tflite` file.

    Returns:
        The number of XNNPACK delegate nodes (0: XNNPACK took nothing).

    Raises:
        ExportError: The file cannot be read.

    Example:
        >>> tfmm.export.xnnpack.xnnpack_partitions("model_int8.tflite")  # doctest: +SKIP
        4
    """
    from tfmm.export.interpreter import TFLiteRunner

    return sum(op["op_name"] == "DELEGATE" for op in TFLiteRunner(path).ops())
