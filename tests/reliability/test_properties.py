"""Property-based: any manifest row or recipe dict either works or raises a tfmm error, never another exception."""

import csv
import io
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tfmm.data import read_manifest
from tfmm.errors import TfmmError
from tfmm.optimization import Recipe

from tests.reliability.fixtures import make_files

_SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

FILES = ("img0.png", "clip0.wav", "../img0.png", "/etc/passwd", "missing.png", "img0.png/x", "")
values = st.one_of(
    st.sampled_from(FILES), st.text(max_size=30), st.integers(-5, 15), st.floats(allow_nan=True),
    st.booleans(), st.none(), st.lists(st.integers(), max_size=3), st.dictionaries(st.text(max_size=3), st.integers(),
                                                                                   max_size=2),
)
columns = st.sampled_from(["image", "text", "audio", "label", "colour", "Image", ""])
rows = st.lists(st.dictionaries(columns, values, max_size=5), min_size=0, max_size=4)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    path = tmp_path_factory.mktemp("props")
    make_files(path, n=1)
    return path


@_SETTINGS
@given(rows=rows, as_jsonl=st.booleans(), raw_tail=st.binary(max_size=8))
def test_any_manifest_works_or_raises_a_tfmm_error(folder, rows, as_jsonl, raw_tail):
    if as_jsonl:
        body = "".join(json.dumps(r) + "\n" for r in rows).encode() + raw_tail
        path = folder / "p.jsonl"
    else:
        names = sorted({k for r in rows for k in r}) or ["image"]
        text = io.StringIO()
        writer = csv.writer(text)
        writer.writerow(names)
        for r in rows:
            writer.writerow([r.get(k, "") for k in names])
        body = text.getvalue().encode() + raw_tail
        path = folder / "p.csv"
    path.write_bytes(body)
    try:
        data = read_manifest(str(path), sequence_length=4)
    except TfmmError:
        return
    n = len(next(iter(data.features.values())))
    assert all(len(v) == n for v in data.features.values())
    assert data.labels is None or len(data.labels) == n


stage = st.one_of(st.none(), st.floats(allow_nan=True), st.text(max_size=5), st.integers(-2, 3),
                  st.dictionaries(st.sampled_from(["epochs", "target_sparsity", "learning_rate", "teacher",
                                                   "number_of_clusters", "pattern", "bogus", "schedule"]),
                                  st.one_of(st.integers(-3, 10), st.floats(allow_nan=True), st.text(max_size=5),
                                            st.none(), st.booleans()), max_size=3))
recipes = st.one_of(
    st.dictionaries(st.sampled_from(["distill", "prune", "cluster", "quantize", "learning_rate", "extra"]), stage,
                    max_size=4),
    st.lists(st.integers(), max_size=2), st.text(max_size=5), st.none(),
)


@_SETTINGS
@given(recipe=recipes)
def test_any_recipe_dict_works_or_raises_a_tfmm_error(recipe):
    try:
        built = Recipe.from_dict(recipe)
    except TfmmError:
        return
    assert built.stages and all(getattr(built, s) is not None for s in built.stages)
    assert Recipe.from_dict(built.to_dict()) == built
