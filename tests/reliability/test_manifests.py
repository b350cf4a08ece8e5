"""Every malformed manifest is a DataError naming the file, the line or record, and the fix."""

import json
import os
import struct
import zlib

import numpy as np
import pytest

from tfmm.data import DataLimits, read_manifest
from tfmm.errors import ConfigError, DataError

from tests.reliability.fixtures import make_files, write_csv, write_jsonl


@pytest.fixture
def folder(tmp_path):
    records = make_files(tmp_path, n=4)
    return tmp_path, records


def test_utf8_bom_keeps_the_first_column(folder):
    path, records = folder
    manifest = write_csv(path / "bom.csv", records, encoding="utf-8-sig")
    assert open(manifest, "rb").read(3) == b"\xef\xbb\xbf"
    data = read_manifest(manifest, sequence_length=8)
    assert sorted(data.features) == ["audio", "image", "text"]
    assert data.features["image"].shape == (4, 28, 28, 1)


def _bad_csv(text, encoding="utf-8"):
    def make(path, records):
        (path / "m.csv").write_bytes(text.encode(encoding))
        return str(path / "m.csv")

    return make


CASES = [
    ("latin1", lambda p, r: write_csv(p / "m.csv", [{**r[0], "text": "caf\u00e9"}], encoding="latin-1"),
     r"is not UTF-8: byte 0xe9 on line 2.*Save the file as UTF-8"),
    ("no header", _bad_csv(""), r"has no header line; its first line must name the columns"),
    ("unknown column", _bad_csv("image,colour,label\nimg0.png,red,1\n"),
     r"unknown column\(s\) \['colour'\]. Found columns \['image', 'colour', 'label'\]"),
    ("duplicated column", _bad_csv("image,image,label\nimg0.png,img1.png,1\n"),
     r"duplicated column\(s\) \['image'\]"),
    ("extra field", _bad_csv("image,label\nimg0.png,1,surprise\n"),
     r"Record 1 of .* \(line 2\) has 3 fields; the header has 2 \(image, label\). Quote fields"),
    ("missing field", _bad_csv("image,text,label\nimg0.png,one\n"), r"has 2 fields; the header has 3"),
    ("jsonl list", lambda p, r: (p / "m.jsonl").write_text('[1, 2]\n') and str(p / "m.jsonl"),
     r"line 1 is a JSON list, not an object"),
    ("jsonl number", lambda p, r: (p / "m.jsonl").write_text('{"image": "img0.png", "label": 0}\n7\n')
     and str(p / "m.jsonl"), r"line 2 is a JSON int, not an object"),
    ("jsonl unknown key", lambda p, r: write_jsonl(p / "m.jsonl", [{**r[0], "colour": "red"}]),
     r"line 1 has unknown key\(s\) \['colour'\]"),
    ("jsonl broken", lambda p, r: (p / "m.jsonl").write_text('{"image": \n') and str(p / "m.jsonl"),
     r"line 1 is not valid JSON"),
    ("long field", lambda p, r: write_csv(p / "m.csv", [{**r[0], "text": "x" * 70_000}]),
     r"field 'text' has 70,000 characters, over the limit of 65,536.*max_field_chars"),
    ("huge csv field", _bad_csv("text,label\n\"" + "y" * 140_000 + "\",1\n"),
     r"over the limit of 65,536"),
    ("dotdot path", lambda p, r: write_csv(p / "sub" / "m.csv", [{**r[0], "image": "../img0.png"}])
     if (p / "sub").mkdir() is None else None,
     r"Record 1 of .*'\.\./img0\.png' resolves to .* outside the manifest's folder.*allow_outside=True"),
    ("absolute path", lambda p, r: write_csv(p / "m.csv", [{**r[0], "audio": "/etc/hostname"}]),
     r"'/etc/hostname' resolves to .*outside the manifest's folder"),
    ("boolean label", lambda p, r: write_jsonl(p / "m.jsonl", [{**r[0], "label": True}]),
     r"label True is a boolean; use integer class ids"),
    ("negative label", lambda p, r: write_csv(p / "m.csv", [{**r[0], "label": -1}]),
     r"label -1 is out of range"),
    ("wrong extension", lambda p, r: (p / "m.txt").write_text("image\n") and str(p / "m.txt"),
     r"must end in .csv or .jsonl \(got '.txt'\)"),
]


