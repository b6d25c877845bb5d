"""Three-body kinematics of the Dalitz plot: region boundary and uniform phase-space samples.

Conventions as upstream: particle 0 decays to 1 2 3 (Λc⁺ → p π⁺ K⁻), σ1 = m²(23) = m²(K⁻π⁺),
σ2 = m²(31) = m²(pK⁻).
"""

from __future__ import annotations

import numpy as np

__all__ = ["dalitz_contains", "sample_dalitz", "sigma2_limits"]


def sigma2_limits(
    sigma1: np.ndarray, m0: float, m1: float, m2: float, m3: float
) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper σ2 of the Dalitz region at each σ1 (NaN where σ1 is outside its range).

    Never raises.
    """
    sigma1 = np.asarray(sigma1, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        root = np.sqrt(sigma1)
        e3 = (sigma1 - m2**2 + m3**2) / (2 * root)  # energy of 3 in the (23) rest frame
        e1 = (m0**2 - sigma1 - m1**2) / (2 * root)  # energy of 1 in the (23) rest frame
        p3 = np.sqrt(e3**2 - m3**2)
        p1 = np.sqrt(e1**2 - m1**2)
    total = (e3 + e1) ** 2
    return total - (p3 + p1) ** 2, total - (p3 - p1) ** 2


def dalitz_contains(
    sigma1: np.ndarray, sigma2: np.ndarray, m0: float, m1: float, m2: float, m3: float
) -> np.ndarray:
    """True where (σ1, σ2) lies inside the kinematically allowed region.

    Never raises.
    """
    lower, upper = sigma2_limits(sigma1, m0, m1, m2, m3)
    sigma2 = np.asarray(sigma2, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        return (sigma2 >= lower) & (sigma2 <= upper)


def sample_dalitz(
    n: int, m0: float, m1: float, m2: float, m3: float, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` points distributed uniformly over the Dalitz region (phase space), by rejection.

    Never raises.
    """
    rng = np.random.default_rng(seed)
    lo1, hi1 = (m2 + m3) ** 2, (m0 - m1) ** 2
    lo2, hi2 = (m3 + m1) ** 2, (m0 - m2) ** 2
    s1_parts, s2_parts, have = [], [], 0
    while have < n:
        size = max(2 * (n - have), 1024)
        s1 = rng.uniform(lo1, hi1, size)
        s2 = rng.uniform(lo2, hi2, size)
        keep = dalitz_contains(s1, s2, m0, m1, m2, m3)
        s1_parts.append(s1[keep])
        s2_parts.append(s2[keep])
        have += int(keep.sum())
    return np.concatenate(s1_parts)[:n], np.concatenate(s2_parts)[:n]
