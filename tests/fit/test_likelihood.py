"""UnbinnedNLL: its definition, exact gradient against finite differences, normalization rule."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from fit_toys import FREE

from modelstore import PublishedModel
from modelstore.dalitz.rates import phase_space_points
from modelstore.errors import InvalidInputError
from modelstore.fit import NormalizationWarning, UnbinnedNLL, fit, normalization_size

N_NORM = 20_000


@pytest.fixture(scope="module")
def nll(model: PublishedModel, events: tuple) -> UnbinnedNLL:
    weights = np.random.default_rng(2).uniform(0.5, 1.5, events[0].size)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NormalizationWarning)  # small on purpose: a fast test
        return UnbinnedNLL(model, events, FREE, normalization=N_NORM, weights=weights)


def test_labels_split_complex_parameters(nll: UnbinnedNLL) -> None:
    coupling = "\\mathcal{H}^\\mathrm{production}[K(892), 0, 1/2]"
    assert nll.labels == ["m_{K(892)}", "\\Gamma_{K(892)}", f"{coupling}.re", f"{coupling}.im"]


def test_value_is_the_weighted_normalised_log_likelihood(
    nll: UnbinnedNLL, model: PublishedModel, events: tuple
) -> None:
    x = nll.values_from() * 1.01
    overrides = nll.as_parameters(x)
    n1, n2 = phase_space_points(model, N_NORM, seed=0)
    norm = np.mean(model.intensity(n1, n2, **overrides))
    w = nll._w
    want = -np.sum(w * np.log(model.intensity(*events, **overrides) / norm))
    assert nll.nll(x) == pytest.approx(want, rel=1e-12)
    assert nll.nll_and_gradient(x)[0] == pytest.approx(want, rel=1e-12)


def test_gradient_agrees_with_central_differences(nll: UnbinnedNLL) -> None:
    x = nll.values_from() * np.array([1.003, 1.05, 0.9, 1.1])  # off the minimum
    _, gradient = nll.nll_and_gradient(x)
    for k in range(x.size):
        h = 1e-5 * max(abs(x[k]), 1e-2)
        up, down = x.copy(), x.copy()
        up[k] += h
        down[k] -= h
        numeric = (nll.nll(up) - nll.nll(down)) / (2 * h)
        assert gradient[k] == pytest.approx(numeric, rel=1e-6), nll.labels[k]


def test_estimator_interface_takes_names_and_gives_complex_gradients(
    nll: UnbinnedNLL,
) -> None:
    x = nll.values_from() * 1.02
    named = nll.as_parameters(x)
    assert nll(named) == pytest.approx(nll.nll(x), rel=1e-14)
    gradient = nll.gradient({"m_K892": named["m_{K(892)}"]})
    _, vector = nll.nll_and_gradient(x)
    coupling = "\\mathcal{H}^\\mathrm{production}[K(892), 0, 1/2]"
    assert gradient[coupling] == pytest.approx(complex(vector[2], vector[3]), rel=1e-14)
    with pytest.raises(InvalidInputError, match="not free"):
        nll({"m_K700": 0.8})


def test_acceptance_weighted_normalization(model: PublishedModel, events: tuple) -> None:
    n1, n2 = phase_space_points(model, 250_000, seed=4)
    acceptance = 0.5 + 0.5 * (n1 - n1.min()) / np.ptp(n1)
    nll = UnbinnedNLL(
        model, events, FREE, normalization={"sigma1": n1, "sigma2": n2, "weights": acceptance}
    )
    x = nll.values_from()
    intensity = model.intensity(n1, n2)
    norm = np.sum(acceptance * intensity) / np.sum(acceptance)
    want = -np.sum(np.log(model.intensity(*events))) + events[0].size * np.log(norm)
    assert nll.nll(x) == pytest.approx(want, rel=1e-12)


def test_normalization_rule_and_warning(model: PublishedModel, events: tuple) -> None:
    n = events[0].size
    assert normalization_size(n) == max(100_000, 100 * n) == 200_000
    assert normalization_size(10) == 100_000
    with warnings.catch_warnings():
        warnings.simplefilter("error", NormalizationWarning)
        default = UnbinnedNLL(model, events, FREE)  # the rule's size: no warning
    assert default.n_normalization == 200_000
    with pytest.warns(NormalizationWarning, match="fewer than max"):
        UnbinnedNLL(model, events, FREE, normalization=50_000)
    n1, n2 = phase_space_points(model, 200_000, seed=1)
    uneven = np.where(np.arange(n1.size) % 2 == 0, 1.0, 1e-3)  # ~100 000 effective points
    with pytest.warns(NormalizationWarning, match="effective points"):
        UnbinnedNLL(model, events, FREE, normalization=(n1, n2), normalization_weights=uneven)


def test_bad_inputs_are_refused(model: PublishedModel, events: tuple) -> None:
    with pytest.raises(InvalidInputError, match="did you mean 'Gamma_K892'"):
        UnbinnedNLL(model, events, ["Gamma_K829"])
    with pytest.raises(InvalidInputError, match="weights"):
        UnbinnedNLL(model, events, FREE, weights=np.ones(3))
    with pytest.raises(InvalidInputError, match="outside the Dalitz region"):
        UnbinnedNLL(model, (np.array([0.1, 1.0]), np.array([0.1, 3.0])), FREE)


def test_tensorwaves_minuit2_runs_on_it_with_the_exact_gradient(
    model: PublishedModel, events: tuple
) -> None:
    from tensorwaves.optimizer import Minuit2

    nll = UnbinnedNLL(model, events, FREE)
    start = {name: complex(v) * 1.02 for name, v in nll.as_parameters(nll.values_from()).items()}
    start["m_{K(892)}"] = start["m_{K(892)}"].real
    start["\\Gamma_{K(892)}"] = start["\\Gamma_{K(892)}"].real
    result = Minuit2(use_analytic_gradient=True).optimize(nll, start)
    assert result.minimum_valid
    ours = fit(model, events, free=FREE)  # the same default normalization points
    got = nll.values_from(result.parameter_values)
    for label, value in zip(nll.labels, got, strict=True):
        assert value == pytest.approx(ours.values[label], abs=0.05 * ours.errors[label]), label


@pytest.mark.parametrize("backend", ["numpy", "jax"])
def test_other_backends_give_the_same_value_and_gradient(
    nll: UnbinnedNLL, model: PublishedModel, events: tuple, backend: str
) -> None:
    """numpy runs the derivative unit's array program, jax ``jacfwd`` of the published one."""
    from modelstore.model import PublishedModel as Model

    on_other = Model(model.registry, model.manifest, backend)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NormalizationWarning)
        other = UnbinnedNLL(on_other, events, FREE, normalization=N_NORM, weights=nll._w)
    x = nll.values_from() * 1.01
    value, gradient = nll.nll_and_gradient(x)
    other_value, other_gradient = other.nll_and_gradient(x)
    assert other_value == pytest.approx(value, rel=1e-10)
    np.testing.assert_allclose(other_gradient, gradient, rtol=1e-9)
