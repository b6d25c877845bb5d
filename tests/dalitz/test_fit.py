"""Toy events with a known polarization P⃗, fitted back with iminuit (docs/polarimetry.md)."""

from __future__ import annotations

import numpy as np
import pytest

from modelstore import PublishedModel, published_model
from modelstore.dalitz import fit
from modelstore.dalitz.fit import fit_polarization, generate_polarized_events
from modelstore.errors import InvalidInputError, MissingExtraError

pytest.importorskip("iminuit")

REF = "default@1.4.0"


@pytest.fixture(scope="module")
def model() -> PublishedModel:
    return published_model(REF, backend="auto")


@pytest.mark.parametrize(
    ("truth", "seed"), [((0.2, -0.4, 0.6), 1), ((0.0, 0.0, 0.0), 2), ((-0.7, 0.1, 0.0), 3)]
)
def test_fit_recovers_polarization(model: PublishedModel, truth: tuple, seed: int) -> None:
    events = generate_polarized_events(model, truth, 4000, seed=seed)
    assert set(events) == {"sigma1", "sigma2", "phi", "theta", "chi"}
    assert all(v.shape == (4000,) for v in events.values())
    result = fit_polarization(model, events)
    assert result["valid"]
    pulls = (result["polarization"] - np.array(truth)) / result["errors"]
    assert np.all(np.abs(pulls) < 3), (result["polarization"], result["errors"])
    assert np.all(result["errors"] < 0.1)


def test_generation_is_deterministic(model: PublishedModel) -> None:
    a = generate_polarized_events(model, (0, 0, 0.5), 300, seed=5)
    b = generate_polarized_events(model, (0, 0, 0.5), 300, seed=5)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])


def test_bad_inputs(model: PublishedModel) -> None:
    with pytest.raises(InvalidInputError):
        generate_polarized_events(model, (1, 1, 0), 10)
    with pytest.raises(InvalidInputError):
        generate_polarized_events(model, (0, 0, 0), 0)
    with pytest.raises(InvalidInputError):
        fit_polarization(model, {"sigma1": np.ones(3)})


def test_missing_iminuit_names_the_extra(
    model: PublishedModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib

    real = importlib.import_module

    def fake(name: str, *args: object) -> object:
        if name == "iminuit":
            raise ImportError(name)
        return real(name, *args)

    monkeypatch.setattr(importlib, "import_module", fake)
    events = generate_polarized_events(model, (0, 0, 0), 10)
    with pytest.raises(MissingExtraError, match=r"pip install 'modelstore\[fit\]'"):
        fit.fit_polarization(model, events)


def test_fit_pulls_over_many_toys(model: PublishedModel) -> None:
    truth = np.array([0.3, -0.2, 0.5])
    pulls = []
    for seed in range(20):
        result = fit_polarization(model, generate_polarized_events(model, truth, 5000, seed=seed))
        pulls.append((result["polarization"] - truth) / result["errors"])
    pulls_arr = np.array(pulls)
    assert np.all(np.abs(pulls_arr.mean(axis=0)) < 0.8)  # 20 toys: σ(mean) ≈ 0.22
    assert np.all((pulls_arr.std(axis=0) > 0.6) & (pulls_arr.std(axis=0) < 1.5))
