"""Open publishing: a hand-written sympy model through publish_forms and `publish --forms`.

The toy model (tests/toy_models.py) needs no ampform: two resonances, a helicity angle, a
complex coupling and a sqrt that is negative in part of the Dalitz region.
"""

from __future__ import annotations

import io
import pickle

import cloudpickle
import numpy as np
import pytest
import sympy as sp
from click.testing import CliRunner
from registry_helpers import new_registry
from toy_models import MASSES, toy_forms

from modelstore import published_model
from modelstore.backends.numeric import verify_numeric
from modelstore.cli import main
from modelstore.dalitz.kinematics import dalitz_contains, sample_dalitz
from modelstore.errors import (
    InvalidInputError,
    InvalidNameError,
    ModelstoreError,
    PublishConflictError,
    UnsafePickleError,
)
from modelstore.format.manifest import Manifest
from modelstore.publish import generic
from modelstore.publish.gate import independent_intensity
from modelstore.publish.generic import publish_forms

ABOUT = {
    "decay": "D⁰ → K⁻ π⁺ π⁰ (toy)",
    "particles": ["D⁰", "K⁻", "π⁺", "π⁰"],
    "authors": ["A. Physicist"],
    "references": ["arXiv:0000.00000"],
    "license": "CC-BY-4.0",
    "description": "a toy with a rho and a K*",
}


@pytest.fixture(scope="module")
def toy_registry(tmp_path_factory):
    registry = new_registry(tmp_path_factory.mktemp("toy") / "registry")
    outcome = publish_forms(toy_forms(), "toy", "1.0.0", registry=registry, **ABOUT)
    return registry, outcome


def test_publish_forms_publishes_and_every_backend_agrees_with_sympy(toy_registry):
    registry, outcome = toy_registry
    assert outcome.status == "published"
    assert outcome.gate["C"] <= 1e-9 and outcome.gate["array program"] <= 1e-9
    checks = verify_numeric(registry, ["toy@1.0.0"], backends=["native", "numpy"])
    assert [c.status for c in checks] == ["ok", "ok"], [c.detail for c in checks]
    # and at fresh points: the seed's route inside, NaN where σ1 < 0.3 (sqrt of a negative)
    s1, s2 = sample_dalitz(1000, *MASSES, seed=7)
    expected = independent_intensity(toy_forms())(s1, s2)
    assert 0 < np.isnan(expected).sum() < 1000
    for backend in ("native", "numpy"):
        got = published_model("toy", backend=backend, registry=registry).intensity(s1, s2)
        assert np.array_equal(np.isnan(got), np.isnan(expected)), backend
        ok = ~np.isnan(expected)
        np.testing.assert_allclose(got[ok], expected[ok], rtol=1e-9, err_msg=backend)


def test_the_manifest_carries_about_and_no_upstream(toy_registry):
    registry, _ = toy_registry
    manifest = registry.manifest("toy@1.0.0")
    assert manifest.upstream_index is None
    assert manifest.title == ABOUT["decay"]
    assert manifest.about.decay == ABOUT["decay"]
    assert [p.label for p in manifest.about.particles] == ABOUT["particles"]
    assert manifest.about.axis_labels() == ("m²(π⁺ π⁰)", "m²(π⁰ K⁻)")
    assert Manifest.from_bytes(manifest.to_bytes()) == manifest


def test_same_forms_again_is_unchanged_and_other_forms_are_refused(toy_registry):
    registry, _ = toy_registry
    again = publish_forms(toy_forms(), "toy", "1.0.0", registry=registry, **ABOUT)
    assert again.status == "unchanged"
    with pytest.raises(PublishConflictError, match="already published with other content"):
        publish_forms(
            toy_forms(threshold=sp.Rational(1, 4)), "toy", "1.0.0", registry=registry, **ABOUT
        )
    with pytest.raises(PublishConflictError, match="ids are unique per registry"):
        publish_forms(toy_forms(), "toy", "1.0.1", registry=registry, title="another model")


