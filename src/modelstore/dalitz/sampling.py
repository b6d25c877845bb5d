"""Toy events: (σ1, σ2) distributed as a model's intensity, by accept-reject with a checked bound.

Proposals are uniform over the model's own Dalitz region (its masses ``m0``..``m3``,
:func:`~modelstore.dalitz.kinematics.sample_dalitz`); a proposal is kept with probability
I(σ1, σ2) / E. The envelope E is ``SAFETY`` (1.2) times the largest intensity of a ``PILOT``-point
phase-space pilot. The output is distributed exactly as I only if E ≥ I everywhere, so every
proposal of the generation itself is checked too: if one exceeds E, E becomes ``SAFETY`` times that
intensity and the sample starts over (everything accepted so far is dropped, since it was accepted
with the lower E). What remains unchecked is a peak so narrow that no proposal falls on it.

A NaN intensity inside the region is a defect of the model, not a zero: such proposals are
counted, never kept, and one ``RuntimeWarning`` names their number.
"""

from __future__ import annotations

import operator
import warnings
from typing import TYPE_CHECKING, Any

import numpy as np

from modelstore.dalitz.kinematics import sample_dalitz
from modelstore.dalitz.plot import model_masses
from modelstore.errors import InvalidInputError

if TYPE_CHECKING:
    from collections.abc import Callable

    from modelstore.format.manifest import ParameterValue
    from modelstore.model import PublishedModel

__all__ = ["Envelope", "check_count", "check_seed", "sample"]

PILOT = 200_000  # phase-space points whose largest intensity fixes the first envelope
SAFETY = 1.2  # envelope margin over the largest intensity seen
MIN_BATCH = 10_000  # proposals per generation batch, at least
MAX_BATCH = 2_000_000  # bounds the memory of one batch
MAX_EVENTS = 100_000_000


