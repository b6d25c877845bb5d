"""ModelFunction: the ParametrizedFunction contract, every backend, tensorwaves' own fit."""

from __future__ import annotations

import numpy as np
import pytest
from fit_toys import FREE
from tensorwaves.interface import ParametrizedFunction

from modelstore import PublishedModel
from modelstore.dalitz.rates import phase_space_points
from modelstore.errors import InvalidInputError
from modelstore.fit import ModelFunction


def test_is_a_parametrized_function_with_the_manifests_names(model: PublishedModel) -> None:
    function = model.function()
    assert isinstance(function, ParametrizedFunction)
    assert isinstance(function, ModelFunction)
    assert list(function.parameters) == model.parameter_names
    assert function.parameters == model.parameters


def test_update_parameters_takes_names_and_aliases(model: PublishedModel) -> None:
    function = model.function()
    function.update_parameters({"m_K892": 0.9, "\\Gamma_{K(892)}": 0.05})
    assert function.parameters["m_{K(892)}"] == 0.9
    assert function.parameters["\\Gamma_{K(892)}"] == 0.05
    s1, s2 = phase_space_points(model, 1000, seed=3)
    want = model.intensity(s1, s2, m_K892=0.9, Gamma_K892=0.05)
    np.testing.assert_array_equal(function({"sigma1": s1, "sigma2": s2}), want)
    function.parameters["m_{K(892)}"] = 1.0  # a copy: changes nothing
    assert function.parameters["m_{K(892)}"] == 0.9


def test_a_near_miss_is_one_line_with_a_suggestion(model: PublishedModel) -> None:
    with pytest.raises(InvalidInputError, match="did you mean 'm_K892'") as info:
        model.function().update_parameters({"m_K893": 0.9})
    assert "\n" not in str(info.value)


def test_a_bad_value_or_data_is_refused(model: PublishedModel) -> None:
    function = model.function()
    with pytest.raises(InvalidInputError):
        function.update_parameters({"m_K892": 1j})
    with pytest.raises(InvalidInputError, match="sigma1"):
        function({"s1": np.ones(3), "s2": np.ones(3)})


def test_every_backend_agrees(model: PublishedModel) -> None:
    s1, s2 = phase_space_points(model, 1000, seed=5)
    data = {"sigma1": s1[:300], "sigma2": s2[:300]}
    new = {"m_K892": 0.91, "H_prod_K892_0_1half": 1 - 2j}
    results = {}
    for backend in ("native", "numpy", "jax"):
        function = model.function(backend=backend)
        assert function.model.backend == backend
        function.update_parameters(new)
        results[backend] = function(data)
    for backend in ("numpy", "jax"):
        np.testing.assert_allclose(results[backend], results["native"], rtol=1e-10, atol=0)


def test_tensorwaves_estimator_and_optimizer_run_unchanged(
    model: PublishedModel, events: tuple
) -> None:
    from tensorwaves.estimator import UnbinnedNLL
    from tensorwaves.optimizer import Minuit2

    from modelstore.fit import fit

    n1, n2 = phase_space_points(model, 200_000, seed=0)
    function = model.function()
    data = {"sigma1": events[0], "sigma2": events[1]}
    estimator = UnbinnedNLL(function, data, {"sigma1": n1, "sigma2": n2})
    start = model.parameter_overrides(dict.fromkeys(FREE))
    start.update({name: model.parameters[name] * 1.02 for name in start})
    result = Minuit2().optimize(estimator, start)
    assert result.minimum_valid
    ours = fit(model, events, free=FREE, normalization=(n1, n2), start=start)
    for name, value in result.parameter_values.items():
        z = complex(value)
        pairs = (
            [(name, z.real)]
            if name in ours.values
            else [(f"{name}.re", z.real), (f"{name}.im", z.imag)]
        )
        for label, number in pairs:
            assert number == pytest.approx(ours.values[label], abs=0.05 * ours.errors[label])
