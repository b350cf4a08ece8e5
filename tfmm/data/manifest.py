"""Files on disk listed in a CSV / JSONL manifest -> arrays or a `tf.data.Dataset`.

A manifest has one record per example with any of the columns `image` (PNG or
JPEG path), `text` (a string), `audio` (WAV path) and `label` (class id).
Relative paths are resolved against the manifest's folder, and must stay inside it
unless the caller passes `allow_outside=True`. Files are checked against
`DataLimits` from their size and header before they are decoded.

Length: every check a user's manifest must pass (encoding, header, fields, paths,
limits) sits next to the reader that applies it, so none is skipped by a second reader.
"""

import csv
import dataclasses
import io
import json
import math
import os
import warnings
from typing import Optional

import numpy as np
import tensorflow as tf

from tfmm.data.datasets import from_arrays
from tfmm.data.limits import DataLimits, image_size, wav_info
from tfmm.data.text import TextTokenizer
from tfmm.errors import DataError

__all__ = ["ManifestData", "DataWarning", "read_manifest", "from_manifest"]

MODALITY_COLUMNS = ("image", "text", "audio")


class DataWarning(UserWarning):
    """Records were skipped (only when the user asked to skip bad records)."""


@dataclasses.dataclass
class ManifestData:
    """What `read_manifest` decoded.

    Attributes:
        features: Dict of arrays keyed by modality.
        labels: int32 class ids, or None when the manifest has no label column.
        tokenizer: The `TextTokenizer` used for texts (None without a text column).
        texts: The raw strings of the kept records (None without texts).
        skipped: `[(record_number, reason), ...]` of the records skipped.
    """

    features: dict
    labels: Optional[np.ndarray]
    tokenizer: Optional[TextTokenizer]
    texts: Optional[list]
    skipped: list


_ALLOWED_COLUMNS = (*MODALITY_COLUMNS, "label")


def _decode_text(path, limits):
    size = os.stat(path).st_size
    if size > limits.max_manifest_bytes:
        raise DataError(f"Manifest {path!r} is {size:,} bytes, over the limit of {limits.max_manifest_bytes:,} "
                        "(raise DataLimits.max_manifest_bytes if it is right).")
    with open(path, "rb") as f:
        raw = f.read()
    try:
        return raw.decode("utf-8-sig")  # UTF-8, with or without a byte-order mark
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise DataError(
            f"Manifest {path!r} is not UTF-8: byte 0x{raw[e.start]:02x} on line {line} cannot be decoded. "
            "Save the file as UTF-8 (e.g. `iconv -f latin1 -t utf-8`) and try again."
        ) from None


def _check_header(path, header):
    if not header or all(not (h or "").strip() for h in header):
        raise DataError(f"Manifest {path!r} has no header line; its first line must name the columns, "
                        f"from {list(_ALLOWED_COLUMNS)}.")
    names = [(h or "").strip() for h in header]
    duplicated = sorted({n for n in names if names.count(n) > 1})
    unknown = [n for n in names if n not in _ALLOWED_COLUMNS]
    if duplicated or unknown:
        problem = f"duplicated column(s) {duplicated}" if duplicated else f"unknown column(s) {unknown}"
        raise DataError(f"Manifest {path!r} has {problem}. Found columns {names}; expected some of "
                        f"{list(_ALLOWED_COLUMNS)}, each once.")
    return names


def _check_fields(path, number, record, limits):
    for key, value in record.items():
        if isinstance(value, str) and len(value) > limits.max_field_chars:
            raise DataError(f"Record {number} of {path!r}: field {key!r} has {len(value):,} characters, over the "
                            f"limit of {limits.max_field_chars:,} (raise DataLimits.max_field_chars).")


