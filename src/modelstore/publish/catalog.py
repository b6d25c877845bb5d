"""The 18 published LHCb amplitude models of Λc⁺ → p K⁻ π⁺ and their short ids.

The order is upstream's (``polarimetry-lc2pkpi``'s ``model-definitions.yaml``): the position in
this tuple is the upstream integer ``model_id``.
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["LHCB_DECAY", "LHCB_MODELS", "SEED_POINTS", "CatalogEntry"]

LHCB_DECAY = "Λc⁺ → p K⁻ π⁺"
# The (σ1, σ2) points of the seed recipe; every catalog version's reference values start with them.
SEED_POINTS = ((1.0, 3.0), (1.1, 3.2))


class CatalogEntry(NamedTuple):
    model_id: str
    title: str


LHCB_MODELS: tuple[CatalogEntry, ...] = (
    CatalogEntry("default", "Default amplitude model"),
    CatalogEntry("k892-free", "Alternative amplitude model with K(892) with free mass and width"),
    CatalogEntry("l1670-free", "Alternative amplitude model with L(1670) with free mass and width"),
    CatalogEntry("l1690-free", "Alternative amplitude model with L(1690) with free mass and width"),
    CatalogEntry("d1232-free", "Alternative amplitude model with D(1232) with free mass and width"),
    CatalogEntry(
        "l1600-d1600-d1700-free",
        "Alternative amplitude model with L(1600), D(1600), D(1700) with free mass and width",
    ),
    CatalogEntry(
        "l1405-flatte-free",
        "Alternative amplitude model with free L(1405) Flatt'e widths, indicated as G1 (pK"
        " channel) and G2 (Sigmapi)",
    ),
    CatalogEntry(
        "l1800-added",
        "Alternative amplitude model with L(1800) contribution added with free mass and width",
    ),
    CatalogEntry(
        "l1810-added",
        "Alternative amplitude model with L(1810) contribution added with free mass and width",
    ),
    CatalogEntry(
        "d1620-added",
        "Alternative amplitude model with D(1620) contribution added with free mass and width",
    ),
    CatalogEntry(
        "k700-rbw",
        "Alternative amplitude model in which a Relativistic Breit-Wigner is used for the K(700)"
        " contribution",
    ),
    CatalogEntry("k700-free", "Alternative amplitude model with K(700) with free mass and width"),
    CatalogEntry(
        "k1410-added",
        "Alternative amplitude model with K(1410) contribution added with mass and width from"
        " PDG2020",
    ),
    CatalogEntry(
        "k1430-rbw",
        "Alternative amplitude model in which a Relativistic Breit-Wigner is used for the K(1430)"
        " contribution",
    ),
    CatalogEntry("k1430-free-width", "Alternative amplitude model with K(1430) with free width"),
    CatalogEntry(
        "bugg-exp-ff",
        "Alternative amplitude model with an additional overall exponential form factor"
        " exp(-alpha q^2) multiplying Bugg lineshapes. The exponential parameter is indicated as"
        " alpha",
    ),
    CatalogEntry(
        "lc-radius-free",
        "Alternative amplitude model with free radial parameter d for the Lc resonance,"
        " indicated as dLc",
    ),
    CatalogEntry("ls-couplings", "Alternative amplitude model obtained using LS couplings"),
)