class Envelope:
    """The accept-reject bound E, raised whenever a checked intensity exceeds it.

    ``check(values)`` returns False (and raises E to ``safety`` × the largest value) when a value
    exceeds E: the caller must then drop what it accepted and start over. ``accept(values, rng)``
    is the mask ``u · E < value`` with u uniform in [0, 1); NaN values are counted in ``nan``
    and never accepted.

    Raises:
        InvalidInputError: (constructing) the pilot intensity is zero or NaN everywhere.
    """

    def __init__(self, pilot: np.ndarray, safety: float = SAFETY) -> None:
        self.safety = safety
        self.nan = 0
        self.raised = 0
        finite = pilot[np.isfinite(pilot)]
        self.nan += int(pilot.size - finite.size)
        self.value = safety * float(finite.max()) if finite.size else 0.0
        if not self.value > 0:
            msg = "the intensity is zero or NaN over the whole pilot sample, nothing to sample"
            raise InvalidInputError(msg)
        self.mean = float(finite.mean())

    def proposals(self, wanted: int) -> int:
        """How many proposals should give ``wanted`` accepted events (10 % spare, bounded).

        Never raises.
        """
        return int(min(max(1.1 * wanted * self.value / self.mean, MIN_BATCH), MAX_BATCH))

    def check(self, values: np.ndarray) -> bool:
        """True when every finite value is at most E; else raise E and return False.

        Never raises.
        """
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN batch
            peak = float(np.nanmax(values)) if values.size else 0.0
        if peak > self.value:
            self.value = self.safety * peak
            self.raised += 1
            return False
        return True

    def accept(self, values: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Which of ``values`` to keep: u · E < value, u uniform; NaN counted and dropped.

        Never raises.
        """
        bad = np.isnan(values)
        self.nan += int(bad.sum())
        return rng.uniform(0, self.value, values.size) < np.where(bad, 0.0, values)

    def warn_nan(self, what: str) -> None:
        """One RuntimeWarning naming the number of NaN intensities met, if any.

        Never raises.
        """
        if self.nan:
            warnings.warn(
                f"{what}: {self.nan} proposals inside the Dalitz region had a NaN intensity;"
                " they were rejected (treated as zero)",
                RuntimeWarning,
                stacklevel=3,
            )


def check_count(n: Any, what: str = "n") -> int:
    """``n`` as an int from 1 to 10⁸.

    Raises:
        InvalidInputError: not an integer in that range.
    """
    try:
        count = operator.index(n)
    except TypeError:
        msg = f"{what} must be a whole number of events, got {n!r}"
        raise InvalidInputError(msg) from None
    if isinstance(n, bool) or not 1 <= count <= MAX_EVENTS:
        msg = f"{what} must be from 1 to {MAX_EVENTS}, got {n!r}"
        raise InvalidInputError(msg)
    return count


def check_seed(seed: Any) -> int | None:
    """``seed`` as a non-negative int, or None (fresh entropy).

    Raises:
        InvalidInputError: neither None nor a non-negative integer.
    """
    if seed is None:
        return None
    try:
        value = operator.index(seed)
    except TypeError:
        value = -1
    if isinstance(seed, bool) or value < 0:
        msg = f"seed must be None or a non-negative integer, got {seed!r}"
        raise InvalidInputError(msg)
    return value


def draw(
    intensity: Callable[[np.ndarray, np.ndarray], np.ndarray],
    masses: tuple[float, float, float, float],
    n: int,
    rng: np.random.Generator,
    pilot: int | None = None,
) -> tuple[np.ndarray, np.ndarray, Envelope]:
    """``n`` points (σ1, σ2) distributed as ``intensity`` over the region, and the envelope used.

    ``pilot`` phase-space points (default ``PILOT``) fix the first envelope.

    Raises:
        InvalidInputError: the intensity is zero or NaN over the whole pilot.
    """
    seeds = rng.integers(0, 2**63, size=2)
    size = PILOT if pilot is None else pilot
    envelope = Envelope(intensity(*sample_dalitz(size, *masses, seed=int(seeds[0]))))
    batch_rng = np.random.default_rng(int(seeds[1]))
    parts1: list[np.ndarray] = []
    parts2: list[np.ndarray] = []
    have = 0
    while have < n:
        size = envelope.proposals(n - have)
        s1, s2 = sample_dalitz(size, *masses, seed=int(batch_rng.integers(2**63)))
        values = intensity(s1, s2)
        if not envelope.check(values):  # the pilot missed a peak: start over with the raised E
            parts1, parts2, have = [], [], 0
            continue
        keep = envelope.accept(values, rng)
        parts1.append(s1[keep])
        parts2.append(s2[keep])
        have += int(keep.sum())
    return np.concatenate(parts1)[:n], np.concatenate(parts2)[:n], envelope


def sample(
    model: PublishedModel, n: int, *, seed: int | None = None, **overrides: ParameterValue
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` toy events (σ1, σ2) in GeV², distributed as the model's intensity over its region.

    Accept-reject with a checked envelope (see the module's docstring); parameter ``overrides``
    by name or ASCII alias as for ``intensity`` (``m_K892=0.9``). The same ``seed`` gives the
    same events (on the same backend); ``None`` draws fresh entropy. About 1.2 × max I / mean I
    proposals are evaluated per event (5.5 for the default model).

    Raises:
        InvalidInputError: ``n`` not from 1 to 10⁸, a bad ``seed``, an unknown parameter or a
            value unfit for it, a model without masses ``m0``..``m3``, or an intensity that is
            zero or NaN everywhere.
        BackendUnavailableError: the backend cannot run here.
    """
    count = check_count(n)
    rng = np.random.default_rng(check_seed(seed))
    model_masses(model)  # a model without masses fails here, by name
    values = model.parameter_values(overrides)  # unknown names, bad values: before any work
    masses = tuple(float(np.real(values[f"m{i}"])) for i in range(4))  # overrides may move them

    def intensity(s1: np.ndarray, s2: np.ndarray) -> np.ndarray:
        return np.asarray(model.intensity(s1, s2, **overrides), dtype=np.float64)

    s1, s2, envelope = draw(intensity, masses, count, rng)  # type: ignore[arg-type]
    envelope.warn_nan(f"{model.ref} sample")
    return s1, s2
