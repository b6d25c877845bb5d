"""fit(): a toy fit recovers the generating values; names, refusals and the coupling fast path."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from fit_toys import FREE

from modelstore import PublishedModel
from modelstore.errors import InvalidInputError
from modelstore.fit import FitResult, NormalizationWarning, UnbinnedNLL, fit

COUPLING = "\\mathcal{H}^\\mathrm{production}[K(892), 0, 1/2]"


@pytest.fixture(scope="module")
def result(model: PublishedModel, events: tuple) -> FitResult:
    start = {"m_K892": 0.9, "Gamma_K892": 0.05, "H_prod_K892_0_1half": -1 - 4j}
    return fit(model, events, free=FREE, start=start)


def test_recovers_the_generating_values_within_errors(
    result: FitResult, model: PublishedModel
) -> None:
    assert result.valid and not result.fast_path
    truth = model.parameters
    for label in result.labels:
        name, _, part = label.partition(".")
        true = complex(truth[name])
        want = true.imag if part == "im" else true.real
        assert abs(result.values[label] - want) < 3 * result.errors[label], label
    assert result.covariance.shape == (4, 4)
    np.testing.assert_allclose(np.sqrt(np.diag(result.covariance)), list(result.errors.values()))


def test_complex_parameters_are_named_re_and_im(result: FitResult) -> None:
    assert result.labels == ["m_{K(892)}", "\\Gamma_{K(892)}", f"{COUPLING}.re", f"{COUPLING}.im"]
    assert result.parameters[COUPLING] == complex(
        result.values[f"{COUPLING}.re"], result.values[f"{COUPLING}.im"]
    )


def test_a_bad_name_is_one_line_with_a_suggestion(model: PublishedModel, events: tuple) -> None:
    with pytest.raises(InvalidInputError, match="did you mean 'Gamma_K892'") as info:
        fit(model, events, free=["m_K892", "Gamma_K829"])
    assert "\n" not in str(info.value)


def test_the_reference_coupling_is_refused(model: PublishedModel, events: tuple) -> None:
    with pytest.raises(InvalidInputError, match="reference coupling") as info:
        fit(model, events, free=["H_prod_K892_0_m1half", "m_K892"])
    assert "\n" not in str(info.value)


def test_couplings_alone_take_the_cached_path_with_the_same_nll(
    model: PublishedModel, events: tuple
) -> None:
    free = ["H_prod_K892_0_1half", "H_prod_K892_1_1half"]
    with pytest.warns(NormalizationWarning) as caught:
        cached = fit(model, events, free=free, normalization=20_000)
    assert caught[0].filename == __file__  # said where fit was called
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NormalizationWarning)
        general = UnbinnedNLL(model, events, free, normalization=20_000)
    assert cached.fast_path and cached.valid
    x = np.array([cached.values[label] for label in cached.labels])
    assert general.nll(x) == pytest.approx(cached.nll, rel=1e-9)


def test_weighted_normalization_takes_the_general_path(
    model: PublishedModel, events: tuple
) -> None:
    from modelstore.dalitz.rates import phase_space_points
    from modelstore.fit.minimize import _estimator

    n1, n2 = phase_space_points(model, 250_000, seed=2)
    weighted = {"sigma1": n1, "sigma2": n2, "weights": np.linspace(0.9, 1.1, n1.size)}
    free = [model.parameter_aliases["H_prod_K892_0_1half"]]
    estimator, fast = _estimator(model, events, free, weighted, None, None, {}, 0)
    assert not fast and isinstance(estimator, UnbinnedNLL)
    plain = {"sigma1": n1, "sigma2": n2}
    estimator, fast = _estimator(model, events, free, plain, None, None, {}, 0)
    assert fast


def test_a_parameter_the_likelihood_ignores_is_refused(
    model: PublishedModel, events: tuple, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = UnbinnedNLL.nll_and_gradient

    def width_ignored(self: UnbinnedNLL, x: object) -> tuple:
        value, gradient = real(self, x)
        gradient[1] = 0.0  # as if the intensity did not depend on Γ
        return value, gradient

    monkeypatch.setattr(UnbinnedNLL, "nll_and_gradient", width_ignored)
    with pytest.raises(InvalidInputError, match=r"does not depend on '\\\\Gamma_\{K\(892\)\}'"):
        fit(model, events, free=FREE)
