"""Resource limits for manifest data, checked from file sizes and headers before decoding.

A sparse 40 GB "image", a PNG that decompresses to gigabytes, or a WAV header that
claims one sample a second would otherwise go straight to memory. Each limit has a
default a user can raise (`DataLimits(max_pixels=...)`, `read_manifest(limits=...)`).
"""

import dataclasses
import os
import struct
import wave

from tfmm.config import Config

__all__ = ["DataLimits", "image_size", "wav_info"]


@dataclasses.dataclass(frozen=True)
class DataLimits(Config):
    """Upper bounds on what one manifest may make tfmm read or allocate.

    Args:
        max_file_bytes: Largest image or audio file, in bytes (checked before reading).
        max_pixels: Largest decoded image, width x height (checked from the header).
        max_audio_seconds: Longest audio clip.
        min_sample_rate: Lowest audio sample rate accepted, in Hz.
        max_sample_rate: Highest audio sample rate accepted, in Hz.
        max_records: Most records in one manifest.
        max_field_chars: Longest single field (a text, a path) in characters.
        max_manifest_bytes: Largest manifest file, in bytes.

    Raises:
        ConfigError: A limit is not a positive integer, or the sample rate range is empty.

    Example:
        >>> limits = tfmm.data.DataLimits(max_pixels=8192 * 8192)
        >>> limits.max_audio_seconds
        600
    """

    max_file_bytes: int = 64 * 2**20
    max_pixels: int = 4096 * 4096
    max_audio_seconds: int = 600
    min_sample_rate: int = 1000
    max_sample_rate: int = 384_000
    max_records: int = 1_000_000
    max_field_chars: int = 65_536
    max_manifest_bytes: int = 1 * 2**30

    def validate(self):
        for field in dataclasses.fields(self):
            self._check_positive_int(field.name)
        if self.min_sample_rate > self.max_sample_rate:
            self._fail("min_sample_rate", f"must not exceed max_sample_rate={self.max_sample_rate}")

    def check_file(self, path):
        """Raise `ValueError` when `path` is larger than `max_file_bytes`."""
        size = os.stat(path).st_size
        if size > self.max_file_bytes:
            raise ValueError(
                f"{path!r} is {size:,} bytes, over the limit of {self.max_file_bytes:,} "
                "(raise DataLimits.max_file_bytes if the file is right)"
            )
        return size


def _png_size(head):
    if head[12:16] != b"IHDR":
        raise ValueError("its PNG header has no IHDR chunk")
    return struct.unpack(">II", head[16:24])


def _gif_size(head):
    return struct.unpack("<HH", head[6:10])


def _bmp_size(head):
    width, height = struct.unpack("<ii", head[18:26])
    return abs(width), abs(height)


def _jpeg_size(f):
    f.seek(2)
    while True:
        marker = f.read(2)
        if len(marker) < 2 or marker[0] != 0xFF:
            raise ValueError("cannot decode image: its JPEG header ends before the image size")
        code = marker[1]
        if code in (0xD8, 0x01) or 0xD0 <= code <= 0xD7:  # markers without a length
            continue
        length = struct.unpack(">H", f.read(2))[0]
        if code in (0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF):
            height, width = struct.unpack(">xHH", f.read(5))
            return width, height
        f.seek(length - 2, os.SEEK_CUR)


def image_size(path, limits):
    """Return `(width, height)` of a PNG / JPEG / GIF / BMP file from its header alone.

    Args:
        path: The image file.
        limits: A `DataLimits`: file bytes and decoded pixels are checked.

    Returns:
        `(width, height)`.

    Raises:
        ValueError: Unknown format, damaged header, or a limit exceeded (the
            manifest reader turns it into a `DataError` naming the record).

    Example:
        >>> tfmm.data.limits.image_size("cat.png", tfmm.data.DataLimits())  # doctest: +SKIP
        (28, 28)
    """
    limits.check_file(path)
    with open(path, "rb") as f:
        head = f.read(32)
        if head.startswith(b"\x89PNG\r\n\x1a\n"):
            width, height = _png_size(head)
        elif head.startswith(b"\xff\xd8"):
            try:
                width, height = _jpeg_size(f)
            except struct.error:
                raise ValueError(f"cannot decode image {path!r} (its JPEG header is cut short)") from None
        elif head[:6] in (b"GIF87a", b"GIF89a"):
            width, height = _gif_size(head)
        elif head.startswith(b"BM") and len(head) >= 26:
            width, height = _bmp_size(head)
        else:
            raise ValueError(f"cannot decode image {path!r} (not a PNG, JPEG, GIF or BMP file)")
    if width <= 0 or height <= 0:
        raise ValueError(f"{path!r} has an empty image size {width}x{height}")
    if width * height > limits.max_pixels:
        raise ValueError(
            f"{path!r} is {width}x{height} = {width * height:,} pixels, over the limit of "
            f"{limits.max_pixels:,} (raise DataLimits.max_pixels if the image is right)"
        )
    return width, height


def wav_info(path, limits):
    """Return `(sample_rate, channels, frames)` of a PCM WAV file from its header alone.

    Args:
        path: The WAV file.
        limits: A `DataLimits`: file bytes, sample rate range and duration are checked.

    Returns:
        `(sample_rate, channels, frames)`.

    Raises:
        ValueError: Not a PCM WAV file, or a limit exceeded.

    Example:
        >>> tfmm.data.limits.wav_info("clip.wav", tfmm.data.DataLimits())  # doctest: +SKIP
        (8000, 1, 8000)
    """
    limits.check_file(path)
    try:
        with wave.open(path, "rb") as w:
            rate, channels, frames = w.getframerate(), w.getnchannels(), w.getnframes()
    except (wave.Error, EOFError, struct.error) as e:
        raise ValueError(f"cannot decode WAV {path!r} (not a PCM WAV file: {e})") from None
    if not limits.min_sample_rate <= rate <= limits.max_sample_rate:
        raise ValueError(
            f"{path!r} claims a sample rate of {rate} Hz, outside [{limits.min_sample_rate}, "
            f"{limits.max_sample_rate}] (DataLimits.min_sample_rate / max_sample_rate)"
        )
    seconds = frames / rate
    if seconds > limits.max_audio_seconds:
        raise ValueError(
            f"{path!r} is {seconds:,.0f} s long, over the limit of {limits.max_audio_seconds} s "
            "(raise DataLimits.max_audio_seconds if the clip is right)"
        )
    return rate, channels, frames
