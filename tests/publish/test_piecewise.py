"""Piecewise expressions (ampform's ComplexSqrt unfolded, conditions with And/Or/Not): through the
allow-listed unpickler, lowered to selects in the C and the array program, and published with
every backend equal to sympy's own lambdify, NaN exactly where it is NaN."""

from __future__ import annotations

import cloudpickle
import numpy as np
import pytest
import sympy as sp
from hostile_pickles import model_pickle, symbol, sympy, text
from registry_helpers import new_registry
from toy_models import MASSES, toy_forms

from modelstore import published_model
from modelstore.dalitz.kinematics import sample_dalitz
from modelstore.errors import UnsafePickleError
from modelstore.format.unpickle import load_model_pickle
from modelstore.publish.forms_check import load_forms_pickle
from modelstore.publish.gate import independent_intensity
from modelstore.publish.generic import publish_forms


def piecewise_forms() -> dict:
    """The toy model times a Flatté-like factor with ComplexSqrt's definition (complex below
    σ1 = 1/2) and a real Piecewise without a default (NaN where no condition holds)."""
    forms = toy_forms()
    s1, s2 = sorted(
        (s for s in forms["intensity_expr"].free_symbols if s.name in ("sigma1", "sigma2")),
        key=lambda s: s.name,
    )
    x = s1 - sp.Rational(1, 2)
    complex_sqrt = sp.Piecewise((sp.I * sp.sqrt(-x), x < 0), (sp.sqrt(x), True))
    weight = sp.Piecewise(
        (2, sp.And(s2 > 1, s2 <= 2)),
        (3, sp.Or(sp.Eq(s2, 0), s1 > sp.Rational(3, 2))),
        (1, sp.Not(s2 > sp.Rational(5, 2))),
    )
    forms["intensity_expr"] = forms["intensity_expr"] * weight + sp.Abs(1 / (1 + complex_sqrt)) ** 2
    return forms


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    registry = new_registry(tmp_path_factory.mktemp("piecewise") / "registry")
    outcome = publish_forms(piecewise_forms(), "pw", "1.0.0", registry=registry)
    assert outcome.status == "published"
    return registry


@pytest.mark.parametrize("backend", ["native", "numpy", "jax"])
def test_every_backend_is_sympys_lambdify_and_nan_where_it_is(registry, backend):
    s1, s2 = sample_dalitz(1500, *MASSES, seed=4)
    rng = np.random.default_rng(4)
    s1 = np.concatenate([s1, rng.uniform(0.0, 3.5, 500)])  # and points outside the region
    s2 = np.concatenate([s2, rng.uniform(0.0, 3.5, 500)])
    expected = independent_intensity(piecewise_forms())(s1, s2)
    nan = np.isnan(expected)
    assert 100 < nan[:1500].sum() < 1400  # the weight's missing default leaves NaN inside
    assert (s1[:1500][~nan[:1500]] < 0.5).any() and (s1[:1500][~nan[:1500]] > 0.5).any()
    got = published_model("pw", backend=backend, registry=registry).intensity(s1, s2)
    assert np.array_equal(np.isnan(got), nan)
    np.testing.assert_allclose(got[~nan], expected[~nan], rtol=1e-9)


def test_the_native_gradient_takes_the_chosen_pieces_derivative(registry):
    model = published_model("pw", backend="native", registry=registry)
    s1, s2 = sample_dalitz(200, *MASSES, seed=5)
    gradient = model.gradient(s1, s2, wrt=["m_rho"])[:, 0]
    step = 1e-6
    m = model.parameters["m_rho"]
    numeric = (
        model.intensity(s1, s2, m_rho=m + step) - model.intensity(s1, s2, m_rho=m - step)
    ) / (2 * step)
    ok = np.isfinite(numeric)
    assert ok.sum() > 50
    np.testing.assert_allclose(
        gradient[ok], numeric[ok], rtol=1e-5, atol=1e-8 * np.abs(numeric[ok]).max()
    )


def test_the_forms_pickle_loads_through_the_allow_list():
    forms = piecewise_forms()
    loaded = load_forms_pickle(cloudpickle.dumps(forms))
    assert loaded["intensity_expr"] == forms["intensity_expr"]


def test_piecewise_parts_take_sympy_objects_only(tmp_path):
    canary = tmp_path / "canary"
    code = text(f"__import__('pathlib').Path({str(canary)!r}).touch()")
    x = symbol("x")
    for payload, named in (
        (sympy("ExprCondPair", x, code), "ExprCondPair called with a str"),
        (sympy("Piecewise", code), "Piecewise called with a str"),
        (sympy("Not", code), "Not called with a str"),
        (sympy("BooleanTrue", x), "BooleanTrue called with arguments"),
    ):
        with pytest.raises(UnsafePickleError, match=named):
            load_model_pickle(model_pickle(payload))
    assert not canary.exists()


def test_complex_sqrt_of_ampform_is_unfolded_or_explained():
    ampform_math = pytest.importorskip("ampform.sympy.math")
    from modelstore.publish.ampform_adapter import unfold_definitions

    x = sp.Symbol("x", real=True)
    expr = 1 / (1 + ampform_math.ComplexSqrt(x))
    unfolded = unfold_definitions(expr)
    assert unfolded == 1 / (1 + sp.Piecewise((sp.I * sp.sqrt(-x), x < 0), (sp.sqrt(x), True)))
    forms = {**toy_forms(), "intensity_expr": expr}
    with pytest.raises(UnsafePickleError, match="ComplexSqrt.*unfold_definitions") as info:
        load_forms_pickle(cloudpickle.dumps(forms))
    assert "\n" not in str(info.value)


def test_verify_numeric_and_the_srepr_twin(registry):
    from modelstore.backends.numeric import verify_numeric

    checks = verify_numeric(registry, ["pw@1.0.0"])
    assert {c.backend for c in checks} >= {"native", "numpy", "jax"}
    assert all(c.status == "ok" for c in checks), [c.detail for c in checks]
    model = published_model("pw", backend="numpy", registry=registry)
    assert model.load_forms("srepr")["intensity_expr"] == model.load_forms()["intensity_expr"]
