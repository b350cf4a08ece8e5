"""Files on disk listed in a CSV / JSONL manifest -> arrays or a `tf.data.Dataset`.

A manifest has one record per example with any of the columns `image` (PNG or
JPEG path), `text` (a string), `audio` (WAV path) and `label` (class id).
Relative paths are resolved against the manifest's folder.
"""

import csv
import dataclasses
import json
import math
import os
import warnings
from typing import Optional

import numpy as np
import tensorflow as tf

from tfmm.data.arrays import from_arrays
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


def _read_records(path):
    if not os.path.isfile(path):
        raise DataError(f"Manifest not found: {path!r}.")
    ext = os.path.splitext(path)[1].lower()
    with open(path, encoding="utf-8", newline="") as f:
        if ext == ".csv":
            return list(csv.DictReader(f))
        if ext in (".jsonl", ".ndjson"):
            records = []
            for i, line in enumerate(f, start=1):
                if line.strip():
                    try:
                        records.append(json.loads(line))
                    except json.JSONDecodeError as e:
                        raise DataError(f"{path!r} line {i} is not valid JSON: {e}") from None
            return records
    raise DataError(f"Manifest {path!r} must end in .csv or .jsonl (got {ext!r}).")


def _missing(value):
    return value is None or (isinstance(value, float) and math.isnan(value)) or value == ""


def _resolve(folder, value):
    return value if os.path.isabs(value) else os.path.join(folder, value)


def _decode_image(path, shape):
    if not os.path.isfile(path):
        raise ValueError(f"image file not found: {path!r}")
    try:
        image = tf.io.decode_image(
            tf.io.read_file(path), channels=shape[-1], expand_animations=False
        )
    except (tf.errors.InvalidArgumentError, tf.errors.UnknownError) as e:
        raise ValueError(f"cannot decode image {path!r} ({e.message.splitlines()[0]})") from None
    image = tf.image.resize(tf.cast(image, tf.float32) / 255.0, shape[:2])
    return image.numpy().astype("float32")


def _decode_audio(path, samples, sample_rate, resample):
    if not os.path.isfile(path):
        raise ValueError(f"audio file not found: {path!r}")
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

    Returns:
        A `ManifestData`.

    Raises:
        DataError: Missing manifest, unknown modality, or a bad record (missing or
            undecodable file, wrong sample rate, bad label) naming the record.

    Example:
        >>> data = tfmm.data.read_manifest("train.csv", num_classes=10)  # doctest: +SKIP
    """
    path = os.fspath(path)
    records = _read_records(path)
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
                    row[m] = _decode_image(_resolve(folder, str(value)), tuple(image_shape))
                else:
                    row[m] = _decode_audio(
                        _resolve(folder, str(value)), audio_samples, sample_rate, resample
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
