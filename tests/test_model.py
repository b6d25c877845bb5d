"""PublishedModel parameter names: the manifest's names, their ASCII aliases, overrides by both."""

from __future__ import annotations

import pytest

from modelstore import PublishedModel, published_model
from modelstore.errors import InvalidInputError
from modelstore.format.aliases import ascii_alias

MASS = "m_{K(892)}"
COUPLING = r"\mathcal{H}^\mathrm{production}[K(892), 1, 1/2]"


@pytest.fixture(scope="module")
def model(embedded) -> PublishedModel:
    return published_model("default@1.1.0", backend="numpy", registry=embedded)


def test_parameter_names_are_the_manifests_in_order(model: PublishedModel) -> None:
    assert model.parameter_names == [p.name for p in model.manifest.parameters]
    assert list(model.parameters) == model.parameter_names


def test_parameter_aliases_map_to_names(model: PublishedModel) -> None:
    aliases = model.parameter_aliases
    assert set(aliases.values()) <= set(model.parameter_names)
    assert all(ascii_alias(name) == alias for alias, name in aliases.items())
    assert aliases[ascii_alias(MASS)] == MASS
    aliases.clear()  # a fresh dict each time
    assert model.parameter_aliases


def test_an_alias_overrides_like_the_name(model: PublishedModel) -> None:
    mass, coupling = ascii_alias(MASS), ascii_alias(COUPLING)
    by_name = model.intensity(1.0, 3.0, **{MASS: 0.9, COUPLING: 2 + 1j})
    by_alias = model.intensity(1.0, 3.0, **{mass: 0.9, coupling: 2 + 1j})
    assert by_alias == by_name
    assert by_alias != pytest.approx(model.intensity(1.0, 3.0), rel=1e-6)
    values = model.parameter_values({mass: 0.9})
    assert values[MASS] == 0.9 and mass not in values


def test_a_name_and_its_alias_together_are_refused(model: PublishedModel) -> None:
    with pytest.raises(InvalidInputError, match="given twice"):
        model.parameter_values({MASS: 0.9, ascii_alias(MASS): 0.8})


@pytest.mark.parametrize(
    ("typo", "suggested"),
    [("m_{K(892}", MASS), ("m_K89", "m_K892"), ("gamma_k892", "Gamma_K892")],
)
def test_an_unknown_name_suggests_the_closest(
    model: PublishedModel, typo: str, suggested: str
) -> None:
    with pytest.raises(InvalidInputError) as info:
        model.intensity(1.0, 3.0, **{typo: 0.9})
    message = str(info.value)
    assert "unknown parameters" in message
    assert f"did you mean {suggested!r}?" in message


def test_rates_take_aliases_and_overridden_couplings(model: PublishedModel) -> None:
    """An overridden coupling used to clash with the ones the rates set to 0 (TypeError)."""
    coupling = ascii_alias(COUPLING)
    by_alias = model.decay_rates(2000, seed=1, **{coupling: 0.5})
    by_name = model.decay_rates(2000, seed=1, **{COUPLING: 0.5})
    assert by_alias == by_name
    assert by_alias != model.decay_rates(2000, seed=1)
