"""A spin-1/2 decay published from its ampform-dpd builder carries the polarimeter vector α⃗:
Ξc⁺ → Σ⁺ π⁺ K⁻ (tests/ampform_models.py), not the LHCb decay."""

from __future__ import annotations

import numpy as np
import pytest
from registry_helpers import new_registry

from modelstore import published_model
from modelstore.dalitz.kinematics import sample_dalitz
from modelstore.errors import InvalidInputError
from modelstore.publish.gate import staged_intensity
from modelstore.publish.generic import publish_forms

pytest.importorskip("ampform_dpd")
ampform_models = pytest.importorskip("ampform_models")


@pytest.fixture(scope="module")
def builder():
    return ampform_models.xic_builder()


@pytest.fixture(scope="module")
def published(builder, tmp_path_factory):
    registry = new_registry(tmp_path_factory.mktemp("xic") / "registry")
    outcome = publish_forms(builder, "xic", "1.0.0", registry=registry)
    assert outcome.status == "published"
    return registry


def _points(model):
    masses = [model.parameters[f"m{i}"] for i in range(4)]
    return sample_dalitz(400, *(float(m) for m in masses), seed=8)


@pytest.mark.upstream
def test_alpha_is_upstreams_formula_on_the_same_builder(builder, published):
    """polarimetry-lc2pkpi's formulate_polarimetry (written for Λc⁺, general for any spin-1/2
    ampform-dpd decay) on this builder, lambdified: every backend agrees to 1e-9."""
    polarimetry = pytest.importorskip("polarimetry")
    from ampform.sympy import perform_cached_doit

    from modelstore.publish.ampform_adapter import forms_from_ampform_dpd, unfold_definitions

    amplitude_model = builder.formulate(reference_subsystem=1)
    forms = forms_from_ampform_dpd(amplitude_model)
    upstream = [
        staged_intensity(
            {
                **forms,
                "intensity_expr": unfold_definitions(  # staged_intensity keeps the real part
                    perform_cached_doit(a.doit().xreplace(amplitude_model.amplitudes))
                ),
            }
        )
        for a in polarimetry.formulate_polarimetry(builder, reference_subsystem=1)
    ]
    for backend in ("native", "numpy"):
        model = published_model("xic", backend=backend, registry=published)
        s1, s2 = _points(model)
        expected = np.stack([f(s1, s2) for f in upstream], axis=-1)
        alpha = model.polarimeter(s1, s2)
        assert np.array_equal(np.isnan(alpha), np.isnan(expected)), backend
        ok = ~np.isnan(expected)
        assert ok.sum() > 300 and np.abs(expected[ok]).max() > 0.05
        np.testing.assert_allclose(alpha[ok], expected[ok], rtol=0, atol=1e-9, err_msg=backend)


def test_alpha_is_a_unit_vector_at_most_and_the_reference_holds_it(published):
    model = published_model("xic", backend="native", registry=published)
    s1, s2 = _points(model)
    alpha = model.polarimeter(s1, s2)
    inside = ~np.isnan(alpha).any(axis=-1)
    assert inside.sum() > 300
    norm = np.linalg.norm(alpha[inside], axis=-1)
    assert norm.max() <= 1 + 1e-12 and norm.max() > 0.05
    from modelstore.backends.numeric import verify_numeric

    checks = verify_numeric(published, ["xic@1.0.0"], backends=["native"])
    assert [c.status for c in checks] == ["ok"] and "α" in checks[0].detail, checks[0].detail


def test_a_builder_of_another_spin_has_no_alpha_and_the_formula_says_why():
    from modelstore.publish.ampform_adapter import (
        forms_from_ampform_dpd_builder,
        polarimetry_forms_of_builder,
    )

    builder = ampform_models._builder(*ampform_models.d0_parts())
    forms, model = forms_from_ampform_dpd_builder(builder)
    assert "polarimetry" not in forms
    with pytest.raises(InvalidInputError, match="spin-1/2 decaying particle; D0 has 0"):
        polarimetry_forms_of_builder(builder, model)


