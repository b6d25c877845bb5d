"""σ1, σ2, σ3 and (φ, θ, χ) from four-momenta (modelstore.dalitz.fourvectors), by hand."""

from __future__ import annotations

import numpy as np
import pytest

from modelstore.dalitz.fourvectors import (
    four_momenta,
    invariants,
    polarimetry_angles,
    rest_frame,
)
from modelstore.dalitz.kinematics import sample_dalitz
from modelstore.dalitz.polarized import rotation_matrix
from modelstore.errors import InvalidInputError

# made-up masses (GeV), not any model's: the functions take masses as arguments
M1, M2, M3 = 0.9, 0.15, 0.5
# a hand-made event in the parent's rest frame: three momenta that add up to zero
P1 = np.array([0.3, -0.2, 0.5])
P2 = np.array([-0.1, 0.4, -0.2])
P3 = -(P1 + P2)


def four(mass: float, vec: np.ndarray) -> np.ndarray:
    return np.array([np.sqrt(mass**2 + vec @ vec), *vec])


def lorentz_boost(p: np.ndarray, beta: np.ndarray) -> np.ndarray:
    """The four-vector ``p`` seen from a frame moving with velocity −β (so it gains +β), by hand."""
    b2 = beta @ beta
    gamma = 1 / np.sqrt(1 - b2)
    matrix = np.eye(4)
    matrix[0, 0] = gamma
    matrix[0, 1:] = matrix[1:, 0] = gamma * beta
    matrix[1:, 1:] += (gamma - 1) * np.outer(beta, beta) / b2
    return matrix @ p


def reference_angles(p1: np.ndarray, p2: np.ndarray) -> tuple[float, float, float]:
    """(φ, θ, χ) from scalar and cross products (upstream's ``eulerfromalgebra``, p_X = −z).

    Independent of the module's rotation-matrix route: φ and θ are −p⃗1's azimuth and polar
    angle; χ the angle of p⃗2 about p⃗1, measured from the plane of −z and p⃗1.
    """
    p_x, p_p = np.array([0.0, 0.0, -1.0]), np.array([1.0, 0.0, 0.0])
    normal = -np.cross(p_p, p_x)
    phi = np.arctan2(normal @ p1, np.cross(normal, -p_x) @ p1)
    theta = np.arccos(p_x @ p1 / np.linalg.norm(p1))
    across = np.cross(p_x, p1)
    chi = np.arctan2(across @ p2, np.cross(across, -p1 / np.linalg.norm(p1)) @ p2)
    return float(phi), float(theta), float(chi)


