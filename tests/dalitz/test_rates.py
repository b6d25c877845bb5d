"""Decay rates, interference terms and averaged α⃗ per resonance, and LHCb's published values."""

from __future__ import annotations

import numpy as np
import pytest

from modelstore import PublishedModel, published_model
from modelstore.dalitz.kinematics import dalitz_contains, sample_dalitz
from modelstore.dalitz.paper import (
    ALPHA_NOT_COMPARED,
    PAPER_ALPHA_Z,
    PAPER_RATES,
    Measurement,
    compare,
)
from modelstore.dalitz.plot import model_masses
from modelstore.dalitz.rates import alignment_angle, phase_space_points, resonance_couplings
from modelstore.errors import InvalidInputError

REF = "default@1.1.0"  # rates need only the intensity
RESONANCES = {
    "K(700)", "K(892)", "K(1430)", "D(1232)", "D(1600)", "D(1700)",
    "L(1405)", "L(1520)", "L(1600)", "L(1670)", "L(1690)", "L(2000)",
}  # fmt: skip


@pytest.fixture(scope="module")
def model() -> PublishedModel:
    return published_model(REF, backend="auto")


@pytest.fixture(scope="module")
def latest() -> PublishedModel:
    """The embedded registry's default model at its latest version, native backend."""
    return published_model("default", backend="native")


@pytest.fixture(scope="module")
def rates_1m(latest: PublishedModel) -> dict[str, float]:
    return latest.decay_rates(1_000_000, seed=0)


def test_rates(model: PublishedModel) -> None:
    rates = model.decay_rates(20_000, seed=4)
    assert set(rates) == RESONANCES
    assert all(0 < r < 1 for r in rates.values())
    assert 0.9 < sum(rates.values()) < 1.2  # interference: not exactly 1
    assert rates == model.decay_rates(20_000, seed=4)
    assert max(rates, key=rates.__getitem__) in {"D(1232)", "K(892)"}


def test_one_resonance_by_hand(model: PublishedModel) -> None:
    couplings = resonance_couplings(model)
    values = model.parameters
    zeroed = {n: 0 * values[n] for r, ns in couplings.items() if r != "K(892)" for n in ns}
    s1, s2 = phase_space_points(model, 5000, seed=2)
    expected = np.nanmean(model.intensity(s1, s2, **zeroed)) / np.nanmean(model.intensity(s1, s2))
    assert model.decay_rates(5000, seed=2)["K(892)"] == pytest.approx(expected, rel=1e-12)


def test_phase_space_points(model: PublishedModel) -> None:
    s1, s2 = phase_space_points(model, 50_000, seed=3)
    assert s1.shape == s2.shape == (50_000,)
    assert dalitz_contains(s1, s2, *model_masses(model)).all()
    again = phase_space_points(model, 50_000, seed=3)
    assert np.array_equal(s1, again[0]) and np.array_equal(s2, again[1])
    assert not np.array_equal(s1, phase_space_points(model, 50_000, seed=4)[0])
    # uniform over the region: moments agree with plain random points (2 000 000 of them)
    r1, r2 = sample_dalitz(2_000_000, *model_masses(model), seed=0)
    for ours, theirs in ((s1, r1), (s2, r2), (s1 * s2, r1 * r2)):
        assert abs(ours.mean() - theirs.mean()) < 5 * theirs.std() / np.sqrt(2_000_000) + 1e-3


def test_ls_naming_is_found() -> None:
    other = published_model("ls-couplings@1.1.0", backend="numpy")
    assert {
        n.replace("\\Lambda", "L").replace("\\Delta", "D") for n in resonance_couplings(other)
    } == RESONANCES


def test_bad_input(model: PublishedModel) -> None:
    with pytest.raises(InvalidInputError, match="n must be"):
        model.decay_rates(10)
    with pytest.raises(InvalidInputError, match="n must be"):
        model.interference_terms(10)
    with pytest.raises(InvalidInputError, match="frame must be"):
        model.averaged_polarimeter(2000, frame="lab")
    with pytest.raises(InvalidInputError, match="chain must be"):
        alignment_angle(model, 4, 1.0, 2.0)
    with pytest.raises(InvalidInputError, match="quantity must be"):
        compare("alpha_x", {})


