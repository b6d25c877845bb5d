"""Toy events by accept-reject (modelstore.dalitz.sampling): distribution, seeds, envelope."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from modelstore import PublishedModel, published_model
from modelstore.dalitz import sampling
from modelstore.dalitz.plot import model_masses
from modelstore.dalitz.rates import phase_space_points
from modelstore.errors import InvalidInputError

REF = "default"
BINS = 20
# chi² of 20 bins (19 degrees of freedom, the total being fixed) exceeds 43.8 with probability 1e-3
CHI2_LIMIT = 43.8


@pytest.fixture(scope="module")
def model() -> PublishedModel:
    return published_model(REF)


def binned_chi2(model: PublishedModel, s1: np.ndarray, s2: np.ndarray, **overrides: Any) -> float:
    """Largest chi² of the σ1 and σ2 marginals against the intensity integrated on 10⁶ points."""
    m0, m1, m2, m3 = model_masses(model)
    q1, q2 = phase_space_points(model, 1_000_000, seed=5)
    weight = model.intensity(q1, q2, **overrides)
    worst = 0.0
    for events, points, lo, hi in (
        (s1, q1, (m2 + m3) ** 2, (m0 - m1) ** 2),
        (s2, q2, (m3 + m1) ** 2, (m0 - m2) ** 2),
    ):
        edges = np.linspace(lo, hi, BINS + 1)
        observed = np.histogram(events, edges)[0]
        shape = np.histogram(points, edges, weights=weight)[0]
        expected = events.size * shape / shape.sum()
        worst = max(worst, float(np.sum((observed - expected) ** 2 / expected)))
    return worst


def test_sample_follows_the_intensity(model: PublishedModel) -> None:
    s1, s2 = sampling.sample(model, 40_000, seed=1)
    assert s1.shape == s2.shape == (40_000,)
    assert binned_chi2(model, s1, s2) < CHI2_LIMIT
    # the test can fail: uniform phase space is far from the intensity
    u1, u2 = phase_space_points(model, 40_000, seed=2)
    assert binned_chi2(model, u1, u2) > 100 * CHI2_LIMIT


def test_same_seed_same_events(model: PublishedModel) -> None:
    a = sampling.sample(model, 2000, seed=7)
    b = model.sample(2000, seed=7)
    c = sampling.sample(model, 2000, seed=8)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0])
    fresh = sampling.sample(model, 2000)  # seed None: fresh entropy
    assert not np.array_equal(a[0], fresh[0])


def test_overrides_change_the_sample(model: PublishedModel) -> None:
    nominal = sampling.sample(model, 20_000, seed=3)
    moved = model.sample(20_000, seed=3, m_K892=1.1)  # ASCII alias of m_{K(892)}
    assert not np.array_equal(nominal[0], moved[0])

    def near_892(s1: np.ndarray) -> float:
        return float(np.mean((s1 > 0.7) & (s1 < 0.9)))

    assert near_892(moved[0]) < 0.5 * near_892(nominal[0])
    assert binned_chi2(model, *moved, **{"m_{K(892)}": 1.1}) < CHI2_LIMIT


def test_envelope_check_repairs_an_underestimating_pilot(
    model: PublishedModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    made: list[sampling.Envelope] = []

    class Spy(sampling.Envelope):
        def __init__(self, pilot: np.ndarray, safety: float = sampling.SAFETY) -> None:
            super().__init__(pilot, safety)
            self.first = self.value
            made.append(self)

    monkeypatch.setattr(sampling, "Envelope", Spy)
    monkeypatch.setattr(sampling, "PILOT", 5)  # five points cannot find the peaks
    s1, s2 = sampling.sample(model, 40_000, seed=1)
    (envelope,) = made
    assert envelope.raised >= 1
    assert envelope.value > 2 * envelope.first
    values = model.intensity(s1, s2)
    assert np.all(values <= envelope.value)
    assert binned_chi2(model, s1, s2) < CHI2_LIMIT


def test_envelope_bounds_what_it_accepts() -> None:
    envelope = sampling.Envelope(np.array([1.0, 2.0, np.nan]))
    assert envelope.value == pytest.approx(2.4)
    assert envelope.nan == 1
    assert envelope.check(np.array([0.5, 2.3]))
    assert not envelope.check(np.array([0.5, 3.0]))
    assert envelope.value == pytest.approx(3.6)
    assert envelope.raised == 1
    keep = envelope.accept(np.array([np.nan, 0.0, 3.6, 3.6]), np.random.default_rng(0))
    assert keep.tolist() == [False, False, True, True]
    assert envelope.nan == 2
    with pytest.raises(InvalidInputError, match="zero or NaN"):
        sampling.Envelope(np.array([np.nan, 0.0]))


def test_nan_intensities_are_counted_and_rejected(
    model: PublishedModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = model.intensity

    def broken(s1: Any, s2: Any, **parameters: Any) -> Any:
        out = np.array(real(s1, s2, **parameters), dtype=np.float64)
        out[np.asarray(s1) < 1.0] = np.nan
        return out

    monkeypatch.setattr(model, "intensity", broken)
    with pytest.warns(RuntimeWarning, match=r"\d+ proposals inside the Dalitz region had a NaN"):
        s1, _ = sampling.sample(model, 1000, seed=4)
    assert np.all(s1 >= 1.0)


@pytest.mark.parametrize("n", [0, -3, 2.5, "10", True, None, 10**9])
def test_bad_n(model: PublishedModel, n: Any) -> None:
    with pytest.raises(InvalidInputError, match="^n must be") as info:
        sampling.sample(model, n, seed=1)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("seed", [-1, 1.5, "a", False, [1]])
def test_bad_seed(model: PublishedModel, seed: Any) -> None:
    with pytest.raises(InvalidInputError, match="^seed must be") as info:
        model.sample(10, seed=seed)
    assert "\n" not in str(info.value)


def test_unknown_parameter(model: PublishedModel) -> None:
    with pytest.raises(InvalidInputError, match="m_K892"):
        model.sample(10, seed=1, m_K893=0.9)
