"""The decay rate of a polarized Λc⁺: I₀(τ)(1 + Σᵢⱼ Pᵢ Rᵢⱼ(φ, θ, χ) αⱼ(τ)), as upstream defines it.

R = R_z(φ) R_y(θ) R_z(χ) (active rotations, z-y-z Euler angles) turns the Λc⁺ rest frame in
which α⃗ is given (reference subsystem 1, upstream's aligned frame) into the frame of the
polarization P⃗. Averaged over all orientations (uniform φ, χ and cos θ) the P⃗ term vanishes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from modelstore.errors import InvalidInputError

if TYPE_CHECKING:
    from modelstore.format.manifest import ParameterValue
    from modelstore.model import PublishedModel

__all__ = ["check_polarization", "polarized_intensity", "rotation_matrix"]


def rotation_matrix(phi: Any, theta: Any, chi: Any) -> np.ndarray:
    """R = R_z(φ) R_y(θ) R_z(χ) for scalars or arrays (broadcast): shape ``(..., 3, 3)``.

    Raises:
        InvalidInputError: the angles are not real numbers or do not broadcast.
    """
    try:
        a, b, c = np.broadcast_arrays(*(np.asarray(x, dtype=np.float64) for x in (phi, theta, chi)))
    except (TypeError, ValueError) as exc:
        msg = f"the angles phi, theta, chi must be real numbers that broadcast: {exc}"
        raise InvalidInputError(msg) from None
    ca, sa, cb, sb, cc, sc = np.cos(a), np.sin(a), np.cos(b), np.sin(b), np.cos(c), np.sin(c)
    rows = [
        [ca * cb * cc - sa * sc, -ca * cb * sc - sa * cc, ca * sb],
        [sa * cb * cc + ca * sc, -sa * cb * sc + ca * cc, sa * sb],
        [-sb * cc, sb * sc, cb],
    ]
    return np.stack([np.stack(row, axis=-1) for row in rows], axis=-2)


def check_polarization(polarization: Any) -> np.ndarray:
    """P⃗ as a float array of shape ``(3,)`` with |P⃗| ≤ 1.

    Raises:
        InvalidInputError: not three finite real numbers, or |P⃗| > 1.
    """
    try:
        p = np.asarray(polarization, dtype=np.float64)
    except (TypeError, ValueError):
        msg = f"polarization must be three real numbers, got {polarization!r}"
        raise InvalidInputError(msg) from None
    if p.shape != (3,) or not np.all(np.isfinite(p)):
        msg = f"polarization must be three finite real numbers, got {polarization!r}"
        raise InvalidInputError(msg)
    norm = float(np.linalg.norm(p))
    if norm > 1 + 1e-12:
        msg = f"|polarization| must be at most 1, got {norm:.6g}"
        raise InvalidInputError(msg)
    return p


def polarized_intensity(
    model: PublishedModel,
    sigma1: Any,
    sigma2: Any,
    phi: Any,
    theta: Any,
    chi: Any,
    polarization: Any,
    **parameters: ParameterValue,
) -> Any:
    """I₀ (1 + Σᵢⱼ Pᵢ Rᵢⱼ(φ, θ, χ) αⱼ) at σ1, σ2 and the orientation (φ, θ, χ); inputs broadcast.

    Raises:
        InvalidInputError: a bad polarization (|P⃗| > 1), angles, σ values or parameter name.
        BackendUnavailableError: the version has no polarimetry (before 1.4.0).
    """
    p = check_polarization(polarization)
    intensity, alpha = model.intensity_and_polarimeter(sigma1, sigma2, **parameters)
    rotation = rotation_matrix(phi, theta, chi)
    try:
        rotated = np.einsum("...ij,...j->...i", rotation, alpha)  # R α⃗
        out = np.asarray(intensity) * (1 + rotated @ p)
    except ValueError as exc:
        msg = f"the angles and σ values do not broadcast: {exc}"
        raise InvalidInputError(msg) from None
    return float(out) if out.ndim == 0 else out
