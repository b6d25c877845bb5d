"""Four-momenta of 0 → 1 2 3 and the variables of the polarized rate: σ1, σ2, σ3 and (φ, θ, χ).

Four-vectors are float arrays of shape ``(..., 4)``, ``(E, px, py, pz)``, metric (+, −, −, −),
in any frame; particles 1, 2, 3 in the order of the model (the LHCb catalog: p, π⁺, K⁻), so
σ1 = m²(23), σ2 = m²(31), σ3 = m²(12) as everywhere in :mod:`modelstore.dalitz`.

The angles are those of :mod:`modelstore.dalitz.polarized`: R(φ, θ, χ) = R_z(φ) R_y(θ) R_z(χ)
(active) turns the reference orientation into the event's, in the parent's rest frame. The
reference orientation is upstream's aligned configuration of subsystem 1, the frame in which α⃗
is given (``constructinvariants`` in ComPWA/polarimetry's ``julia/notebooks/eulerangles.jl``):
p⃗1 along −z, the decay plane the xz plane, p⃗2 with px > 0 (so p⃗3 has px < 0). Hence −p̂1 = R ẑ
gives φ (azimuth) and θ (polar angle), and the component of p⃗2 across p⃗1, along R x̂, gives χ.
LHCb's PAPER-2022-002 angles (φ_p, θ_p, χ_K: the proton along +z) are these of the configuration
turned by R_y(π) first (upstream's same notebook checks it), and are not what this module returns.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from modelstore.dalitz.polarized import rotation_matrix
from modelstore.errors import InvalidInputError

__all__ = ["four_momenta", "invariants", "polarimetry_angles", "rest_frame"]

DEGENERATE = 1e-12  # sin θ below this: only φ ± χ is defined, φ is set to 0


def _vectors(*momenta: Any) -> list[np.ndarray]:
    """The momenta as float arrays of shape (..., 4), broadcast against each other."""
    try:
        arrays = [np.asarray(p, dtype=np.float64) for p in momenta]
        arrays = list(np.broadcast_arrays(*arrays))
    except (TypeError, ValueError) as exc:
        msg = f"four-momenta must be real arrays of shape (..., 4) that broadcast: {exc}"
        raise InvalidInputError(msg) from None
    if arrays[0].ndim == 0 or arrays[0].shape[-1] != 4:
        msg = f"four-momenta must have shape (..., 4) as (E, px, py, pz), got {arrays[0].shape}"
        raise InvalidInputError(msg)
    return arrays


def _mass_squared(p: np.ndarray) -> np.ndarray:
    return p[..., 0] ** 2 - np.sum(p[..., 1:] ** 2, axis=-1)


def invariants(p1: Any, p2: Any, p3: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """σ1 = m²(p2 + p3), σ2 = m²(p3 + p1), σ3 = m²(p1 + p2), in the momenta's units squared.

    Raises:
        InvalidInputError: the momenta are not real arrays of shape (..., 4) that broadcast.
    """
    a, b, c = _vectors(p1, p2, p3)
    return _mass_squared(b + c), _mass_squared(c + a), _mass_squared(a + b)


def rest_frame(p1: Any, p2: Any, p3: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The three momenta boosted (pure boost, no rotation) into the rest frame of their sum.

    An event with NaN components gives NaN.

    Raises:
        InvalidInputError: bad arrays, or a total momentum that is not time-like and forward.
    """
    a, b, c = _vectors(p1, p2, p3)
    total = a + b + c
    energy = total[..., 0]
    if np.any(energy <= np.linalg.norm(total[..., 1:], axis=-1)):  # NaN events stay NaN
        msg = "the summed four-momentum must be time-like with positive energy"
        raise InvalidInputError(msg)
    beta = total[..., 1:] / energy[..., None]
    beta2 = np.sum(beta**2, axis=-1)
    gamma = 1 / np.sqrt(1 - beta2)
    # (γ - 1)/β² written so that it stays finite as β → 0
    factor = (gamma**2 / (1 + gamma))[..., None]

    def boost(p: np.ndarray) -> np.ndarray:
        bp = np.sum(beta * p[..., 1:], axis=-1)
        e = gamma * (p[..., 0] - bp)
        vec = p[..., 1:] + (factor[..., 0] * bp - gamma * p[..., 0])[..., None] * beta
        return np.concatenate([e[..., None], vec], axis=-1)

    return boost(a), boost(b), boost(c)


