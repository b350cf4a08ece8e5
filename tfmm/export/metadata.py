"""TFLite Metadata inside the `.tflite` file: what an app needs, readable by the LiteRT metadata tools.

Written with the `flatbuffers` package from the published `metadata_schema.fbs`
(TFLite Metadata 1.0.1, file identifier `M001`) - tflite-support's writer needs an
older protobuf than TF 2.21 - as the Model's `TFLITE_METADATA` buffer, with the
associated files (labels, vocabulary) zipped onto the end of the file, as
tflite-support's `MetadataPopulator` lays them out. The interpreter ignores both.

Per input: name, description (what the values mean), normalization from the raw
values an app holds (image bytes 0-255, PCM16 samples) and the value range; per
output: the class labels file (`TENSOR_AXIS_LABELS`); the text input's vocabulary
(`VOCABULARY`, one token a line, line i is id i).

Example:
    >>> meta = tfmm.export.read_metadata("model_int8.tflite")  # doctest: +SKIP
    >>> meta["inputs"][0]["name"], sorted(meta["files"])  # doctest: +SKIP
    ('audio', ['labels.txt', 'vocab.txt'])
"""

import io
import zipfile

import flatbuffers
import numpy as np
from flatbuffers import number_types as N
from flatbuffers.table import Table

from tfmm.errors import ExportError
from tfmm.export.compact import compact_tflite

__all__ = ["embed_metadata", "read_metadata"]

_IDENTIFIER = b"M001"
_NAME = "TFLITE_METADATA"
_PARSER_VERSION = "1.0.1"
_FILE_TYPES = {"labels": 2, "vocabulary": 5}  # AssociatedFileType TENSOR_AXIS_LABELS, VOCABULARY
_TYPE_NAMES = {v: k for k, v in _FILE_TYPES.items()}
_NORMALIZATION = 1  # ProcessUnitOptions.NormalizationOptions

# What tfmm's own inputs hold, and the raw value an app starts from.
_KNOWN_INPUTS = {
    "image": ("grayscale image, float values in [0, 1]: pixel byte / 255", 0.0, 255.0),
    "audio": ("mono PCM, float samples in [-1, 1]: PCM16 sample / 32768", 0.0, 32768.0),
    "text": ("int32 token ids from the vocabulary file (0 pads, 1 is unknown); see the Java "
             "TextTokenizer under android/", None, None),
}


def _strings(builder, values):
    return [builder.CreateString(v) for v in values]


def _vector(builder, offsets):
    builder.StartVector(4, len(offsets), 4)
    for offset in reversed(offsets):
        builder.PrependUOffsetTRelative(offset)
    return builder.EndVector()


def _floats(builder, values):
    builder.StartVector(4, len(values), 4)
    for value in reversed(values):
        builder.PrependFloat32(float(value))
    return builder.EndVector()


def _table(builder, fields):
    """A table from `[(slot, kind, value)]`; kind `o` (offset) or `b` (byte)."""
    builder.StartObject(max(slot for slot, _, _ in fields) + 1)
    for slot, kind, value in fields:
        if kind == "o":
            builder.PrependUOffsetTRelativeSlot(slot, value, 0)
        else:
            builder.PrependInt8Slot(slot, value, -1)  # -1: always written
    return builder.EndObject()


def _file(builder, name, kind, description):
    name, description = _strings(builder, [name, description])
    return _table(builder, [(0, "o", name), (1, "o", description), (2, "b", _FILE_TYPES[kind])])


def _tensor(builder, entry):
    fields = []
    files = [_file(builder, f["name"], f["type"], f["description"]) for f in entry.get("files", ())]
    stats = None
    if entry.get("range") is not None:
        high, low = _floats(builder, [entry["range"][1]]), _floats(builder, [entry["range"][0]])
        stats = _table(builder, [(0, "o", high), (1, "o", low)])
    units = []
    if entry.get("normalization") is not None:
        mean, std = (_floats(builder, [v]) for v in entry["normalization"])
        options = _table(builder, [(0, "o", mean), (1, "o", std)])
        units.append(_table(builder, [(0, "b", _NORMALIZATION), (1, "o", options)]))
    name, description = _strings(builder, [entry["name"], entry.get("description", "")])
    fields += [(0, "o", name), (1, "o", description)]
    if units:
        fields.append((4, "o", _vector(builder, units)))
    if stats is not None:
        fields.append((5, "o", stats))
    if files:
        fields.append((6, "o", _vector(builder, files)))
    return _table(builder, fields)


