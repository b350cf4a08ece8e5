"""AV-digits: the bundled image + text + audio digit dataset (ten classes).

Each example pairs a handwritten MNIST digit, the digit spoken by a synthetic
voice, and the digit written as a word in one of 20 languages. The package
ships clean sources; this module applies seeded corruption (image occlusion and
noise, background noise at a random SNR, typos and missing texts) so that no
single modality solves the task. See `AV_DIGITS.md` for the dataset card.
"""

import dataclasses
import functools
import json
import os

import numpy as np

from tfmm.data.text import TextTokenizer
from tfmm.errors import DataError

__all__ = ["AVDigitsInfo", "load_av_digits", "av_digits_tokenizer", "CLASS_NAMES"]

CLASS_NAMES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
SPLITS = ("train", "validation", "test")
# The longest text ("number kahdeksan", typos included) has 16 characters: 16 ids
# hold every text whole. (It was 24: eight steps of pure padding that an unrolled
# LSTM pays for in every int8 file.)
SEQUENCE_LENGTH = 16
AUDIO_SAMPLES = 8000
_PATH = os.path.join(os.path.dirname(__file__), "av_digits.npz")
_CORRUPTION_SEED = 7331

# Corruption strengths, tuned so that the fused model clearly beats every single
# modality (figures in AV_DIGITS.md, measured by scripts/measure_av_digits.py).
IMAGE_OCCLUSION_PROB = 0.6
IMAGE_OCCLUSION_SIZE = (8, 18)
IMAGE_NOISE_STD = (0.15, 0.4)
AUDIO_SNR_DB = (-6.0, 12.0)
TEXT_MISSING_PROB = 0.3
TEXT_TYPO_PROB = 0.15
_LETTERS = "abcdefghijklmnopqrstuvwxyz"


@dataclasses.dataclass(frozen=True)
class AVDigitsInfo:
    """Everything about a loaded split besides the model inputs.

    Attributes:
        texts: The (corrupted) strings behind the `text` token ids; `""` = missing.
        tokenizer: The `TextTokenizer` that produced the ids (ship it with a model).
        class_names: English names of the ten classes.
        sample_rate: Audio sample rate in Hz.
        clip_ids: Which synthesized clip each example's audio came from.
        image_ids: Which MNIST image each example's image came from.
    """

    texts: tuple
    tokenizer: TextTokenizer
    class_names: tuple
    sample_rate: int
    clip_ids: np.ndarray
    image_ids: np.ndarray


@functools.lru_cache(maxsize=1)
def _raw():
    if not os.path.isfile(_PATH):
        raise DataError(
            f"The bundled dataset is missing at {_PATH!r}. Reinstall tfmm, or rebuild it "
            "with `python scripts/build_av_digits.py`."
        )
    with np.load(_PATH) as f:
        raw = {k: f[k] for k in f.files}
    raw["meta"] = json.loads(str(raw["meta"]))
    return raw


@functools.lru_cache(maxsize=1)
def av_digits_tokenizer():
    """Return the character tokenizer of AV-digits (the same for every split).

    Returns:
        A `TextTokenizer` with `sequence_length=16`; use `.vocab_size` for the
        text branch.

    Example:
        >>> tfmm.data.av_digits_tokenizer().vocab_size > 30
        True
    """
    texts = list(_raw()["texts"]) + [_LETTERS]  # typos draw from a-z: keep them known
    return TextTokenizer.adapt(texts, sequence_length=SEQUENCE_LENGTH, split="character")


def _mu_law_decode(codes, mu=255):
    y = codes.astype(np.float32) / 127.0
    return np.sign(y) * ((1 + mu) ** np.abs(y) - 1) / mu


def _corrupt_images(images, rng):
    x = images.astype(np.float32) / 255.0
    n = len(x)
    for i in np.flatnonzero(rng.uniform(size=n) < IMAGE_OCCLUSION_PROB):
        h, w = rng.integers(IMAGE_OCCLUSION_SIZE[0], IMAGE_OCCLUSION_SIZE[1] + 1, size=2)
        top, left = rng.integers(0, 28 - h + 1), rng.integers(0, 28 - w + 1)
        x[i, top : top + h, left : left + w] = rng.uniform(0.0, 1.0)
    std = rng.uniform(*IMAGE_NOISE_STD, size=(n, 1, 1)).astype(np.float32)
    x += rng.normal(size=x.shape).astype(np.float32) * std
    return np.clip(x, 0.0, 1.0)[..., None]