def wrapped(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """|a − b| modulo 2π."""
    d = np.mod(np.asarray(a) - np.asarray(b) + np.pi, 2 * np.pi) - np.pi
    return np.abs(d)


def test_hand_made_event_at_rest() -> None:
    p1, p2, p3 = four(M1, P1), four(M2, P2), four(M3, P3)
    s1, s2, s3 = invariants(p1, p2, p3)
    # by hand: m²(23) = (E2 + E3)² − |p⃗2 + p⃗3|² = (E2 + E3)² − |p⃗1|²
    assert s1 == pytest.approx((p2[0] + p3[0]) ** 2 - P1 @ P1, rel=1e-14)
    assert s2 == pytest.approx((p3[0] + p1[0]) ** 2 - P2 @ P2, rel=1e-14)
    assert s3 == pytest.approx((p1[0] + p2[0]) ** 2 - P3 @ P3, rel=1e-14)
    m0 = p1[0] + p2[0] + p3[0]
    assert s1 + s2 + s3 == pytest.approx(m0**2 + M1**2 + M2**2 + M3**2, rel=1e-14)
    phi, theta, chi = polarimetry_angles(p1, p2, p3)
    # −p⃗1 = (−0.3, 0.2, −0.5): azimuth atan2(0.2, −0.3), polar angle arccos(−0.5/|p⃗1|)
    assert phi == pytest.approx(np.arctan2(0.2, -0.3), abs=1e-14)
    assert theta == pytest.approx(np.arccos(-0.5 / np.sqrt(0.38)), abs=1e-14)
    assert (phi, theta, chi) == pytest.approx(reference_angles(P1, P2), abs=1e-13)


@pytest.mark.parametrize("beta", [(0.3, -0.5, 0.6), (0.0, 0.0, -0.999), (1e-9, 0.0, 0.0)])
def test_boosted_event_gives_the_same_invariants_and_angles(beta: tuple) -> None:
    rest = [four(M1, P1), four(M2, P2), four(M3, P3)]
    rotation = rotation_matrix(0.4, 2.1, -1.3)
    turned = [np.array([p[0], *(rotation @ p[1:])]) for p in rest]
    lab = [lorentz_boost(p, np.array(beta)) for p in turned]
    assert np.linalg.norm(sum(lab)[1:]) > 0  # the parent moves in the lab
    np.testing.assert_allclose(invariants(*lab), invariants(*rest), rtol=1e-9)
    np.testing.assert_allclose(rest_frame(*lab), turned, atol=1e-9)
    # the lab event's angles are those of the rotated rest-frame event
    np.testing.assert_allclose(
        polarimetry_angles(*lab), reference_angles(turned[0][1:], turned[1][1:]), atol=1e-9
    )


def test_round_trip_from_dalitz_variables_and_angles() -> None:
    masses = (2.4, M1, M2, M3)
    s1, s2 = sample_dalitz(2000, *masses, seed=3)
    rng = np.random.default_rng(4)
    phi = rng.uniform(-np.pi, np.pi, s1.size)
    theta = np.arccos(rng.uniform(-1, 1, s1.size))
    chi = rng.uniform(-np.pi, np.pi, s1.size)
    p1, p2, p3 = four_momenta(s1, s2, phi, theta, chi, masses)
    assert p1.shape == (2000, 4)
    np.testing.assert_allclose(p1 + p2 + p3, np.broadcast_to([2.4, 0, 0, 0], p1.shape), atol=1e-12)
    for p, m in ((p1, M1), (p2, M2), (p3, M3)):
        np.testing.assert_allclose(p[:, 0] ** 2 - np.sum(p[:, 1:] ** 2, axis=1), m**2, atol=1e-12)
    back1, back2, back3 = invariants(p1, p2, p3)
    np.testing.assert_allclose(back1, s1, atol=1e-12)
    np.testing.assert_allclose(back2, s2, atol=1e-12)
    np.testing.assert_allclose(back1 + back2 + back3, sum(m**2 for m in masses) + 0.0, atol=1e-12)
    got = polarimetry_angles(p1, p2, p3)
    assert np.max(wrapped(got[0], phi)) < 1e-9
    assert np.max(np.abs(got[1] - theta)) < 1e-9
    assert np.max(wrapped(got[2], chi)) < 1e-9
    # boosted anywhere, the same angles and invariants come back
    beta = np.array([-0.2, 0.7, 0.1])
    lab = [np.apply_along_axis(lorentz_boost, 1, p, beta) for p in (p1, p2, p3)]
    np.testing.assert_allclose(invariants(*lab)[0], s1, atol=1e-10)
    again = polarimetry_angles(*lab)
    assert np.max(wrapped(again[0], phi)) < 1e-8
    assert np.max(wrapped(again[2], chi)) < 1e-8


def test_reference_orientation_is_the_one_polarized_rotates() -> None:
    """At (0, 0, 0): p⃗1 along −z, decay plane xz, p⃗2 with px > 0; R(φ, θ, χ) turns it."""
    masses = (2.4, M1, M2, M3)
    s1, s2 = sample_dalitz(50, *masses, seed=6)
    ref = four_momenta(s1, s2, 0.0, 0.0, 0.0, masses)
    assert np.allclose(ref[0][:, 1:3], 0) and np.all(ref[0][:, 3] < 0)
    assert np.allclose([p[:, 2] for p in ref], 0)
    assert np.all(ref[1][:, 1] > 0) and np.all(ref[2][:, 1] < 0)
    angles = (0.7, 1.9, -2.6)
    rotation = rotation_matrix(*angles)
    event = four_momenta(s1, s2, *angles, masses)
    for p, r in zip(event, ref, strict=True):
        np.testing.assert_allclose(p[:, 1:], r[:, 1:] @ rotation.T, atol=1e-14)
        np.testing.assert_allclose(p[:, 0], r[:, 0], atol=1e-14)


@pytest.mark.parametrize("theta", [0.0, np.pi])
def test_degenerate_orientation_keeps_the_rotation(theta: float) -> None:
    masses = (2.4, M1, M2, M3)
    event = four_momenta(1.0, 3.0, 0.3, theta, 1.1, masses)
    phi, got_theta, chi = polarimetry_angles(*event)
    assert got_theta == pytest.approx(theta, abs=1e-12)
    np.testing.assert_allclose(
        rotation_matrix(phi, got_theta, chi), rotation_matrix(0.3, theta, 1.1), atol=1e-12
    )


def test_outside_the_region_is_nan() -> None:
    event = four_momenta([0.01, 1.0], [2.0, 3.0], 0.0, 0.0, 0.0, (2.4, M1, M2, M3))
    assert np.all(np.isnan(event[0][0])) and not np.any(np.isnan(event[0][1]))
    angles = polarimetry_angles(*event)
    assert np.isnan(angles[1][0]) and not np.isnan(angles[1][1])


def test_bad_inputs() -> None:
    with pytest.raises(InvalidInputError, match=r"shape \(\.\.\., 4\)"):
        invariants(np.zeros(3), np.zeros(3), np.zeros(3))
    with pytest.raises(InvalidInputError, match="broadcast"):
        invariants(np.zeros((2, 4)), np.zeros((3, 4)), np.zeros(4))
    with pytest.raises(InvalidInputError, match="time-like"):
        polarimetry_angles([0, 1, 0, 0], [0, 1, 0, 0], [0, 1, 0, 0])
    with pytest.raises(InvalidInputError, match="masses"):
        four_momenta(1.0, 2.0, 0, 0, 0, (2.4, -1, M2, M3))
    with pytest.raises(InvalidInputError, match="masses"):
        four_momenta(1.0, 2.0, 0, 0, 0, (2.4, M1))  # type: ignore[arg-type]