@pytest.mark.parametrize("name, make, message", CASES, ids=[c[0] for c in CASES])
def test_bad_manifests(folder, name, make, message):
    path, records = folder
    manifest = make(path, records)
    before = sorted(os.listdir(path))
    with pytest.raises(DataError, match=message):
        read_manifest(manifest, num_classes=4)
    assert sorted(os.listdir(path)) == before  # reading writes nothing


def test_allow_outside_opts_in(folder):
    path, records = folder
    (path / "sub").mkdir()
    manifest = write_csv(path / "sub" / "m.csv", [{**records[0], "image": "../img0.png", "audio": "../clip0.wav"}])
    data = read_manifest(manifest, allow_outside=True, sequence_length=8)
    assert data.features["image"].shape == (1, 28, 28, 1)


def test_symlink_out_of_the_folder_is_confined(folder, tmp_path_factory):
    path, records = folder
    outside = tmp_path_factory.mktemp("outside")
    os.symlink(outside, path / "link")
    (outside / "x.png").write_bytes((path / "img0.png").read_bytes())
    manifest = write_csv(path / "m.csv", [{**records[0], "image": "link/x.png"}])
    with pytest.raises(DataError, match="outside the manifest's folder"):
        read_manifest(manifest)


def _png_header(width, height):
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))


def _wav_header(rate, frames, channels=1):
    data = frames * 2 * channels
    return (b"RIFF" + struct.pack("<I", 36 + data) + b"WAVEfmt " + struct.pack("<IHHIIHH", 16, 1, channels, rate,
            rate * 2 * channels, 2 * channels, 16) + b"data" + struct.pack("<I", data))


LIMIT_CASES = [
    ("sparse 40 GB image", "image", lambda f: _sparse(f, 40 * 2**30), r"is 42,949,672,960 bytes, over the limit"),
    ("decompression bomb", "image", lambda f: f.write_bytes(_png_header(40000, 30000) + b"\0" * 64),
     r"40000x30000 = 1,200,000,000 pixels, over the limit of 16,777,216.*max_pixels"),
    ("1 Hz wav", "audio", lambda f: f.write_bytes(_wav_header(1, 100) + b"\0" * 200),
     r"claims a sample rate of 1 Hz, outside \[1000, 384000\]"),
    ("hour-long wav", "audio", lambda f: f.write_bytes(_wav_header(8000, 8000 * 3600)),
     r"is 3,600 s long, over the limit of 600 s"),
    ("not a wav", "audio", lambda f: f.write_bytes(b"RIFF0000"), r"cannot decode WAV"),
    ("gif bomb", "image", lambda f: f.write_bytes(b"GIF89a" + struct.pack("<HH", 65535, 65535) + b"\0" * 20),
     r"65535x65535"),
]


def _sparse(path, size):
    with open(path, "wb") as f:
        f.truncate(size)


@pytest.mark.parametrize("name, column, make, message", LIMIT_CASES, ids=[c[0] for c in LIMIT_CASES])
def test_limits_are_checked_from_headers_before_decoding(folder, name, column, make, message):
    path, records = folder
    target = path / ("big.png" if column == "image" else "big.wav")
    make(target)
    manifest = write_csv(path / "m.csv", [{**records[0], column: target.name}])
    with pytest.raises(DataError, match=f"Record 1 of .*{message}"):
        read_manifest(manifest)


def test_limits_can_be_raised(folder):
    path, records = folder
    manifest = write_csv(path / "m.csv", records[:2])
    with pytest.raises(DataError, match=r"more than 1 records.*max_records"):
        read_manifest(manifest, limits=DataLimits(max_records=1))
    with pytest.raises(DataError, match=r"is [0-9,]+ bytes, over the limit of 10 \(raise DataLimits.max_file_bytes"):
        read_manifest(manifest, limits=DataLimits(max_file_bytes=10))
    assert len(read_manifest(manifest, limits=DataLimits(max_records=2)).labels) == 2


@pytest.mark.parametrize("kwargs, message", [
    ({"max_pixels": 0}, "`max_pixels` must be a positive integer"),
    ({"min_sample_rate": 9000, "max_sample_rate": 8000}, "`min_sample_rate` must not exceed"),
])
def test_bad_limits_are_config_errors(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        DataLimits(**kwargs)


def test_limits_argument_must_be_data_limits(folder):
    path, records = folder
    with pytest.raises(DataError, match="`limits` must be a tfmm.data.DataLimits"):
        read_manifest(write_csv(path / "m.csv", records), limits={"max_pixels": 4})
