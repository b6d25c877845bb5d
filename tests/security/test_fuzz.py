"""Threat 11: the manifest, index and srepr readers on generated hostile input.

Only the library's own errors may come out: never another exception, a crash or a hang. The
default run uses a few hundred examples per reader; `pytest -m slow` runs 10,000 each.
"""

from __future__ import annotations

import json
import os

import pytest
import sympy as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelstore.errors import ModelstoreError
from modelstore.index import Index
from modelstore.manifest import Manifest
from modelstore.srepr import parse_srepr

EXAMPLES = int(os.environ.get("MODELSTORE_FUZZ_EXAMPLES", "300"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
SLOW = settings(max_examples=10_000, deadline=None, suppress_health_check=list(HealthCheck))

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
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
    try:
        function(data)
    except ModelstoreError:
        pass


def manifest_case(manifest_dict, path, value):
    only_our_errors(Manifest.from_bytes, json.dumps(mutate(manifest_dict, path, value)).encode())


def index_case(index_dict, path, value):
    only_our_errors(Index.from_bytes, json.dumps(mutate(index_dict, path, value)).encode())


paths = st.lists(st.integers(0, 50), min_size=1, max_size=5)

_SREPR_SEED = sp.srepr(
    sp.Abs(sp.IndexedBase("H")[sp.core.symbol.Str("K(892)"), -1, sp.Rational(-1, 2)] / (sp.Symbol("m", positive=True) ** 2 - sp.I)) ** 2
    + sp.cos(sp.acos(sp.Symbol("z", real=True)) / 2) + sp.Float("0.125") * sp.exp(-sp.pi)
)
tokens = st.sampled_from(
    ["Add(", "Mul(", "Pow(", "Symbol(", "Integer(", "Rational(", "Float(", "Str(", "Indexed(", "IndexedBase(",
     ")", ",", "=", "'x'", '"y"', "1", "-2", "1.5e3", "I", "pi", "True", "positive", "__class__", ".", "lambda",
     "[", "]", "**", "\\", "'\\x41'", " "]
)  # fmt: skip


def srepr_case(text):
    only_our_errors(parse_srepr, text)


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


@pytest.mark.slow
def test_fuzz_campaign_10000_each(manifest_dict, index_dict):
    """The slow run: 10,000 examples for each reader."""
    SLOW(given(path=paths, value=json_values)(lambda path, value: manifest_case(manifest_dict, path, value)))()
    SLOW(given(path=paths, value=json_values)(lambda path, value: index_case(index_dict, path, value)))()
    SLOW(given(st.lists(tokens, max_size=60).map("".join))(srepr_case))()
    SLOW(
        given(st.integers(0, len(_SREPR_SEED) - 1), st.integers(0, len(_SREPR_SEED)), st.text(max_size=8))(
            lambda a, b, t: srepr_case(_SREPR_SEED[:a] + t + _SREPR_SEED[max(a, b) :])
        )
    )()