def test_sigma_symbols_with_other_assumptions_are_the_same_model(tmp_path):
    registry = new_registry(tmp_path / "r")
    plain = publish_forms(toy_forms(sigma_assumptions={}), "toy", "1.0.0", registry=registry)
    canonical = publish_forms(toy_forms(), "toy", "1.0.0", registry=registry)
    assert (plain.status, canonical.status) == ("published", "unchanged")


def _refused(forms, match, **kwargs):
    with pytest.raises((InvalidInputError, InvalidNameError, UnsafePickleError), match=match):
        generic.build_forms(forms, kwargs.pop("model_id", "toy"), kwargs.pop("version", "1.0.0"))


def test_bad_forms_are_refused_in_one_line():
    forms = toy_forms()
    _refused({k: v for k, v in forms.items() if k != "sigma3"}, r"missing keys \['sigma3'\]")
    stray = sp.Symbol("g_extra") * sp.Symbol("h_other")
    _refused({**forms, "intensity_expr": forms["intensity_expr"] * stray}, "g_extra, h_other")
    _refused({**forms, "intensity_expr": "|A|^2"}, "not a sympy expression")
    _refused({**forms, "intensity_expr": 1.5}, "not a sympy expression")
    heavy = {s: (5.0 if str(s) == "m1" else v) for s, v in forms["parameter_defaults"].items()}
    _refused({**forms, "parameter_defaults": heavy}, "leave no Dalitz region")
    wide = sp.Float("0.1", 30)  # 103 bits: the pickle holds doubles
    _refused({**forms, "intensity_expr": forms["intensity_expr"] * wide}, "not doubles.*Rational")
    _refused(forms, "invalid model id", model_id="Toy Model")
    _refused(forms, "invalid version", version="1.0")
    nan_everywhere = toy_forms(threshold=sp.Integer(100))
    _refused(nan_everywhere, "NaN at every one of 1000 points inside")


def test_double_float_constants_are_published(tmp_path):
    forms = toy_forms()
    forms["intensity_expr"] = forms["intensity_expr"] * sp.Float(0.5) + sp.Float(1e-3)
    forms["parameter_defaults"] = {
        s: sp.Float(v) if isinstance(v, float) else v
        for s, v in forms["parameter_defaults"].items()
    }
    registry = new_registry(tmp_path / "r")
    outcome = publish_forms(forms, "toy", "1.0.0", registry=registry)
    assert outcome.status == "published"
    assert outcome.gate["C"] <= 1e-9 and outcome.gate["array program"] <= 1e-9
    model = published_model("toy", registry=registry, backend="native")
    assert model.load_forms("pickle")["intensity_expr"] == forms["intensity_expr"]
    assert model.load_forms("srepr")["intensity_expr"] == forms["intensity_expr"]
    s1, s2 = sample_dalitz(1000, *MASSES, seed=5)
    plain = published_model("toy", registry=registry, backend="numpy").intensity(s1, s2)
    ok = ~np.isnan(plain)
    expected = independent_intensity(toy_forms())(s1, s2) * 0.5 + 1e-3
    np.testing.assert_allclose(model.intensity(s1, s2)[ok], expected[ok], rtol=1e-9)
    np.testing.assert_allclose(plain[ok], expected[ok], rtol=1e-9)


def test_a_program_that_disagrees_is_refused_naming_the_worst_point(tmp_path, monkeypatch):
    real = generic.generate_array_source

    def perturbed(forms, names):  # one parameter slightly off in the array program only
        return real(forms, names).replace("par[0]", "(par[0] * 1.000001)", 1)

    monkeypatch.setattr(generic, "generate_array_source", perturbed)
    registry = new_registry(tmp_path / "r")
    with pytest.raises(ModelstoreError, match=r"the array program differs .* worst at σ1=\S+, σ2="):
        publish_forms(toy_forms(), "toy", "1.0.0", registry=registry)
    assert not (registry.root / "manifests" / "toy").exists()


def _cli(registry, *args):
    return CliRunner().invoke(main, ["--registry", str(registry.root), *args])


