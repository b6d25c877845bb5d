"""Threats 11 and 16: the manifest, index, srepr and reference readers on generated hostile input.

Only the library's own errors may come out: never another exception, a crash or a hang. The
srepr parser and the reference (zarr zip) reader must also stay within a per-input budget of
time and memory (tracemalloc peak), so small inputs that declare or compute huge things are
caught. The default run uses a few hundred examples per reader (fewer for reference zips);
`pytest -m slow` runs 10,000 each (2,000 reference zips).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import time
import tracemalloc
import zipfile

import pytest
import sympy as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelstore.errors import ModelstoreError
from modelstore.format.index import Index
from modelstore.format.manifest import Manifest
from modelstore.format.reference import read_reference, write_reference
from modelstore.format.srepr import parse_srepr

EXAMPLES = int(os.environ.get("MODELSTORE_FUZZ_EXAMPLES", "300"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
SLOW = settings(max_examples=10_000, deadline=None, suppress_health_check=list(HealthCheck))
ZIP_FUZZ = settings(
    max_examples=max(20, EXAMPLES // 5), deadline=None, suppress_health_check=list(HealthCheck)
)
ZIP_SLOW = settings(max_examples=2_000, deadline=None, suppress_health_check=list(HealthCheck))
# What one input may cost. Valid inputs of these sizes take milliseconds and a few MB.
BUDGET_SECONDS = float(os.environ.get("MODELSTORE_FUZZ_SECONDS", "3"))
BUDGET_BYTES = 64 << 20

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)


@pytest.fixture(scope="module")
def manifest_dict(embedded):
    return json.loads(embedded.manifest("default@1.1.0").to_bytes())


@pytest.fixture(scope="module")
def index_dict(embedded):
    return json.loads(embedded.index().to_bytes())


def mutate(document, path, value):
    """Replace the node at ``path`` (a list of choices) in a copy of ``document``."""
    document = json.loads(json.dumps(document))
    node = document
    for choice in path[:-1]:
        keys = list(node) if isinstance(node, dict) else list(range(len(node)))
        if not keys:
            break
        child = node[keys[choice % len(keys)]]
        if not isinstance(child, (dict, list)):
            break
        node = child
    keys = list(node) if isinstance(node, dict) else list(range(len(node)))
    if keys:
        node[keys[path[-1] % len(keys)]] = value
    return document


def only_our_errors(function, data):
    with contextlib.suppress(ModelstoreError):
        function(data)


def within_budget(function, data):
    """``only_our_errors``, and the call stays within BUDGET_SECONDS and BUDGET_BYTES."""
    tracemalloc.start()
    start = time.perf_counter()
    try:
        only_our_errors(function, data)
        elapsed = time.perf_counter() - start
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert elapsed < BUDGET_SECONDS, f"{elapsed:.1f} s for {str(data)[:200]!r}"
    assert peak < BUDGET_BYTES, f"{peak >> 20} MiB for {str(data)[:200]!r}"


def manifest_case(manifest_dict, path, value):
    only_our_errors(Manifest.from_bytes, json.dumps(mutate(manifest_dict, path, value)).encode())


def index_case(index_dict, path, value):
    only_our_errors(Index.from_bytes, json.dumps(mutate(index_dict, path, value)).encode())


paths = st.lists(st.integers(0, 50), min_size=1, max_size=5)

_SREPR_SEED = sp.srepr(
    sp.Abs(
        sp.IndexedBase("H")[sp.core.symbol.Str("K(892)"), -1, sp.Rational(-1, 2)]
        / (sp.Symbol("m", positive=True) ** 2 - sp.I)
    )
    ** 2
    + sp.cos(sp.acos(sp.Symbol("z", real=True)) / 2)
    + sp.Float("0.125") * sp.exp(-sp.pi)
)
tokens = st.sampled_from(
    ["Add(", "Mul(", "Pow(", "Symbol(", "Integer(", "Rational(", "Float(", "Str(", "Indexed(",
     "IndexedBase(", ")", ",", "=", "'x'", '"y"', "1", "-2", "1.5e3", "I", "pi", "True", "positive",
     "__class__", ".", "lambda",
     "[", "]", "**", "\\", "'\\x41'", " ", "Integer(10)", "Integer(1000)", "Integer(-1000)",
     "Pow(Integer(10), Integer(1000))", "Rational(1, 3)", "Integer(99999999999999999999)"]
)  # fmt: skip


def srepr_case(text):
    within_budget(parse_srepr, text)


# Hostile reference zips: a valid one whose array metadata declares other shapes, chunks,
# types, codecs and fill values (a 1 KB zip may declare 10**13 elements).
_REFERENCE = write_reference(
    {"sigma1": [1.0, 1.1, 1.2], "sigma2": [3.0, 3.2, 3.4], "intensity": [5.0, 6.0, 7.0]},
    {"model": "toy"},
)
dimensions = st.one_of(
    st.integers(0, 4), st.integers(0, 10**13), st.just(2 * 10**7), st.integers(-2, 2**64)
)
metadata_changes = st.fixed_dictionaries(
    {},
    optional={
        "shape": st.lists(dimensions, max_size=3) | json_values,
        "chunk_shape": st.lists(dimensions, max_size=3) | json_values,
        "data_type": st.sampled_from(
            ["float64", "float32", "int8", "complex128", "bool", "string", "r8"]
        )
        | json_values,
        "codecs": st.just([{"name": "sharding_indexed", "configuration": {"chunk_shape": [1]}}])
        | json_values,
        "fill_value": json_values,
    },
)


def hostile_zip(array, changes, extra_member):
    source = zipfile.ZipFile(io.BytesIO(_REFERENCE))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for info in source.infolist():
            data = source.read(info)
            if info.filename == f"{array}/zarr.json":
                meta = json.loads(data)
                for key, value in changes.items():
                    if key == "chunk_shape":
                        meta["chunk_grid"]["configuration"]["chunk_shape"] = value
                    else:
                        meta[key] = value
                data = json.dumps(meta).encode()
            zf.writestr(info.filename, data)
        if extra_member is not None:
            zf.writestr(extra_member[0], extra_member[1])
    return buffer.getvalue()


reference_cases = st.tuples(
    st.sampled_from(["sigma1", "sigma2", "intensity"]),
    metadata_changes,
    st.none()
    | st.tuples(
        st.sampled_from(["sigma1/c/0", "sigma1/c/1", "zarr.json", "x/zarr.json"]),
        st.binary(max_size=64),
    ),
)


def reference_case(case):
    within_budget(read_reference, hostile_zip(*case))


@FUZZ
@given(path=paths, value=json_values)
def test_manifest_reader(manifest_dict, path, value):
    manifest_case(manifest_dict, path, value)


@FUZZ
@given(path=paths, value=json_values)
def test_index_reader(index_dict, path, value):
    index_case(index_dict, path, value)


@FUZZ
@given(st.binary(max_size=300))
def test_readers_on_raw_bytes(data):
    only_our_errors(Manifest.from_bytes, data)
    only_our_errors(Index.from_bytes, data)


@FUZZ
@given(st.lists(tokens, max_size=40).map("".join))
def test_srepr_parser_on_token_soup(text):
    srepr_case(text)


@FUZZ
@given(st.integers(0, len(_SREPR_SEED) - 1), st.integers(0, len(_SREPR_SEED)), st.text(max_size=8))
def test_srepr_parser_on_mutated_srepr(start, stop, insert):
    srepr_case(_SREPR_SEED[:start] + insert + _SREPR_SEED[max(start, stop) :])


@ZIP_FUZZ
@given(reference_cases)
def test_reference_reader_on_hostile_zips(case):
    reference_case(case)


def test_the_budget_catches_a_known_bomb():
    """The budget check itself works: the nested-power srepr, if accepted, would not pass."""
    bomb = "Pow(Pow(Pow(Integer(10), Integer(1000)), Integer(1000)), Integer(1000))"
    srepr_case(bomb)  # refused within the budget
    with pytest.raises(AssertionError, match="MiB"):
        within_budget(lambda _: bytearray(BUDGET_BYTES + (1 << 20)), b"")


@pytest.mark.slow
def test_fuzz_campaign_10000_each(manifest_dict, index_dict):
    """The slow run: 10,000 examples for each reader."""
    SLOW(
        given(path=paths, value=json_values)(
            lambda path, value: manifest_case(manifest_dict, path, value)
        )
    )()
    SLOW(
        given(path=paths, value=json_values)(
            lambda path, value: index_case(index_dict, path, value)
        )
    )()
    SLOW(given(st.lists(tokens, max_size=60).map("".join))(srepr_case))()
    SLOW(
        given(
            st.integers(0, len(_SREPR_SEED) - 1),
            st.integers(0, len(_SREPR_SEED)),
            st.text(max_size=8),
        )(lambda a, b, t: srepr_case(_SREPR_SEED[:a] + t + _SREPR_SEED[max(a, b) :]))
    )()
    ZIP_SLOW(given(reference_cases)(reference_case))()