def _metadata_bytes(name, description, version, inputs, outputs, author):
    builder = flatbuffers.Builder(1024)
    input_tables = _vector(builder, [_tensor(builder, e) for e in inputs])
    output_tables = _vector(builder, [_tensor(builder, e) for e in outputs])
    subgraph = _table(builder, [(2, "o", input_tables), (3, "o", output_tables)])
    subgraphs = _vector(builder, [subgraph])
    name, description, version, author, parser = _strings(
        builder, [name, description, version, author, _PARSER_VERSION])
    root = _table(builder, [(0, "o", name), (1, "o", description), (2, "o", version), (3, "o", subgraphs),
                            (4, "o", author), (7, "o", parser)])
    builder.Finish(root, file_identifier=_IDENTIFIER)
    return bytes(builder.Output())


def _describe_inputs(summary):
    entries = []
    for tensor in summary.inputs:
        text, offset, scale = _KNOWN_INPUTS.get(tensor.name, (f"{tensor.dtype} input `{tensor.name}`", None, None))
        entry = {"name": tensor.name, "description": f"{text}; shape {list(tensor.shape)}, {tensor.dtype}"}
        if offset is not None:
            entry["normalization"] = (offset, scale)
        if tensor.dtype in ("int8", "int16") and tensor.scale:
            info = np.iinfo(tensor.dtype)
            entry["range"] = ((info.min - tensor.zero_point) * tensor.scale, (info.max - tensor.zero_point) * tensor.scale)
        entries.append(entry)
    return entries


def embed_metadata(content, summary, *, name, version, tokenizer=None, class_names=None, description="",
                   compact=True):
    """Return `content` (a `.tflite` file's bytes) with TFLite Metadata and its associated files.

    Args:
        content: The model's bytes.
        summary: Its `TFLiteSummary` (inputs, outputs, quantization).
        name: Model name.
        version: Version string (tfmm writes its own version and the mode).
        tokenizer: Optional `TextTokenizer`: `vocab.txt` (one token a line) on the text input.
        class_names: Optional class names: `labels.txt` on every output.
        description: Free text.
        compact: Re-serialize with `compact_tflite` (keeps a compacted file as small as it was).

    Returns:
        The new bytes (the interpreter runs them like the old ones).

    Example:
        >>> content = embed_metadata(content, inspect_tflite(path), name="tfmm_small", version="0.1.0")  # doctest: +SKIP
    """
    from ai_edge_litert import schema_py_generated as schema
    from ai_edge_litert.tools import flatbuffer_utils

    inputs = _describe_inputs(summary)
    files = {}
    if tokenizer is not None and any(e["name"] == "text" for e in inputs):
        files["vocab.txt"] = "\n".join(tokenizer.vocabulary) + "\n"
        next(e for e in inputs if e["name"] == "text")["files"] = [
            {"name": "vocab.txt", "type": "vocabulary", "description": "token of id i on line i (0: padding)"}]
    outputs = [{"name": t.name, "description": f"class probabilities; shape {list(t.shape)}, {t.dtype}"}
               for t in summary.outputs]
    if class_names is not None:
        files["labels.txt"] = "\n".join(map(str, class_names)) + "\n"
        for entry in outputs:
            entry["files"] = [{"name": "labels.txt", "type": "labels", "description": "class of output index i"}]
    meta = _metadata_bytes(name, description, version, inputs, outputs, author="tfmm")
    graph = flatbuffer_utils.read_model_from_bytearray(bytearray(content))
    graph.metadata = [m for m in (graph.metadata or []) if m.name not in (_NAME, _NAME.encode())]
    buffer = schema.BufferT()
    buffer.data = np.frombuffer(meta, dtype=np.uint8)
    graph.buffers.append(buffer)
    entry = schema.MetadataT()
    entry.name, entry.buffer = _NAME, len(graph.buffers) - 1
    graph.metadata.append(entry)
    serialized = bytes(flatbuffer_utils.convert_object_to_bytearray(graph))
    out = io.BytesIO(compact_tflite(serialized) if compact else serialized)
    if files:
        out.seek(0, io.SEEK_END)
        with zipfile.ZipFile(out, "a", compression=zipfile.ZIP_STORED) as archive:
            for file_name, text in files.items():
                archive.writestr(file_name, text.encode("utf-8"))
    return out.getvalue()