def test_its_couplings_are_complex_and_a_coupling_fit_caches_its_amplitudes(published):
    """ampform-dpd's couplings default to the integer 1: published complex, so they can be set
    and fitted; the amplitude forms the builder gave make the coupling cache work."""
    from modelstore.fit.couplings import CouplingCache

    model = published_model("xic", backend="native", registry=published)
    couplings = [p for p in model.manifest.parameters if "production" in p.name]
    assert couplings and all(p.dtype == "complex128" for p in couplings)
    radii = [p for p in model.manifest.parameters if p.name.startswith("R_")]
    assert radii and all(p.dtype == "float64" for p in radii)  # defaults 1 in ampform-dpd
    from modelstore.dalitz.rates import phase_space_points

    # this model is NaN where σ1 < 0.633 GeV² (16 % of the region, as sympy's own lambdify):
    # ampform-dpd 0.4.3's decay form factor is FormFactor(s=σ1**2), the square of a squared
    # mass, whose breakup momentum is imaginary below σ1 = (m2 + m3) GeV. Data and
    # normalization points are taken where the model is a number
    s1, s2 = _points(model)
    finite = np.isfinite(model.intensity(s1, s2))
    s1, s2 = s1[finite], s2[finite]
    n1, n2 = phase_space_points(model, 4000, seed=0)
    finite = np.isfinite(model.intensity(n1, n2))
    free = [p.name for p in couplings][1:]
    cache = CouplingCache.build(  # checked against the model to 1e-9 at build
        model, (s1, s2), normalization=(n1[finite], n2[finite]), free=free
    )
    x = cache.values_from() + 0.3
    expected = model.intensity(s1, s2, **cache.as_parameters(x))
    np.testing.assert_allclose(cache.intensity(x), expected, rtol=1e-9)


def test_field_band_and_rates_use_its_own_axes_and_models(builder, published, tmp_path):
    """`field` names the axes sigma1, sigma2 (with the model's particles in the metadata), not
    upstream's m^2_Kpi, m^2_pK; `band` wants the models to compare with (there is no catalog
    of alternatives), and refuses a model of another decay; `rates --alpha` runs."""
    import json

    from click.testing import CliRunner

    from modelstore.cli import main
    from modelstore.dalitz.band import quantity_values
    from modelstore.publish.ampform_adapter import forms_from_ampform_dpd_builder

    base = ["--registry", str(published.root), "--trust"]
    runner = CliRunner()
    out = tmp_path / "field.json"
    result = runner.invoke(main, [*base, "field", "xic", "-o", str(out), "--grid", "12"])
    assert result.exit_code == 0, result.output
    doc = json.loads(out.read_text())
    assert list(doc)[:3] == ["metadata", "sigma1", "sigma2"]
    assert doc["metadata"]["axes"] == {"sigma1": "m²(pi+ K-)", "sigma2": "m²(K- Sigma+)"}
    model = published_model("xic", registry=published, backend="native")
    intensity, alpha = model.intensity_and_polarimeter(doc["sigma1"][5], doc["sigma2"][6])
    assert doc["intensity"][6][5] == pytest.approx(float(intensity), rel=1e-12)
    assert doc["alpha_z"][6][5] == pytest.approx(float(alpha[2]), rel=1e-9, abs=1e-12)

    result = runner.invoke(main, [*base, "band", "xic"])
    assert result.exit_code == 1 and "--against" in result.output
    assert "Traceback" not in result.output
    # the same decay with a wider K̄*(892): the envelope holds both shapes, point by point
    forms, _ = forms_from_ampform_dpd_builder(builder)
    width = next(s for s in forms["parameter_defaults"] if str(s).startswith(r"\Gamma_{\bar{K}"))
    forms["parameter_defaults"][width] *= 2
    publish_forms(forms, "xic-wide", "1.0.0", registry=published, native=False)
    band_file = tmp_path / "band.json"
    result = runner.invoke(
        main, [*base, "band", "xic", "--quantity", "intensity", "--against", "xic-wide",
               "--grid", "12", "-o", str(band_file)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "over 2 models" in result.output
    spread = json.loads(band_file.read_text())
    assert spread["models"] == ["xic@1.0.0", "xic-wide@1.0.0"]
    s1, s2 = np.meshgrid(spread["sigma1"], spread["sigma2"])
    wide = quantity_values(published_model("xic-wide", registry=published), "intensity", s1, s2)
    low, high, nominal = (np.array(spread[k], dtype=float) for k in ("min", "max", "nominal"))
    inside = np.isfinite(low)
    assert inside.sum() > 20
    for values in (wide, nominal):
        assert np.all(low[inside] <= values[inside] + 1e-12)
        assert np.all(values[inside] <= high[inside] + 1e-12)
    assert np.max((high - low)[inside]) > 0.01  # the shapes differ
    from toy_models import toy_forms  # another decay: other masses

    publish_forms(toy_forms(), "toy", "1.0.0", registry=published, native=False)
    other = runner.invoke(main, [*base, "band", "xic", "--against", "toy"])
    assert other.exit_code == 1 and "masses (m0..m3) differ" in other.output

    result = runner.invoke(main, [*base, "rates", "xic", "-n", "2000", "--alpha"])
    assert result.exit_code == 0, result.output
    assert "Xi(1820)" in result.output and "K}^*(892)" in result.output