def _corrupt_audio(raw, clip_ids, rng):
    offsets = raw["clip_offsets"]
    out = np.zeros((len(clip_ids), AUDIO_SAMPLES), dtype=np.float32)
    for i, c in enumerate(clip_ids):
        clip = _mu_law_decode(raw["clip_audio"][offsets[c] : offsets[c + 1]])
        clip = clip * rng.uniform(0.3, 0.9)
        start = rng.integers(0, AUDIO_SAMPLES - len(clip) + 1)
        out[i, start : start + len(clip)] = clip
        speech_rms = np.sqrt(np.mean(clip**2)) + 1e-8
        snr_db = rng.uniform(*AUDIO_SNR_DB)
        noise = rng.normal(size=AUDIO_SAMPLES).astype(np.float32)
        if rng.uniform() < 0.5:  # brown-ish noise: low-passed, like rumble or traffic
            noise = np.cumsum(noise)
            noise -= np.convolve(noise, np.ones(64) / 64, mode="same")
        noise *= speech_rms / (np.sqrt(np.mean(noise**2)) + 1e-8) / 10 ** (snr_db / 20)
        out[i] += noise
    return np.clip(out, -1.0, 1.0)[..., None]


def _typo(text, rng):
    chars = list(text)
    out = []
    for ch in chars:
        if ch != " " and rng.uniform() < TEXT_TYPO_PROB:
            op = rng.integers(3)
            if op == 0:
                out.append(_LETTERS[rng.integers(26)])  # substitute
            elif op == 2:
                out.extend([ch, _LETTERS[rng.integers(26)]])  # insert
            # op == 1: delete
        else:
            out.append(ch)
    return "".join(out)


def _corrupt_texts(texts, rng):
    return tuple("" if rng.uniform() < TEXT_MISSING_PROB else _typo(str(t), rng) for t in texts)


@functools.lru_cache(maxsize=3)
def _load(split):
    raw = _raw()
    rng = np.random.default_rng([_CORRUPTION_SEED, SPLITS.index(split)])
    # The source is ordered by class; a fixed permutation mixes the classes.
    index = rng.permutation(np.flatnonzero(raw["split"] == SPLITS.index(split)))
    clip_ids = raw["example_clip"][index]
    texts = _corrupt_texts(raw["texts"][index], rng)
    tokenizer = av_digits_tokenizer()
    features = {
        "image": _corrupt_images(raw["images"][index], rng),
        "text": tokenizer(texts),
        "audio": _corrupt_audio(raw, clip_ids, rng),
    }
    info = AVDigitsInfo(
        texts=texts,
        tokenizer=tokenizer,
        class_names=CLASS_NAMES,
        sample_rate=int(raw["meta"]["sample_rate"]),
        clip_ids=clip_ids,
        image_ids=index,
    )
    return features, raw["labels"][index].astype(np.int32), info


def load_av_digits(split="train", *, modalities=("image", "text", "audio"), return_info=False):
    """Load one split of the bundled AV-digits dataset.

    Shapes: `image` (N, 28, 28, 1) float32 in [0, 1]; `text` (N, 16) int32
    character ids; `audio` (N, 8000, 1) float32, one second at 8 kHz. Splits:
    train 3,500, validation 500, test 1,000, each balanced over the ten digits.
    The same call always returns the same arrays.

    Args:
        split: `"train"`, `"validation"` or `"test"`.
        modalities: Which inputs to return.
        return_info: Also return an `AVDigitsInfo` (raw texts, tokenizer, ...).

    Returns:
        `(features, labels)`, or `(features, labels, info)` with `return_info=True`.
        The arrays are copies: changing them does not change later loads.

    Raises:
        DataError: Unknown split or modality, or the bundled file is missing.

    Example:
        >>> x, y = tfmm.data.load_av_digits("test")
        >>> x["audio"].shape, y.shape
        ((1000, 8000, 1), (1000,))
    """
    if split not in SPLITS:
        raise DataError(f"Unknown split {split!r}: choose from {list(SPLITS)}.")
    if isinstance(modalities, str):
        modalities = (modalities,)
    unknown = [m for m in modalities if m not in ("image", "text", "audio")]
    if unknown or not modalities:
        raise DataError(
            f"`modalities` must be a non-empty subset of ['image', 'text', 'audio']. "
            f"Received: {list(modalities)}"
        )
    features, labels, info = _load(split)
    features = {m: features[m].copy() for m in modalities}
    labels = labels.copy()
    return (features, labels, info) if return_info else (features, labels)
