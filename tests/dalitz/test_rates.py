"""Decay rates: each resonance alone over the total (upstream's sub_intensity)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from modelstore import PublishedModel, published_model
from modelstore.cli import main
from modelstore.dalitz.kinematics import sample_dalitz
from modelstore.dalitz.plot import model_masses
from modelstore.dalitz.rates import resonance_couplings
from modelstore.errors import InvalidInputError

REF = "default@1.1.0"  # rates need only the intensity
RESONANCES = {
    "K(700)", "K(892)", "K(1430)", "D(1232)", "D(1600)", "D(1700)",
    "L(1405)", "L(1520)", "L(1600)", "L(1670)", "L(1690)", "L(2000)",
}  # fmt: skip


@pytest.fixture(scope="module")
def model() -> PublishedModel:
    return published_model(REF, backend="auto")


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
    s1, s2 = sample_dalitz(5000, *model_masses(model), seed=2)
    expected = np.nanmean(model.intensity(s1, s2, **zeroed)) / np.nanmean(model.intensity(s1, s2))
    assert model.decay_rates(5000, seed=2)["K(892)"] == pytest.approx(expected, rel=1e-12)


def test_ls_naming_is_found() -> None:
    other = published_model("ls-couplings@1.1.0", backend="numpy")
    assert {
        n.replace("\\Lambda", "L").replace("\\Delta", "D") for n in resonance_couplings(other)
    } == RESONANCES


def test_bad_n(model: PublishedModel) -> None:
    with pytest.raises(InvalidInputError):
        model.decay_rates(10)


def test_cli() -> None:
    result = CliRunner().invoke(main, ["rates", REF, "-n", "2000", "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert set(doc["rates"]) == RESONANCES and doc["model"] == REF
    text = CliRunner().invoke(main, ["rates", REF, "-n", "2000"])
    assert text.exit_code == 0 and "K(892)" in text.output