def _unit(v: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return v / np.linalg.norm(v, axis=-1, keepdims=True)


def polarimetry_angles(p1: Any, p2: Any, p3: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(φ, θ, χ) of each event, in radians: φ, χ in (−π, π], θ in [0, π].

    The momenta are boosted to the parent's rest frame first (:func:`rest_frame`); then R is
    built from its columns R x̂ (p⃗2's part across p⃗1), R ŷ and R ẑ = −p̂1, and
    φ = atan2(R₁₂, R₀₂), θ = arccos R₂₂, χ = atan2(R₂₁, −R₂₀) (zero-based). Where sin θ < 1e-12
    only φ + χ (θ = 0) or χ − φ (θ = π) is defined: φ is set to 0 there.

    Raises:
        InvalidInputError: bad arrays, or a total momentum that is not time-like.
    """
    a, b, _ = rest_frame(p1, p2, p3)
    z = _unit(-a[..., 1:])
    across = b[..., 1:] - np.sum(b[..., 1:] * z, axis=-1, keepdims=True) * z
    x = _unit(across)
    y = np.cross(z, x)
    theta = np.arccos(np.clip(z[..., 2], -1.0, 1.0))
    phi = np.arctan2(z[..., 1], z[..., 0])
    chi = np.arctan2(y[..., 2], -x[..., 2])
    flat = np.hypot(z[..., 0], z[..., 1]) < DEGENERATE
    if np.any(flat):
        # θ = 0: R = R_z(φ + χ); θ = π: R₀₀ = −cos(χ − φ), R₀₁ = sin(χ − φ); with φ = 0
        up = z[..., 2] > 0
        chi_up = np.arctan2(x[..., 1], x[..., 0])
        chi_down = np.arctan2(y[..., 0], -x[..., 0])
        chi = np.where(flat, np.where(up, chi_up, chi_down), chi)
        phi = np.where(flat, 0.0, phi)
    return phi, theta, chi


def four_momenta(
    sigma1: Any,
    sigma2: Any,
    phi: Any,
    theta: Any,
    chi: Any,
    masses: tuple[float, float, float, float],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """p1, p2, p3 in the parent's rest frame, shape ``(..., 4)``, from (σ1, σ2) and (φ, θ, χ).

    ``masses`` are (m0, m1, m2, m3) (e.g. ``modelstore.dalitz.plot.model_masses(model)``). The
    reference orientation (module docstring) is turned by ``rotation_matrix(phi, theta, chi)``;
    so :func:`invariants` and :func:`polarimetry_angles` give the inputs back. Outside the Dalitz
    region the momenta are NaN.

    Raises:
        InvalidInputError: inputs that are not real numbers or do not broadcast, or ``masses``
            that are not four non-negative numbers.
    """
    try:
        m0, m1, m2, m3 = (float(m) for m in masses)
        s1, s2, a, b, c = np.broadcast_arrays(
            *(np.asarray(v, dtype=np.float64) for v in (sigma1, sigma2, phi, theta, chi))
        )
    except (TypeError, ValueError) as exc:
        msg = f"four_momenta needs real σ1, σ2, φ, θ, χ that broadcast and masses (m0..m3): {exc}"
        raise InvalidInputError(msg) from None
    if not all(np.isfinite(m) and m >= 0 for m in (m0, m1, m2, m3)):
        msg = f"masses must be four finite non-negative numbers, got {masses!r}"
        raise InvalidInputError(msg)
    s3 = m0**2 + m1**2 + m2**2 + m3**2 - s1 - s2
    e1 = (m0**2 + m1**2 - s1) / (2 * m0)
    e2 = (m0**2 + m2**2 - s2) / (2 * m0)
    with np.errstate(invalid="ignore", divide="ignore"):
        q1 = np.sqrt(e1**2 - m1**2)
        q2 = np.sqrt(e2**2 - m2**2)
        cos12 = (e1 * e2 - (s3 - m1**2 - m2**2) / 2) / (q1 * q2)  # angle between p⃗1 and p⃗2
        sin12 = np.sqrt(1 - cos12**2)
    zero = np.zeros_like(s1)
    ref1 = np.stack([zero, zero, -q1], axis=-1)
    ref2 = np.stack([q2 * sin12, zero, -q2 * cos12], axis=-1)
    rotation = rotation_matrix(a, b, c)
    v1 = np.einsum("...ij,...j->...i", rotation, ref1)
    v2 = np.einsum("...ij,...j->...i", rotation, ref2)
    v3 = -(v1 + v2)
    e3 = np.sqrt(m3**2 + np.sum(v3**2, axis=-1))
    out = [np.concatenate([e[..., None], v], axis=-1) for e, v in ((e1, v1), (e2, v2), (e3, v3))]
    bad = ~(np.abs(cos12) <= 1)
    if np.any(bad):
        for p in out:
            p[bad] = np.nan
    return out[0], out[1], out[2]
