"""ASCII aliases of parameter names: computed from the names by documented rules."""

from __future__ import annotations

import keyword

import pytest

from modelstore.format.aliases import ascii_alias, parameter_aliases


@pytest.mark.parametrize(
    ("name", "alias"),
    [
        # the examples of the module's documentation
        (r"\mathcal{H}^\mathrm{production}[K(892), 1, 1/2]", "H_prod_K892_1_1half"),
        (r"\Gamma_{\Lambda(1405) \to \pi^+ \Sigma^-}", "Gamma_Lambda1405_to_piplus_Sigmaminus"),
        (r"R_\mathrm{dec}", "R_dec"),
        ("m_{K(892)}", "m_K892"),
        (r"\Gamma_{K(892)}", "Gamma_K892"),
        (r"\mathcal{H}^\mathrm{decay}[\Delta(1232), -1/2, 0]", "H_dec_Delta1232_m1half_0"),
        (r"\mathcal{H}^\mathrm{LS,production}[K(892), 2, 3/2]", "H_LS_prod_K892_2_3half"),
        ("K^*(892)", "Kst892"),
        ("Δ^{++}(1232)", "Deltaplusplus1232"),
        ("Λ(1405)", "Lambda1405"),
        ("g_{0.5}", "g_0p5"),
        ("c_{1/3}", "c_1over3"),
        (r"\alpha'", "alphaprime"),
        ("m0", "m0"),  # an identifier already
    ],
)
def test_documented_rules(name: str, alias: str) -> None:
    assert ascii_alias(name) == alias


@pytest.mark.parametrize(
    "name",
    [
        "1/2",  # would start with a digit
        "lambda",  # a keyword
        r"\mathrm{class}",
        "x^-1",
        r"m_{X(3872)}",  # made-up particles: no table of names behind the rules
        r"\Gamma_{\Xi_c^{+}(2970) \to \Lambda_c^+ K^-}",
        "a b c",
        "é_1",
    ],
)
def test_every_alias_is_an_ascii_identifier_and_no_keyword(name: str) -> None:
    alias = ascii_alias(name)
    assert alias is not None
    assert alias.isascii() and alias.isidentifier()
    assert not keyword.iskeyword(alias)


def test_a_name_without_letters_or_digits_has_none() -> None:
    assert ascii_alias("---") is None
    assert ascii_alias("") is None


def test_a_shared_alias_goes_to_neither_name() -> None:
    names = ["m_{K(892)}", "m_{K892}", r"\Gamma_{K(892)}"]
    assert ascii_alias(names[0]) == ascii_alias(names[1]) == "m_K892"
    assert parameter_aliases(names) == {"Gamma_K892": r"\Gamma_{K(892)}"}


def test_an_alias_that_is_another_parameters_name_is_dropped() -> None:
    # m_K892 names a parameter of its own: it cannot also stand for m_{K(892)}
    assert parameter_aliases(["m_{K(892)}", "m_K892"]) == {}


def test_identifiers_need_no_alias() -> None:
    assert parameter_aliases(["m0", "m1", "m_{K(892)}"]) == {"m_K892": "m_{K(892)}"}


def test_every_published_model_has_an_alias_for_every_latex_name(embedded) -> None:
    index = embedded.index()
    for model_id, entry in index.models.items():
        manifest = embedded.manifest(f"{model_id}@{entry.latest}")
        names = [p.name for p in manifest.parameters]
        aliases = parameter_aliases(names)
        assert len(set(aliases.values())) == len(aliases)  # one alias per name
        without = [n for n in names if n not in aliases.values() and not n.isidentifier()]
        assert without == [], model_id
        assert not set(aliases) & set(names)
        assert all(a.isascii() and a.isidentifier() for a in aliases)
