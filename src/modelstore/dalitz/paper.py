"""LHCb's published decay rates and resonance-averaged α_z of the default model, and pulls.

Reference data, cited: LHCb collaboration, "Amplitude analysis of the Λc⁺ → p K⁻ π⁺ decay and
Λc⁺ baryon polarization measurement in semileptonic beauty hadron decays",
LHCb-PAPER-2022-002, arXiv:2208.03262, Phys. Rev. D 108 (2023) 012023 (the table on p. 23);
the polarimetry paper built on that model, LHCb, "Λc⁺ polarimetry using the dominant hadronic
mode", JHEP 07 (2023) 228, arXiv:2301.07010, uses the same values. Transcribed from upstream's
``data/observable-references.yaml`` (ComPWA/polarimetry, "Default amplitude model").

Each value carries three uncertainties in the paper's order; upstream's notebooks read them as
``value, stat, syst, _`` (``docs/resonance-polarimetry.ipynb``): the first is statistical, the
second systematic; the third is kept as published (``other``: the upstream file does not label
it; see the paper's table caption).

ᾱ_z conventions: the paper quotes each resonance's ᾱ_z in that resonance's own decay chain. Our
``averaged_polarimeter(frame="resonance")`` rotates the reference-subsystem-1 α⃗ into chain k
(K → 1, Λ → 2, Δ → 3) as upstream does. The paper's Λ and Δ chain frames are those of the
Dalitz-plot decomposition turned by π about y (upstream's ``julia/notebooks/eulerangles.jl``
checks θ_Λ = π − ζ⁰_{1(2)} and θ_Δ = −(π − ζ⁰_{3(1)}) against the paper's angles), which flips
α_z; upstream's comparison table shows the same sign difference. So the paper's value is
compared with ``PAPER_ALPHA_SIGN[chain letter] * ours``. K(892)'s ᾱ_z is defined differently in the
paper and upstream leaves it out of its comparison; so do we (``ALPHA_NOT_COMPARED``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from modelstore.errors import InvalidInputError

__all__ = [
    "ALPHA_NOT_COMPARED",
    "CITATION",
    "PAPER_ALPHA_SIGN",
    "PAPER_ALPHA_Z",
    "PAPER_RATES",
    "Comparison",
    "Measurement",
    "compare",
]

CITATION = (
    "LHCb, LHCb-PAPER-2022-002, arXiv:2208.03262, Phys. Rev. D 108 (2023) 012023; "
    "used in JHEP 07 (2023) 228, arXiv:2301.07010"
)


@dataclass(frozen=True)
class Measurement:
    """A published value with its three uncertainties: statistical, systematic, other."""

    value: float
    stat: float
    syst: float
    other: float

    @property
    def stat_syst(self) -> float:
        """Statistical and systematic uncertainties added in quadrature."""
        return math.hypot(self.stat, self.syst)


def _table(rows: str) -> dict[str, Measurement]:
    table = {}
    for line in rows.strip().splitlines():
        name, numbers = line.split(":")
        table[name.strip()] = Measurement(*(float(x) for x in numbers.split("±")))
    return table


PAPER_RATES = _table(
    """
    K(700):    3.02 ± 0.16 ± 0.92 ± 0.18
    K(892):   22.14 ± 0.23 ± 0.64 ± 0.04
    K(1430):  14.7  ± 0.6  ± 2.7  ± 0.1
    L(1405):   7.7  ± 0.2  ± 3.0  ± 0.2
    L(1520):   1.86 ± 0.09 ± 0.23 ± 0.03
    L(1600):   5.2  ± 0.2  ± 1.9  ± 0.1
    L(1670):   1.18 ± 0.06 ± 0.32 ± 0.01
    L(1690):   1.19 ± 0.09 ± 0.34 ± 0.01
    L(2000):   9.58 ± 0.27 ± 0.93 ± 0.23
    D(1232):  28.60 ± 0.29 ± 0.76 ± 0.16
    D(1600):   4.5  ± 0.3  ± 1.5  ± 0.1
    D(1700):   3.90 ± 0.20 ± 0.94 ± 0.07
    """
)
"""Decay rates of the default model, in %."""

PAPER_ALPHA_Z = _table(
    """
    K(700):    +60 ± 660 ± 240 ±  230
    K(892):   +873 ±  10 ±  23 ±    3
    K(1430):  -340 ±  30 ± 140 ±   10
    L(1405):  -580 ±  50 ± 280 ±   10
    L(1520):  -925 ±  25 ±  84 ±    5
    L(1600):  -200 ±  60 ± 500 ±   30
    L(1670):  -817 ±  42 ±  73 ±    6
    L(1690):  -958 ±  20 ±  27 ±    6
    L(2000):  +570 ±  30 ± 190 ±   10
    D(1232):  -548 ±  14 ±  36 ±    4
    D(1600):  +500 ±  50 ± 170 ±   10
    D(1700):  -216 ±  36 ±  75 ±   11
    """
)
"""Resonance-averaged α_z of the default model, in units of 10⁻³ (each resonance's chain)."""

PAPER_ALPHA_SIGN = {"K": 1, "L": -1, "D": -1}
"""Paper's ᾱ_z = sign × ours (``frame="resonance"``), by chain letter; see the module text."""

ALPHA_NOT_COMPARED = frozenset({"K(892)"})


@dataclass(frozen=True)
class Comparison:
    """Our value next to the paper's: the pull is (ours − paper) / paper's stat uncertainty."""

    name: str
    ours: float
    paper: Measurement

    @property
    def pull(self) -> float:
        """(ours − paper) in units of the paper's statistical uncertainty."""
        return (self.ours - self.paper.value) / self.paper.stat

    @property
    def pull_stat_syst(self) -> float:
        """(ours − paper) in units of stat ⊕ syst."""
        return (self.ours - self.paper.value) / self.paper.stat_syst


def compare(quantity: str, ours: dict[str, float]) -> list[Comparison]:
    """Our rates (fractions) or ᾱ_z (``frame="resonance"``) against the paper, in its units.

    ``quantity`` is ``"rate"`` (ours as fractions, compared in %) or ``"alpha_z"`` (compared in
    10⁻³, with the paper's sign convention applied, K(892) left out). Resonances absent from
    either side are left out.

    Raises:
        InvalidInputError: an unknown quantity.
    """
    if quantity == "rate":
        return [
            Comparison(name, 100 * value, PAPER_RATES[name])
            for name, value in ours.items()
            if name in PAPER_RATES
        ]
    if quantity == "alpha_z":
        return [
            Comparison(name, 1000 * PAPER_ALPHA_SIGN[name[0]] * value, PAPER_ALPHA_Z[name])
            for name, value in ours.items()
            if name in PAPER_ALPHA_Z and name not in ALPHA_NOT_COMPARED
        ]
    msg = f"quantity must be 'rate' or 'alpha_z', not {quantity!r}"
    raise InvalidInputError(msg)
