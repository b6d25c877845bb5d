"""Lowering 2 (issue 17): the C source of new versions has fewer roots, divisions and products.

Versions published before record no lowering and regenerate byte for byte with lowering 1
(tests/backends/test_native.py, test_polarimetry.py, tests/format/test_arraycode.py); a new
version records ``native_lowering: 2`` and regenerates with it.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
import sympy as sp
from registry_helpers import new_registry
from toy_models import MASSES, toy_forms

from modelstore import published_model
from modelstore._native.emitter import LATEST_LOWERING, _Temp
from modelstore._native.lowering import lower_model
from modelstore._native.rewrites import collect_factors, merge_roots
from modelstore._native.source import generate_c_source, native_lowering
from modelstore.dalitz.kinematics import sample_dalitz
from modelstore.errors import ManifestError, ModelstoreError
from modelstore.format.arraycode import generate_array_source
from modelstore.publish.forms_check import check_forms
from modelstore.publish.gate import _native_evaluator, independent_intensity
from modelstore.publish.generic import build_forms, publish_forms


def _block(source: str) -> str:
    """The portable block function's body: the per-event code."""
    start = source.index("static void ms_block(")
    return source[start : source.index("\n}\n", start)]


@pytest.fixture(scope="module")
def toy():
    forms = check_forms(toy_forms(), "toy").forms
    names = sorted(str(s) for s in forms["parameter_defaults"])
    return forms, names


def _points():
    s1, s2 = sample_dalitz(4000, *MASSES, seed=11)
    rng = np.random.default_rng(3)  # and points outside the Dalitz region: NaN there
    return np.concatenate([s1, rng.uniform(0.0, 3.0, 500)]), np.concatenate(
        [s2, rng.uniform(0.0, 3.0, 500)]
    )


def test_lowering_2_has_fewer_roots_and_divisions_and_the_same_values(toy):
    forms, names = toy
    old, new = (generate_c_source(forms, names, lowering) for lowering in (1, 2))
    for operation in ("sqrt(", " / "):
        assert _block(new).count(operation) < _block(old).count(operation), operation
    assert "Lowering 2" in new and "Lowering" not in old
    assert "schedule(dynamic" in new and "schedule(static)" in old
    parameters = build_forms(forms, "toy", "1.0.0", native=False).manifest.parameters
    values = {p.name: p.value for p in parameters}
    s1, s2 = _points()
    old_values, new_values = (
        _native_evaluator(source, parameters, "toy")(s1, s2, values) for source in (old, new)
    )
    expected = independent_intensity(forms)(s1, s2)
    assert 500 < np.isnan(expected).sum() < s1.size - 1000  # both sides of every NaN border
    for got in (old_values, new_values):
        assert np.array_equal(np.isnan(got), np.isnan(expected))
    ok = ~np.isnan(expected)
    np.testing.assert_allclose(new_values[ok], expected[ok], rtol=1e-12)
    np.testing.assert_allclose(new_values[ok], old_values[ok], rtol=1e-13)


def test_a_new_version_records_its_lowering_and_regenerates_with_it(tmp_path):
    registry = new_registry(tmp_path / "registry")
    outcome = publish_forms(toy_forms(), "toy", "1.0.0", registry=registry)
    manifest = outcome.manifest
    assert manifest.provenance["native_lowering"] == LATEST_LOWERING == 2
    model = published_model("toy", registry=registry, backend="native")
    forms = model.load_forms("pickle")
    names = [p.name for p in manifest.parameters]
    published = registry.read_file(manifest, "native-source")
    lowering = native_lowering(manifest.provenance)
    assert generate_c_source(forms, names, lowering).encode() == published
    assert generate_c_source(forms, names, 1).encode() != published
    # the array program (JAX, numpy) is lowered as before
    assert generate_array_source(forms, names).encode() == registry.read_file(
        manifest, "array-source"
    )
    assert outcome.gate["C"] <= 1e-9


def test_lowering_1_publishes_as_before(toy):
    forms, names = toy
    built = build_forms(forms, "toy", "1.0.0", native_lowering=1)
    assert "native_lowering" not in built.manifest.provenance
    assert built.blobs["native-source"].decode() == generate_c_source(forms, names)


def test_the_recorded_lowering_is_read_and_checked():
    assert native_lowering({"expression_digest": "x"}) == 1
    assert native_lowering({"native_lowering": 2}) == 2
    for bad in (3, 0, True, "2", None):
        with pytest.raises(ManifestError, match="native_lowering"):
            native_lowering({"native_lowering": bad})
    with pytest.raises(ModelstoreError, match="unknown lowering"):
        generate_c_source(check_forms(toy_forms(), "toy").forms, [], 7)


def _temps(*codes: str) -> list[_Temp]:
    return [_Temp(f"a{k}", code, 0, False) for k, code in enumerate(codes)]


def test_a_product_of_roots_used_once_becomes_one_guarded_root():
    temps = _temps("sqrt((sigma1 - 1.0))", "sqrt(sigma2)", "(a0 * a1)", "(a2 + 1.0)")
    merge_roots(temps, ["a3"])
    assert [t.code for t in temps[:3]] == [
        "(sigma1 - 1.0)",
        "sigma2",
        "(((a0 >= 0.0 && a1 >= 0.0) ? sqrt(a0 * a1) : NAN))",
    ]
    # a root read elsewhere too, or not a whole root, stays as it is
    shared = _temps("sqrt(sigma1)", "sqrt(sigma2)", "(a0 * a1)", "(a2 + a0)")
    partial = _temps("sqrt(sigma1) * 2.0", "sqrt(sigma2)", "(a0 * a1)")
    for temps in (shared, partial):
        before = [t.code for t in temps]
        merge_roots(temps, [temps[-1].name])
        assert [t.code for t in temps] == before


def test_common_factors_of_a_sum_are_multiplied_once():
    a, b, c, d, x = sp.symbols("a b c d x")
    denominator = 1 / (x + sp.I)
    expr = a * b * denominator + c * b * denominator + d * x + 3 * a * b
    collected = collect_factors(expr)
    assert sp.expand(collected - expr) == 0
    assert sp.count_ops(collected) < sp.count_ops(expr)
    # the complex divisor is taken out of both terms that share it: one division left
    assert collected.count(denominator) == 1


def test_half_angle_powers_need_no_root_where_the_spins_are_integer(toy):
    forms, names = toy
    for lowering, roots_of_halves in ((1, 2), (2, 0)):
        temps = lower_model(forms, names, lowering).temps
        halves = {
            t.name for t in temps if re.fullmatch(r"\(\(1\.0 [+-] a[0-9]+\) \* 0\.5\)", t.code)
        }
        halves |= {
            t.name for t in temps if re.fullmatch(r"sqrt\(\(1\.0 [+-] a[0-9]+\) \* 0\.5\)", t.code)
        }
        roots = [
            t
            for t in temps
            if t.code.startswith("sqrt(")
            and (t.name in halves or any(f"sqrt({h})" in t.code for h in halves))
        ]
        # cos θ and cos²(θ/2) of the toy need (1 ± z)/2 only, not their roots
        assert len(roots) == roots_of_halves, lowering