def test_interference_terms_complete_the_rates(model: PublishedModel) -> None:
    rates = model.decay_rates(20_000, seed=1)
    terms = model.interference_terms(20_000, seed=1)
    assert len(terms) == 66 and {n for pair in terms for n in pair} == RESONANCES
    # the full intensity is computed on its own, not as a sum of the parts
    assert sum(rates.values()) + sum(terms.values()) == pytest.approx(1.0, abs=1e-9)
    assert max(abs(t) for t in terms.values()) > 0.01  # the default model does interfere


def test_paper_table() -> None:
    assert set(PAPER_RATES) == set(PAPER_ALPHA_Z) == RESONANCES
    assert PAPER_RATES["D(1232)"] == Measurement(28.60, 0.29, 0.76, 0.16)
    assert PAPER_ALPHA_Z["L(1520)"] == Measurement(-925, 25, 84, 5)
    assert PAPER_RATES["K(1430)"].stat_syst == pytest.approx(np.hypot(0.6, 2.7))
    (row,) = compare("rate", {"K(700)": 0.0318})
    assert row.ours == pytest.approx(3.18) and row.pull == pytest.approx(1.0)
    assert compare("alpha_z", {"K(892)": 0.873}) == []  # not comparable, left out


def test_rates_agree_with_paper(rates_1m: dict[str, float]) -> None:
    rows = compare("rate", rates_1m)
    assert {r.name for r in rows} == RESONANCES
    pulls = {r.name: round(r.pull, 2) for r in rows}
    assert all(abs(p) < 1 for p in pulls.values()), pulls  # within the paper's stat uncertainty


def test_integration_error_is_negligible(
    latest: PublishedModel, rates_1m: dict[str, float]
) -> None:
    doubled = latest.decay_rates(2_000_000, seed=1)  # twice the points, another shift
    for name, measured in PAPER_RATES.items():
        change = 100 * abs(doubled[name] - rates_1m[name])
        assert change < measured.stat / 10, (name, change, measured.stat)


def test_averaged_alpha_agrees_with_paper(latest: PublishedModel) -> None:
    averaged = latest.averaged_polarimeter(1_000_000, seed=0)
    assert set(averaged) == RESONANCES
    rows = compare("alpha_z", {name: a[2] for name, a in averaged.items()})
    assert {r.name for r in rows} == RESONANCES - ALPHA_NOT_COMPARED
    pulls = {r.name: round(r.pull, 2) for r in rows}
    assert all(abs(p) < 1 for p in pulls.values()), pulls  # within the paper's stat uncertainty
    # one resonance alone has a constant α⃗ along z in its own chain
    for name, (ax, ay, _) in averaged.items():
        if name not in ALPHA_NOT_COMPARED:
            assert abs(ax) < 1e-6 and abs(ay) < 1e-6, name


def test_reference_frame_alpha(latest: PublishedModel) -> None:
    own = latest.averaged_polarimeter(20_000, seed=0)
    ref1 = latest.averaged_polarimeter(20_000, seed=0, frame="reference")
    for name in RESONANCES:
        if name.startswith("K"):  # chain 1 is the reference subsystem
            assert ref1[name] == own[name]
        else:  # turned about y: |ᾱ| shrinks, ᾱy stays
            assert np.hypot(ref1[name][0], ref1[name][2]) < abs(own[name][2])
            assert abs(ref1[name][0]) > 0.01
            assert ref1[name][1] == pytest.approx(own[name][1], abs=1e-9)


def test_alignment_angle_matches_ampform_dpd(model: PublishedModel) -> None:
    angles = pytest.importorskip("ampform_dpd.angles")
    import sympy as sp

    m0, m1, m2, m3 = model_masses(model)
    s1, s2 = phase_space_points(model, 1000, seed=5)
    for chain in (2, 3):
        _, expr = angles.formulate_zeta_angle(0, chain, 1)
        symbols = sorted(expr.free_symbols, key=str)
        values = {"m0": m0, "m1": m1, "m2": m2, "m3": m3, "sigma1": s1, "sigma2": s2}
        values["sigma3"] = m0**2 + m1**2 + m2**2 + m3**2 - s1 - s2
        func = sp.lambdify(symbols, expr.doit(), "numpy")
        expected = func(*(values[str(s)] for s in symbols))
        np.testing.assert_allclose(alignment_angle(model, chain, s1, s2), expected, atol=1e-9)
    assert not alignment_angle(model, 1, s1, s2).any()
