"""Decays other than Λc⁺ → p K⁻ π⁺, built with ampform-dpd, published through the CLI.

Every backend is compared with sympy's lambdify of the substituted expression (the seed's route)
at 1,000 phase-space points inside the Dalitz region (≤ 1e-9 relative, NaN exactly where it is
NaN) and with the staged route (variables first, as upstream documents) at points outside.
The D⁰ model is small and runs by default; J/ψ → K⁰ Σ⁺ p̄ (spin-1 decaying particle, a spin-3/2
resonance) takes a minute to unfold and publish, so it is an ``upstream`` test.
"""

from __future__ import annotations

import cloudpickle
import numpy as np
import pytest
import sympy as sp
from click.testing import CliRunner
from registry_helpers import new_registry

from modelstore import published_model
from modelstore.cli import main
from modelstore.dalitz.kinematics import dalitz_contains, sample_dalitz
from modelstore.format.reference import dalitz_limits
from modelstore.publish.gate import independent_intensity, staged_intensity

pytest.importorskip("ampform_dpd")
ampform_models = pytest.importorskip("ampform_models")
BACKENDS = ("native", "jax", "numpy")


def _publish_through_cli(tmp_path, model, model_id, decay, particles):
    from modelstore.publish.ampform_adapter import forms_from_ampform_dpd

    forms = forms_from_ampform_dpd(model)
    forms_file = tmp_path / "exported-model.pkl"
    forms_file.write_bytes(cloudpickle.dumps(forms))
    registry = new_registry(tmp_path / "registry")
    result = CliRunner().invoke(
        main,
        ["--registry", str(registry.root), "publish", "--version", "1.0.0", "--forms",
         str(forms_file), "--id", model_id, "--decay", decay, "--particles", particles],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return registry, forms


def _masses(forms):
    by_name = {str(k): v for k, v in forms["parameter_defaults"].items()}
    return tuple(float(by_name[f"m{i}"]) for i in range(4))


def _compare_every_backend(registry, ref, forms):
    masses = _masses(forms)
    s1, s2 = sample_dalitz(1000, *masses, seed=11)
    expected = independent_intensity(forms)(s1, s2)
    assert not np.isnan(expected).all()
    (lo1, hi1), (lo2, hi2) = dalitz_limits(*masses)
    rng = np.random.default_rng(5)
    o1, o2 = rng.uniform(lo1, hi1, 600), rng.uniform(lo2, hi2, 600)
    outside = ~dalitz_contains(o1, o2, *masses)
    o1, o2 = o1[outside], o2[outside]
    staged = staged_intensity(forms)(o1, o2)
    worst = {}
    for backend in BACKENDS:
        model = published_model(ref, backend=backend, registry=registry)
        got = model.intensity(s1, s2)
        assert np.array_equal(np.isnan(got), np.isnan(expected)), backend
        ok = ~np.isnan(expected)
        worst[backend] = float(np.max(np.abs(got[ok] - expected[ok]) / np.abs(expected[ok])))
        assert worst[backend] <= 1e-9, (backend, worst)
        assert np.array_equal(np.isnan(model.intensity(o1, o2)), np.isnan(staged)), backend
    return worst


def test_d0_to_k_pi_pi0_spin0_final_state(tmp_path):
    model = ampform_models.d0_model()
    registry, forms = _publish_through_cli(
        tmp_path, model, "d0-kpipi0", "D⁰ → K⁻ π⁺ π⁰", "D⁰,K⁻,π⁺,π⁰"
    )
    _compare_every_backend(registry, "d0-kpipi0", forms)
    about = registry.manifest("d0-kpipi0").about
    assert about.decay == "D⁰ → K⁻ π⁺ π⁰" and about.axis_labels() == ("m²(π⁺ π⁰)", "m²(π⁰ K⁻)")


def test_an_ampform_dpd_model_is_accepted_in_python(tmp_path):
    from modelstore.publish.generic import publish_forms

    registry = new_registry(tmp_path / "registry")
    outcome = publish_forms(ampform_models.d0_model(), "d0", "1.0.0", registry=registry)
    assert outcome.status == "published"
    about = registry.manifest("d0").about
    assert about.decay == "D0 → K- pi+ pi0"
    assert [p.mass for p in about.particles] == [1.86484, 0.493677, 0.13957, 0.134977]
    assert dict(about.packages)["ampform-dpd"]


@pytest.mark.upstream
def test_jpsi_to_k0_sigma_pbar_spin1_initial_state_and_spin_three_halves(tmp_path):
    model = ampform_models.jpsi_model()
    spins = {chain.resonance.spin for chain in model.decay.chains}
    assert model.decay.initial_state.spin == 1 and sp.Rational(3, 2) in spins
    registry, forms = _publish_through_cli(
        tmp_path, model, "jpsi-k0-sigma-pbar", "J/ψ → K⁰ Σ⁺ p̄", "J/ψ,K⁰,Σ⁺,p̄"
    )
    _compare_every_backend(registry, "jpsi-k0-sigma-pbar", forms)
