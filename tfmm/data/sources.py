"""`load_splits`: one name for "the data" on the command line and in scripts.

`"av-digits"` is the bundled dataset with its fixed train / validation / test
splits; anything else is a CSV / JSONL manifest, split deterministically unless
separate validation / test manifests are given.
"""

import dataclasses
import os
from typing import Optional

import numpy as np

from tfmm.errors import DataError

__all__ = ["DataSplits", "load_splits", "BUNDLED"]

BUNDLED = "av-digits"


@dataclasses.dataclass(frozen=True)
class DataSplits:
    """Train / validation / test arrays and what a deployed model needs with them.

    Attributes:
        train: `(features, labels)`.
        validation: `(features, labels)`.
        test: `(features, labels)`.
        tokenizer: The `TextTokenizer` of the text modality (or None).
        class_names: Class names, when the source has them.
        name: Where the data came from.
    """

    train: tuple
    validation: tuple
    test: tuple
    tokenizer: Optional[object] = None
    class_names: Optional[tuple] = None
    name: str = ""


def _subset(data, index):
    features, labels = data
    return {k: v[index] for k, v in features.items()}, labels[index]


def load_splits(
    source=BUNDLED,
    *,
    modalities=None,
    validation=None,
    test=None,
    tokenizer=None,
    image_shape=(28, 28, 1),
    audio_samples=8000,
    sample_rate=8000,
    sequence_length=24,
    holdout=0.1,
    seed=0,
    allow_outside=False,
    limits=None,
):
    """Load the named data as train / validation / test arrays.

    Args:
        source: `"av-digits"` (bundled) or the path of a labelled manifest.
        modalities: Modalities to keep (default: all the source has).
        validation: Optional manifest of the validation split.
        test: Optional manifest of the test split.
        tokenizer: A `TextTokenizer` or its JSON path (manifests); adapted on the
            training texts when None.
        image_shape: Image size manifests are decoded to.
        audio_samples: Waveform length manifests are cut / padded to.
        sample_rate: Audio rate of manifests.
        sequence_length: Token ids per text when a tokenizer is adapted.
        holdout: Fraction of a single manifest held out for validation and
            again for test.
        seed: Seed of that split.
        allow_outside: Let manifests name files outside their folder (trusted files).
        limits: A `tfmm.data.DataLimits` for manifests (default limits when None).

    Returns:
        A `DataSplits`.

    Raises:
        DataError: A missing file, unlabelled records, or too few records to split.

    Example:
        >>> splits = tfmm.data.load_splits("av-digits", modalities=("image",))
        >>> sorted(splits.train[0])
        ['image']
    """
    if source == BUNDLED:
        from tfmm.data.av_digits import CLASS_NAMES, av_digits_tokenizer, load_av_digits

        mods = tuple(modalities or ("image", "text", "audio"))
        parts = {s: load_av_digits(s, modalities=mods) for s in ("train", "validation", "test")}
        return DataSplits(**parts, tokenizer=av_digits_tokenizer() if "text" in mods else None,
                          class_names=tuple(CLASS_NAMES), name="AV-digits (bundled)")
    from tfmm.data.manifest import read_manifest

    if not os.path.exists(str(source)):
        raise DataError(f"No data at {source!r}: pass 'av-digits' or the path of a CSV / JSONL manifest.")
    options = dict(modalities=modalities, image_shape=tuple(image_shape), audio_samples=audio_samples,
                   sample_rate=sample_rate, sequence_length=sequence_length, allow_outside=allow_outside,
                   limits=limits)
    main = read_manifest(source, tokenizer=tokenizer, **options)
    if main.labels is None:
        raise DataError(f"{source!r} has no label column; training and verification need labels.")
    tokenizer = main.tokenizer
    data = (main.features, main.labels)
    extra = {}
    for split, path in (("validation", validation), ("test", test)):
        if path:
            part = read_manifest(path, tokenizer=tokenizer, **options)
            extra[split] = (part.features, part.labels)
    n = len(main.labels)
    order = np.random.default_rng(seed).permutation(n)
    cut = max(1, int(round(n * holdout)))
    missing = [s for s in ("validation", "test") if s not in extra]
    if n - cut * len(missing) < 1:
        raise DataError(f"{source!r} has {n} records: too few to hold out {missing}. Pass them as files.")
    start = 0
    for split in missing:
        extra[split] = _subset(data, order[start : start + cut])
        start += cut
    train = _subset(data, order[start:])
    return DataSplits(train=train, validation=extra["validation"], test=extra["test"],
                      tokenizer=tokenizer, name=os.path.basename(str(source)))