def _read_csv(path, text, limits):
    csv.field_size_limit(max(csv.field_size_limit(), limits.max_field_chars + 1))
    rows = csv.reader(io.StringIO(text, newline=""))
    try:
        header = _check_header(path, next(rows, None))
        records = []
        for row in rows:
            if not row or all(not v.strip() for v in row):
                continue
            number = len(records) + 1
            if len(row) != len(header):
                raise DataError(
                    f"Record {number} of {path!r} (line {rows.line_num}) has {len(row)} fields; the header "
                    f"has {len(header)} ({', '.join(header)}). Quote fields that contain commas."
                )
            record = dict(zip(header, row))
            _check_fields(path, number, record, limits)
            records.append(record)
            if len(records) > limits.max_records:
                raise DataError(f"Manifest {path!r} has more than {limits.max_records:,} records "
                                "(raise DataLimits.max_records, or split the file).")
    except csv.Error as e:
        if "field larger than field limit" in str(e):
            raise DataError(f"Manifest {path!r} line {rows.line_num} has a field over the limit of "
                            f"{limits.max_field_chars:,} characters (raise DataLimits.max_field_chars).") from None
        raise DataError(f"Manifest {path!r} line {rows.line_num} is not valid CSV ({e}). "
                        "Check the quoting of that line.") from None
    return records


def _read_jsonl(path, text, limits):
    records = []
    for i, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            raise DataError(f"{path!r} line {i} is not valid JSON: {e}") from None
        if not isinstance(record, dict):
            raise DataError(f"{path!r} line {i} is a JSON {type(record).__name__}, not an object; each line "
                            'must be one record such as {"image": "a.png", "label": 3}.')
        unknown = sorted(set(record) - set(_ALLOWED_COLUMNS))
        if unknown:
            raise DataError(f"{path!r} line {i} has unknown key(s) {unknown}; expected some of "
                            f"{list(_ALLOWED_COLUMNS)}.")
        _check_fields(path, i, record, limits)
        records.append(record)
        if len(records) > limits.max_records:
            raise DataError(f"Manifest {path!r} has more than {limits.max_records:,} records "
                            "(raise DataLimits.max_records, or split the file).")
    return records


def _read_records(path, limits):
    if not os.path.isfile(path):
        raise DataError(f"Manifest not found: {path!r}.")
    ext = os.path.splitext(path)[1].lower()
    if ext not in (".csv", ".jsonl", ".ndjson"):
        raise DataError(f"Manifest {path!r} must end in .csv or .jsonl (got {ext!r}).")
    text = _decode_text(path, limits)
    return _read_csv(path, text, limits) if ext == ".csv" else _read_jsonl(path, text, limits)


def _missing(value):
    return value is None or (isinstance(value, float) and math.isnan(value)) or value == ""


def _resolve(folder, value, allow_outside):
    """The file a manifest names, confined to the manifest's folder unless allowed."""
    path = os.path.realpath(os.path.join(folder, os.path.expanduser(value) if allow_outside else value))
    root = os.path.realpath(folder)
    if not allow_outside and os.path.commonpath([root, path]) != root:
        raise ValueError(
            f"{value!r} resolves to {path!r}, outside the manifest's folder {root!r}; move the file "
            "under that folder, or pass allow_outside=True (`--allow-outside`) if the manifest is trusted"
        )
    return path


def _decode_image(path, shape, limits):
    if not os.path.isfile(path):
        raise ValueError(f"image file not found: {path!r}")
    image_size(path, limits)  # header and size checks before any pixel is decoded
    try:
        image = tf.io.decode_image(
            tf.io.read_file(path), channels=shape[-1], expand_animations=False
        )
    except (tf.errors.InvalidArgumentError, tf.errors.UnknownError) as e:
        raise ValueError(f"cannot decode image {path!r} ({e.message.splitlines()[0]})") from None
    image = tf.image.resize(tf.cast(image, tf.float32) / 255.0, shape[:2])
    return image.numpy().astype("float32")