def test_cli_publishes_forms_and_list_show_plot_use_the_models_own_labels(tmp_path, monkeypatch):
    monkeypatch.setenv("MODELSTORE_PROGRESS", "1")
    forms_file = tmp_path / "exported-model.pkl"
    forms_file.write_bytes(cloudpickle.dumps(toy_forms()))
    registry = new_registry(tmp_path / "r")
    result = _cli(
        registry, "publish", "--version", "1.2.3", "--forms", str(forms_file), "--id", "toy",
        "--decay", ABOUT["decay"], "--particles", ",".join(ABOUT["particles"]),
        "--author", "A. Physicist", "--package", "mytool=0.1",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "published  toy@1.2.3" in result.output and "inside the Dalitz region" in result.output
    assert "building toy@1.2.3: array program, C source, checks ..." in result.stderr
    assert f"writing toy@1.2.3 to {registry.location}: done" in result.stderr
    monkeypatch.delenv("MODELSTORE_PROGRESS")
    again = _cli(
        registry, "publish", "--version", "1.0.0", "--forms", str(forms_file), "--id", "toy2"
    )
    assert again.exit_code == 0, again.output
    assert again.stderr == ""  # not a terminal: no progress
    listing = _cli(registry, "list")
    assert "toy" in listing.output and "1.2.3" in listing.output
    shown = _cli(registry, "show", "toy")
    assert "decay     D⁰ → K⁻ π⁺ π⁰ (toy)" in shown.output
    assert "axes      sigma1 = m²(π⁺ π⁰), sigma2 = m²(π⁰ K⁻)" in shown.output
    assert "mytool 0.1" in shown.output and "upstream" not in shown.output
    pytest.importorskip("matplotlib")
    from modelstore.dalitz.plot import dalitz_figure

    figure = dalitz_figure(
        published_model("toy", backend="numpy", registry=registry), resolution=20
    )
    assert "π⁺ π⁰" in figure.axes[0].get_xlabel() and "π⁰ K⁻" in figure.axes[0].get_ylabel()


def test_cli_refuses_bad_forms_files_in_one_line_and_writes_nothing(tmp_path):
    registry = new_registry(tmp_path / "r")
    cases = {
        "missing.pkl": cloudpickle.dumps({"intensity_expr": sp.Integer(1)}),
        "hostile.pkl": pickle.dumps(io.BytesIO),  # any global off the allow-list
    }
    try:
        from ampform.kinematics.phasespace import Kallen
    except ImportError:
        Kallen = None  # noqa: N806
    if Kallen is not None:
        x, y, z = sp.symbols("x y z")
        cases["kallen.pkl"] = cloudpickle.dumps({**toy_forms(), "intensity_expr": Kallen(x, y, z)})
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
        result = _cli(
            registry,
            "publish",
            "--version",
            "1.0.0",
            "--forms",
            str(tmp_path / name),
            "--id",
            "toy",
        )
        assert result.exit_code == 1, (name, result.output)
        assert result.output.count("\n") == 1 and "Traceback" not in result.output, result.output
        assert not (registry.root / "manifests").exists()
    missing = _cli(
        registry,
        "publish",
        "--version",
        "1.0.0",
        "--forms",
        str(tmp_path / "missing.pkl"),
        "--id",
        "toy",
    )
    assert "keys" in missing.output and "sigma3" in missing.output  # the unpickler's shape check
    if Kallen is not None:
        out = _cli(
            registry,
            "publish",
            "--version",
            "1.0.0",
            "--forms",
            str(tmp_path / "kallen.pkl"),
            "--id",
            "toy",
        ).output
        assert "Kallen" in out and "doit()" in out


def test_a_custom_model_without_polarimetry_says_what_it_lacks(toy_registry):
    registry, _ = toy_registry
    from modelstore.errors import BackendUnavailableError

    model = published_model("toy", backend="numpy", registry=registry)
    with pytest.raises(BackendUnavailableError, match="spin-1/2 decaying particle") as info:
        model.polarimeter(1.0, 1.0)
    assert "\n" not in str(info.value)


def test_old_manifests_parse_and_print_unchanged(embedded):
    for ref in ("default@1.0.0", "default@1.4.0", "ls-couplings@1.4.0"):
        data = embedded.store.read(f"manifests/{ref.replace('@', '/')}.json")
        manifest = Manifest.from_bytes(data)
        assert manifest.about is None and manifest.to_bytes() == data


def test_outside_points_are_nan_as_the_staged_route(toy_registry):
    registry, _ = toy_registry
    rng = np.random.default_rng(3)
    s1, s2 = rng.uniform(0, 3.5, 400), rng.uniform(0, 3.5, 400)
    outside = ~dalitz_contains(s1, s2, *MASSES)
    got = published_model("toy", backend="native", registry=registry).intensity(s1, s2)
    assert np.isnan(got[outside]).all()


def test_about_is_read_strictly():
    from modelstore.errors import ManifestError
    from modelstore.format.about import About

    good = {"decay": "J/ψ → K⁰ Σ⁺ p̄", "particles": [{"label": "J/ψ", "mass": 3.0969}] + [
        {"label": x, "mass": None} for x in ("K⁰", "Σ⁺", "p̄")
    ], "packages": {"ampform-dpd": "0.4.3"}}  # fmt: skip
    assert About.from_dict(good).to_dict() == good
    for bad in (
        {**good, "colour": "red"},
        {**good, "particles": good["particles"][:3]},
        {**good, "decay": ""},
        {**good, "particles": [{"label": "x", "mass": -1.0}] * 4},
        {**good, "authors": "one string"},
    ):
        with pytest.raises(ManifestError):
            About.from_dict(bad)


def test_eval_of_a_custom_model_reads_and_writes_generic_column_names(toy_registry, tmp_path):
    """Nothing in another decay is called msq_piK: a custom model's defaults are sigma1, sigma2."""
    registry, _ = toy_registry
    s1, s2 = sample_dalitz(500, *MASSES, seed=2)
    np.savez(tmp_path / "events.npz", sigma1=s1, sigma2=s2)
    result = _cli(
        registry, "eval", "toy", "--input", str(tmp_path / "events.npz"),
        "--output", str(tmp_path / "out.npz"), "--backend", "numpy",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    with np.load(tmp_path / "out.npz") as out:
        assert sorted(out.files) == ["intensity", "sigma1", "sigma2"]
        expected = published_model("toy", backend="numpy", registry=registry).intensity(s1, s2)
        np.testing.assert_array_equal(out["intensity"], expected)
    np.savez(tmp_path / "lhcb.npz", msq_piK=s1, msq_Kp=s2)
    args = ["eval", "toy", "--input", str(tmp_path / "lhcb.npz"), "--backend", "numpy"]
    refused = _cli(registry, *args, "--output", str(tmp_path / "no.npz"))
    assert refused.exit_code == 1 and "sigma1" in refused.output, refused.output
    assert not (tmp_path / "no.npz").exists()
    named = _cli(
        registry, *args, "--output", str(tmp_path / "named.npz"),
        "--sigma1-branch", "msq_piK", "--sigma2-branch", "msq_Kp",
    )  # fmt: skip
    assert named.exit_code == 0, named.output


def test_axis_labels_are_the_lhcb_ones_only_for_the_lhcb_catalog(toy_registry, embedded):
    import dataclasses
    from types import SimpleNamespace

    from modelstore.dalitz.plot import GENERIC_LABELS, SIGMA1_LABEL, SIGMA2_LABEL, axis_labels

    registry, _ = toy_registry
    bare = dataclasses.replace(registry.manifest("toy@1.0.0"), about=None)
    assert axis_labels(SimpleNamespace(manifest=bare)) == GENERIC_LABELS  # type: ignore[arg-type]
    lhcb = published_model("default", backend="numpy", registry=embedded)
    assert axis_labels(lhcb) == (SIGMA1_LABEL, SIGMA2_LABEL)