class _Reader:
    """Read tables of the metadata flatbuffer by slot (the schema's field order)."""

    def __init__(self, buf, pos):
        self.t = Table(buf, pos)

    def _offset(self, slot):
        return self.t.Offset(4 + 2 * slot)

    def string(self, slot):
        o = self._offset(slot)
        return self.t.String(o + self.t.Pos).decode("utf-8") if o else None

    def byte(self, slot):
        o = self._offset(slot)
        return self.t.Get(N.Int8Flags, o + self.t.Pos) if o else None

    def table(self, slot):
        o = self._offset(slot)
        return _Reader(self.t.Bytes, self.t.Indirect(o + self.t.Pos)) if o else None

    def tables(self, slot):
        o = self._offset(slot)
        if not o:
            return []
        start, count = self.t.Vector(o), self.t.VectorLen(o)
        return [_Reader(self.t.Bytes, self.t.Indirect(start + 4 * i)) for i in range(count)]

    def floats(self, slot):
        o = self._offset(slot)
        if not o:
            return []
        start = self.t.Vector(o)
        return [self.t.Get(N.Float32Flags, start + 4 * i) for i in range(self.t.VectorLen(o))]


def _read_tensor(r):
    entry = {"name": r.string(0), "description": r.string(1)}
    for unit in r.tables(4):
        if unit.byte(0) == _NORMALIZATION:
            options = unit.table(1)
            entry["normalization"] = {"mean": options.floats(0), "std": options.floats(1)}
    stats = r.table(5)
    if stats is not None:
        entry["range"] = (stats.floats(1)[0], stats.floats(0)[0])
    entry["files"] = [{"name": f.string(0), "description": f.string(1), "type": _TYPE_NAMES.get(f.byte(2), "other")}
                      for f in r.tables(6)]
    return entry


def read_metadata(path):
    """Read the TFLite Metadata and associated files tfmm wrote into a `.tflite` file.

    Args:
        path: The `.tflite` file.

    Returns:
        `{"name", "description", "version", "author", "min_parser_version", "inputs", "outputs",
        "files"}`: inputs / outputs are `[{"name", "description", "normalization", "range",
        "files"}]`, `files` maps each associated file's name to its text.

    Raises:
        ExportError: The file has no TFLite Metadata.

    Example:
        >>> tfmm.export.read_metadata("model_int8.tflite")["files"]["labels.txt"].split()[:3]  # doctest: +SKIP
        ['zero', 'one', 'two']
    """
    from ai_edge_litert import schema_py_generated as schema

    with open(path, "rb") as f:
        data = f.read()
    model = schema.Model.GetRootAs(data, 0)
    buffer = None
    for i in range(model.MetadataLength()):
        entry = model.Metadata(i)
        if entry.Name().decode() == _NAME:
            buffer = model.Buffers(entry.Buffer()).DataAsNumpy().tobytes()
    if buffer is None:
        raise ExportError(f"{path!r} has no TFLite Metadata; export it with tfmm.export.export_tflite.")
    if not flatbuffers.util.BufferHasIdentifier(buffer, 0, _IDENTIFIER):
        raise ExportError(f"{path!r}: its TFLITE_METADATA buffer is not TFLite Metadata (no M001 identifier).")
    root = _Reader(buffer, flatbuffers.encode.Get(N.UOffsetTFlags.packer_type, buffer, 0))
    subgraph = root.tables(3)[0]
    files = {}
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            files = {name: archive.read(name).decode("utf-8") for name in archive.namelist()}
    except zipfile.BadZipFile:
        pass
    return {"name": root.string(0), "description": root.string(1), "version": root.string(2),
            "author": root.string(4), "min_parser_version": root.string(7),
            "inputs": [_read_tensor(t) for t in subgraph.tables(2)],
            "outputs": [_read_tensor(t) for t in subgraph.tables(3)], "files": files}
