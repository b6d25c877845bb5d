"""CouplingCache: the cached Hermitian form against the model's own intensity, NLL and gradient."""

from __future__ import annotations

import numpy as np
import pytest

from modelstore import PublishedModel, published_model
from modelstore.dalitz.kinematics import sample_dalitz
from modelstore.dalitz.rates import phase_space_points
from modelstore.errors import InvalidInputError
from modelstore.fit.couplings import CouplingCache

N_EVENTS = 3000
N_NORMALIZATION = 4000


@pytest.fixture(scope="module")
def model() -> PublishedModel:
    return published_model("default", backend="native")


@pytest.fixture(scope="module")
def production(model: PublishedModel) -> list[str]:
    return [name for name in model.parameters if "mathrm{production}" in name]


@pytest.fixture(scope="module")
def data(model: PublishedModel) -> tuple[np.ndarray, np.ndarray]:
    p = model.parameters
    return sample_dalitz(N_EVENTS, p["m0"], p["m1"], p["m2"], p["m3"], seed=7)


@pytest.fixture(scope="module")
def weights() -> np.ndarray:
    return np.random.default_rng(3).uniform(0.5, 1.5, N_EVENTS)


@pytest.fixture(scope="module")
def cache(
    model: PublishedModel, production: list[str], data: tuple, weights: np.ndarray
) -> CouplingCache:
    """All production couplings but the reference one free, weighted events."""
    return CouplingCache.build(
        model, data, normalization=N_NORMALIZATION, free=production[1:], weights=weights
    )


def _random_values(cache: CouplingCache, seed: int) -> np.ndarray:
    x0 = cache.values_from()
    return x0 + np.random.default_rng(seed).normal(scale=2.0, size=x0.size)


def test_intensity_equals_the_models_at_random_couplings(
    cache: CouplingCache, model: PublishedModel, data: tuple
) -> None:
    for seed in range(8):
        x = _random_values(cache, seed)
        want = model.intensity(*data, **cache.as_parameters(x))
        got = cache.intensity(x)
        assert np.max(np.abs(got - want) / want) <= 1e-10


def test_normalization_integral_is_the_mean_intensity_over_the_points(
    cache: CouplingCache, model: PublishedModel
) -> None:
    n1, n2 = phase_space_points(model, N_NORMALIZATION, seed=0)
    for seed in range(4):
        x = _random_values(cache, 100 + seed)
        want = float(np.mean(model.intensity(n1, n2, **cache.as_parameters(x))))
        assert cache.normalization_integral(x) == pytest.approx(want, rel=1e-10)


def test_nll_is_the_weighted_normalised_log_likelihood(
    cache: CouplingCache, model: PublishedModel, data: tuple, weights: np.ndarray
) -> None:
    n1, n2 = phase_space_points(model, N_NORMALIZATION, seed=0)
    x = _random_values(cache, 11)
    overrides = cache.as_parameters(x)
    norm = float(np.mean(model.intensity(n1, n2, **overrides)))
    want = -np.sum(weights * np.log(model.intensity(*data, **overrides)))
    want += weights.sum() * np.log(norm)
    assert cache.nll(x) == pytest.approx(want, rel=1e-11)


def test_gradient_equals_finite_differences(cache: CouplingCache) -> None:
    for seed in (21, 22):
        x = _random_values(cache, seed)
        value, gradient = cache.nll_and_gradient(x)
        assert value == cache.nll(x)
        h = 1e-5
        steps = np.eye(x.size) * h
        numeric = np.array([(cache.nll(x + e) - cache.nll(x - e)) / (2 * h) for e in steps])
        scale = np.max(np.abs(gradient))
        assert np.max(np.abs(numeric - gradient)) <= 1e-6 * scale


def test_results_do_not_depend_on_threads(cache: CouplingCache) -> None:
    x = _random_values(cache, 5)
    before = cache.nll_and_gradient(x)
    threads = cache.threads
    try:
        cache.threads = 1
        after = cache.nll_and_gradient(x)
    finally:
        cache.threads = threads
    assert abs(after[0] - before[0]) <= 1e-12 * abs(before[0])
    np.testing.assert_allclose(after[1], before[1], rtol=1e-12, atol=1e-9)


def test_labels_and_the_value_vector(cache: CouplingCache, production: list[str]) -> None:
    assert len(cache.labels) == 2 * len(production[1:])
    assert cache.labels[:2] == [f"{production[1]}.re", f"{production[1]}.im"]
    x = cache.values_from()
    assert cache.as_parameters(x)[production[1]] == complex(cache.model.parameters[production[1]])
    assert cache.nbytes > 0
    with pytest.raises(InvalidInputError, match="finite real numbers"):
        cache.nll(x[:-1])


def test_fixed_couplings_are_the_constant_part(
    model: PublishedModel, production: list[str], data: tuple
) -> None:
    """Only K(892)'s couplings free: every other coupling is folded into the fixed part."""
    free = [name for name in production if "K(892)" in name]
    small = CouplingCache.build(model, data, normalization=2000, free=free)
    x = small.values_from() * 1.7 - 0.3
    want = model.intensity(*data, **small.as_parameters(x))
    assert np.max(np.abs(small.intensity(x) - want) / want) <= 1e-10


@pytest.mark.parametrize(
    "free",
    [
        ["m_{K(892)}"],  # a mass: not linear at all
        [r"\Gamma_{K(892)}", r"\mathcal{H}^\mathrm{production}[K(700), 0, 1/2]"],
    ],
)
def test_parameters_that_do_not_enter_linearly_are_refused(
    model: PublishedModel, data: tuple, free: list[str]
) -> None:
    with pytest.raises(InvalidInputError, match="not a Hermitian form"):
        CouplingCache.build(model, data, normalization=1000, free=free)


def test_bad_requests_are_refused(
    model: PublishedModel, production: list[str], data: tuple
) -> None:
    with pytest.raises(InvalidInputError, match="unknown"):
        CouplingCache.build(model, data, normalization=1000, free=["nope"])
    with pytest.raises(InvalidInputError, match="none or repeated"):
        CouplingCache.build(model, data, normalization=1000, free=[])
    with pytest.raises(InvalidInputError, match="integers"):
        CouplingCache.build(
            model, data, normalization=1000, free=[r"\mathcal{H}^\mathrm{decay}[K(700), 0, 0]"]
        )
    with pytest.raises(InvalidInputError, match="weights"):
        CouplingCache.build(model, data, 1000, free=production[:1], weights=np.ones(3))
    outside = (np.array([0.1, 1.0]), np.array([0.1, 2.0]))
    with pytest.raises(InvalidInputError, match="outside the Dalitz region"):
        CouplingCache.build(model, outside, normalization=1000, free=production[:1])
    inside = (data[0][:5], data[1][:5])
    normalization = (np.concatenate([inside[0], [0.1]]), np.concatenate([inside[1], [0.1]]))
    with pytest.raises(InvalidInputError, match=r"NaN at 1 of 6 points \(outside the Dalitz"):
        CouplingCache.build(model, inside, normalization=normalization, free=production[1:2])


def test_a_version_without_amplitude_forms_is_refused(production: list[str]) -> None:
    old = published_model("default@1.3.0", backend="numpy")
    p = old.parameters
    data = sample_dalitz(100, p["m0"], p["m1"], p["m2"], p["m3"], seed=1)
    with pytest.raises(InvalidInputError, match="no amplitude forms"):
        CouplingCache.build(old, data, normalization=1000, free=production[:1])
