"""Make a `.tflite` flatbuffer smaller without changing what it computes.

Three savings, measured on the `small` preset's int8 file (245,128 bytes before
the last two):
- The converter names every intermediate tensor after the TensorFlow ops fused
  into it (`model/text_lstm1/while/.../MatMul;model/...`). An unrolled LSTM has
  hundreds of such tensors: their names were 26% of the int8 file (319,792 ->
  236,024 bytes) and 5% of the float32 one. The interpreter never reads them;
  apps address tensors through the signature, whose tensors keep their names.
  (`ai_edge_litert.tools.flatbuffer_utils.strip_strings` also drops the
  signatures, so it cannot be used as is.)
- Small integer vectors (op inputs / outputs, shapes) written as plain lists
  instead of aligned numpy vectors: -8,376 bytes.
- Equal quantization parameters and op options written once and shared (a
  flatbuffer may point twice to one table): 533 quantized tensors had only 158
  distinct (scale, zero point) sets (every LOGISTIC output has 1/256, -128):
  -12,200 bytes more.
- Equal number vectors written once (`_DedupBuilder`): per-channel zero points
  are all-zero int64 vectors of a few lengths (12,880 bytes over 30 tables), and
  460 tensor shapes have 46 distinct values.
"""

import flatbuffers
import numpy as np

__all__ = ["compact_tflite"]


class _Shared:
    """Packs one flatbuffer table once per builder; later users get the same offset."""

    def __init__(self, table):
        self.table = table
        self.offsets = {}

    def Pack(self, builder):  # noqa: N802  (the flatbuffers object API's name)
        key = id(builder)
        if key not in self.offsets:
            self.offsets[key] = self.table.Pack(builder)
        return self.offsets[key]


class _DedupBuilder(flatbuffers.Builder):
    """A flatbuffers builder that writes each distinct numpy vector once.

    A flatbuffer may point to one vector from several tables; the interpreter
    only reads them, so sharing is invisible to it.
    """

    def __init__(self, size=1024):
        super().__init__(size)
        self._vectors = {}

    def CreateNumpyVector(self, x):  # noqa: N802  (flatbuffers' name)
        key = (x.dtype.str, x.size, x.tobytes())
        if key not in self._vectors:
            self._vectors[key] = super().CreateNumpyVector(x)
        return self._vectors[key]


def _key(table):
    """A hashable image of a flat flatbuffer table (numbers and number arrays)."""
    def plain(value):
        if isinstance(value, np.ndarray):
            return (value.dtype.str, value.tobytes())
        if isinstance(value, (list, tuple)):
            return tuple(plain(v) for v in value)
        return value

    return (type(table).__name__, tuple(sorted((k, plain(v)) for k, v in vars(table).items())))


def _share(tables, pool):
    """Replace each table by the `_Shared` wrapper of its first equal; None stays None."""
    shared = []
    for table in tables:
        if table is None or any(hasattr(v, "Pack") for v in vars(table).values()):
            shared.append(table)  # nested tables (e.g. custom quantization details): keep as is
            continue
        shared.append(pool.setdefault(_key(table), _Shared(table)))
    return shared


def compact_tflite(content):
    """Return `content` smaller and equivalent: internal names dropped, equal tables shared.

    Signature inputs / outputs, signature keys, op codes and metadata are kept;
    weights, shapes and quantization values are untouched, so the model computes
    exactly the same outputs.

    Args:
        content: The bytes of a `.tflite` model.

    Returns:
        The bytes of the smaller, equivalent model.

    Raises:
        TypeError: `content` is not bytes.

    Example:
        >>> small = compact_tflite(converter.convert())  # doctest: +SKIP
    """
    if not isinstance(content, (bytes, bytearray)):
        raise TypeError(f"`content` must be the bytes of a .tflite model (open(path, 'rb').read()). "
                        f"Received: {type(content).__name__}")
    from ai_edge_litert.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model_from_bytearray(bytearray(content))
    keep = set()
    for signature in model.signatureDefs or ():
        for tensor_map in list(signature.inputs or ()) + list(signature.outputs or ()):
            keep.add((signature.subgraphIndex, tensor_map.tensorIndex))
    pool = {}
    for g, subgraph in enumerate(model.subgraphs):
        for t, tensor in enumerate(subgraph.tensors):
            if (g, t) not in keep:
                tensor.name = None
            if tensor.shape is not None:
                tensor.shape = np.asarray(tensor.shape, dtype=np.int32)
        shared = _share([tensor.quantization for tensor in subgraph.tensors], pool)
        for tensor, quantization in zip(subgraph.tensors, shared):
            tensor.quantization = quantization
        shared = _share([op.builtinOptions for op in subgraph.operators], pool)
        for op, options in zip(subgraph.operators, shared):
            op.builtinOptions = options
    builder = _DedupBuilder()
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())