def _decode_audio(path, samples, sample_rate, resample, limits):
    if not os.path.isfile(path):
        raise ValueError(f"audio file not found: {path!r}")
    wav_info(path, limits)  # rate and length checked from the header first
    try:
        wave, rate = tf.audio.decode_wav(tf.io.read_file(path))
    except (tf.errors.InvalidArgumentError, tf.errors.UnknownError) as e:
        raise ValueError(f"cannot decode WAV {path!r} ({e.message.splitlines()[0]})") from None
    wave, rate = wave.numpy().mean(axis=1), int(rate.numpy())
    if rate != sample_rate:
        if not resample:
            raise ValueError(
                f"{path!r} is sampled at {rate} Hz, not {sample_rate} Hz; pass resample=True "
                "or convert the file"
            )
        from scipy.signal import resample_poly

        g = math.gcd(rate, sample_rate)
        wave = resample_poly(wave, sample_rate // g, rate // g)
    wave = wave[:samples]
    wave = np.pad(wave, (0, samples - len(wave)))
    return wave[:, None].astype("float32")


def _label(value, num_classes):
    if isinstance(value, bool):
        raise ValueError(f"label {value!r} is a boolean; use integer class ids (0, 1, ...)")
    try:
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        label = int(value) if isinstance(value, int) else int(str(value).strip())
    except (TypeError, ValueError):
        raise ValueError(f"label {value!r} is not an integer class id") from None
    if label < 0 or (num_classes is not None and label >= num_classes):
        top = "num_classes - 1" if num_classes is None else num_classes - 1
        raise ValueError(f"label {label} is out of range [0, {top}]")
    return label


def read_manifest(
    path,
    *,
    modalities=None,
    image_shape=(28, 28, 1),
    audio_samples=8000,
    sample_rate=8000,
    resample=True,
    tokenizer=None,
    sequence_length=24,
    num_classes=None,
    skip_bad=False,
    allow_outside=False,
    limits=None,
):
    """Decode every record of a manifest into arrays.

    Args:
        path: A `.csv` or `.jsonl` manifest.
        modalities: Which columns to read (default: the modality columns present).
        image_shape: `(height, width, channels)` images are decoded and resized to.
        audio_samples: Length waveforms are trimmed or zero-padded to.
        sample_rate: The rate audio must have; see `resample`.
        resample: Resample other rates (polyphase); if False they are an error.
        tokenizer: A `TextTokenizer`, the path of a saved one, or None to adapt a
            character tokenizer on the manifest's texts.
        sequence_length: Token ids per text when a tokenizer is adapted here.
        num_classes: Optional: labels must lie in `[0, num_classes)`.
        skip_bad: Skip bad records (and warn with their count) instead of raising.
        allow_outside: Let records name files outside the manifest's folder
            (`../`, absolute paths, links). Only for manifests you trust.
        limits: A `DataLimits` (file bytes, pixels, audio seconds, sample rates,
            record count, field length); defaults to `DataLimits()`.

    Returns:
        A `ManifestData`.

    Raises:
        DataError: Missing manifest, not UTF-8, bad header (missing, unknown or
            duplicated columns), a bad line (field count, not a JSON object), a
            limit exceeded, unknown modality, or a bad record (missing,
            undecodable or confined-out file, wrong sample rate, bad label)
            naming the record.

    Example:
        >>> data = tfmm.data.read_manifest("train.csv", num_classes=10)  # doctest: +SKIP
    """
    if not isinstance(path, (str, os.PathLike)):
        raise DataError(f"`path` must be the path of a .csv / .jsonl manifest. Received: {path!r}")
    path = os.fspath(path)
    limits = DataLimits() if limits is None else limits
    if not isinstance(limits, DataLimits):
        raise DataError(f"`limits` must be a tfmm.data.DataLimits. Received: {type(limits).__name__}")
    records = _read_records(path, limits)
    if not records:
        raise DataError(f"Manifest {path!r} has no records.")
    columns = set().union(*(r.keys() for r in records))
    if modalities is None:
        modalities = tuple(m for m in MODALITY_COLUMNS if m in columns)
    unknown = [m for m in modalities if m not in MODALITY_COLUMNS]
    if unknown:
        raise DataError(f"Unknown modality {unknown}: choose from {list(MODALITY_COLUMNS)}.")
    absent = [m for m in modalities if m not in columns]
    if absent or not modalities:
        raise DataError(
            f"Manifest {path!r} has no column for {absent or 'any modality'}; its columns "
            f"are {sorted(columns)}."
        )
    folder = os.path.dirname(os.path.abspath(path))
    decoded = {m: [] for m in modalities}
    labels, texts, skipped = [], [], []
    for number, record in enumerate(records, start=1):
        try:
            row = {}
            for m in modalities:
                value = record.get(m)
                if m == "text":
                    row[m] = "" if _missing(value) else str(value)  # a missing text is empty
                elif _missing(value):
                    raise ValueError(f"no {m} file given")
                elif m == "image":
                    row[m] = _decode_image(_resolve(folder, str(value), allow_outside), tuple(image_shape), limits)
                else:
                    row[m] = _decode_audio(
                        _resolve(folder, str(value), allow_outside), audio_samples, sample_rate, resample, limits
                    )
            label = None if "label" not in columns else _label(record.get("label"), num_classes)
        except ValueError as e:
            if not skip_bad:
                raise DataError(f"Record {number} of {path!r}: {e}.") from None
            skipped.append((number, str(e)))
            continue
        for m, v in row.items():
            decoded[m].append(v)
        if label is not None:
            labels.append(label)
    if skipped:
        warnings.warn(
            f"Skipped {len(skipped)} of {len(records)} records of {path!r}; first: "
            f"record {skipped[0][0]}: {skipped[0][1]}.",
            DataWarning,
            stacklevel=2,
        )
    if not labels and not any(decoded.values()):
        raise DataError(f"No usable record in {path!r} ({len(skipped)} skipped).")
    features = {}
    for m in modalities:
        if m == "text":
            texts = decoded[m]
            if tokenizer is None:
                tokenizer = TextTokenizer.adapt(texts, sequence_length=sequence_length)
            elif not isinstance(tokenizer, TextTokenizer):
                tokenizer = TextTokenizer.load(tokenizer)
            features[m] = tokenizer(texts)
        else:
            features[m] = np.stack(decoded[m])
    return ManifestData(
        features=features,
        labels=np.asarray(labels, dtype="int32") if "label" in columns else None,
        tokenizer=tokenizer if "text" in modalities else None,
        texts=texts if "text" in modalities else None,
        skipped=skipped,
    )


def from_manifest(path, *, batch_size=32, shuffle=False, seed=0, save_vocabulary=None, **options):
    """Read a manifest and return a batched `tf.data.Dataset` of `(features, labels)`.

    Args:
        path: A `.csv` or `.jsonl` manifest (see `read_manifest` for the columns).
        batch_size: Examples per batch.
        shuffle: Reshuffle every epoch.
        seed: Shuffle seed.
        save_vocabulary: Optional path: the text tokenizer is saved there as JSON
            so inference (and the exported model) uses the same ids.
        **options: Passed to `read_manifest` (`image_shape`, `audio_samples`,
            `sample_rate`, `resample`, `tokenizer`, `num_classes`, `skip_bad`, ...).

    Returns:
        A `tf.data.Dataset`.

    Raises:
        DataError: See `read_manifest`.

    Example:
        >>> ds = tfmm.data.from_manifest("train.jsonl", num_classes=10,
        ...                              save_vocabulary="vocab.json")  # doctest: +SKIP
    """
    data = read_manifest(path, **options)
    if save_vocabulary is not None and data.tokenizer is not None:
        data.tokenizer.save(save_vocabulary)
    return from_arrays(
        data.features,
        data.labels,
        batch_size=batch_size,
        shuffle=shuffle,
        seed=seed,
        num_classes=options.get("num_classes"),
    )
