"""Lowerings 2 and 3 (issue 17): the C source of new versions has fewer roots, divisions and
products.

Versions published before record no lowering and regenerate byte for byte with lowering 1
(tests/backends/test_native.py, test_polarimetry.py, tests/format/test_arraycode.py); a new
version records ``native_lowering: 3`` and regenerates with it, and one published with 2
regenerates with 2.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
import sympy as sp
from registry_helpers import new_registry
from toy_models import MASSES, toy_forms

from modelstore import published_model
from modelstore._native import units
from modelstore._native.emitter import LATEST_LOWERING, _Temp
from modelstore._native.lowering import lower_model
from modelstore._native.rewrites import collect_factors, merge_roots
from modelstore._native.source import generate_c_source, native_lowering
from modelstore.dalitz.kinematics import sample_dalitz
from modelstore.errors import ManifestError, ModelstoreError
from modelstore.format.arraycode import generate_array_source
from modelstore.format.manifest import Parameter
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
    assert manifest.provenance["native_lowering"] == LATEST_LOWERING == 4
    model = published_model("toy", registry=registry, backend="native")
    forms = model.load_forms("pickle")
    names = [p.name for p in manifest.parameters]
    published = registry.read_file(manifest, "native-source")
    lowering = native_lowering(manifest.provenance)
    assert generate_c_source(forms, names, lowering).encode() == published
    assert generate_c_source(forms, names, 1).encode() != published
    # a model of another decay: the header names the axes by particle number, not LHCb's
    assert "m^2(K pi)" not in published.decode() and "sigma1 = m^2(23)" in published.decode()
    # the array program (JAX, numpy) is lowered as before
    assert generate_array_source(forms, names).encode() == registry.read_file(
        manifest, "array-source"
    )
    assert outcome.gate["C"] <= 1e-9


def test_lowering_4_is_the_code_of_lowering_3_under_a_header_that_names_no_particle():
    forms = toy_forms()
    names = sorted(str(s) for s in forms["parameter_defaults"])
    three, four = (generate_c_source(forms, names, lowering) for lowering in (3, 4))
    assert "m^2(K pi), sigma2 = m^2(p K)" in three and "K pi" not in four
    assert (
        three.replace("Lowering 3", "Lowering 4").replace(units.LHCB_AXES, units.NUMBERED_AXES)
        == four
    )


def test_lowering_3_shares_the_reciprocal_of_a_power_with_its_base():
    """``t = x²`` (a common subexpression) and ``1/t``, ``1/x`` both needed: one division."""
    s1, s2 = sp.symbols("sigma1 sigma2", nonnegative=True)
    m = sp.Symbol("m", positive=True)
    x = s1 + s2 - m
    # x² is a term of its own (so cse names it) and a divisor; x divides too
    intensity = (x**2 + 1) * (2 + 1 / x**2) + 3 / x + s2
    forms = {
        "intensity_expr": intensity,
        "variables": {},
        "parameter_defaults": {m: 0.5},
        "sigma3": {sp.Symbol("sigma3"): 3.0 - s1 - s2},
    }
    sources = {lowering: generate_c_source(forms, ["m"], lowering) for lowering in (2, 3)}
    divisions = {k: _block(v).count("1.0 /") for k, v in sources.items()}
    assert divisions[3] < divisions[2], divisions
    assert "Lowering 3" in sources[3]
    parameters = [Parameter(name="m", dtype="float64", value=0.5)]
    rng = np.random.default_rng(5)
    s1v, s2v = rng.uniform(0.0, 1.0, 3000), rng.uniform(0.0, 1.0, 3000)
    s1v[:4], s2v[:4] = (0.25, 0.0, 1e-170, 1e200), (0.25, 0.5, 0.5, 0.0)  # x = 0, 0 ... ±huge
    got = {
        k: _native_evaluator(v, parameters, "toy")(s1v, s2v, {"m": 0.5}) for k, v in sources.items()
    }
    with np.errstate(all="ignore"):
        want = sp.lambdify((s1, s2, m), intensity, "numpy")(s1v, s2v, 0.5)
    for values in got.values():
        assert np.array_equal(np.isnan(values), np.isnan(want))
        assert np.array_equal(np.isinf(values), np.isinf(want))
    finite = np.isfinite(want)
    np.testing.assert_allclose(got[3][finite], want[finite], rtol=1e-13)


def test_lowering_1_publishes_as_before(toy):
    forms, names = toy
    built = build_forms(forms, "toy", "1.0.0", native_lowering=1)
    assert "native_lowering" not in built.manifest.provenance
    assert built.blobs["native-source"].decode() == generate_c_source(forms, names)


def test_the_recorded_lowering_is_read_and_checked():
    assert native_lowering({"expression_digest": "x"}) == 1
    assert native_lowering({"native_lowering": 2}) == 2
    assert native_lowering({"native_lowering": 3}) == 3
    assert native_lowering({"native_lowering": 4}) == 4
    for bad in (5, 0, True, "2", None):
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
