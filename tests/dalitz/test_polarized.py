"""The polarized decay rate I₀ (1 + P⃗ · R(φ, θ, χ) α⃗) (issue #10)."""

from __future__ import annotations

import numpy as np
import pytest

from modelstore import PublishedModel, published_model
from modelstore.dalitz.kinematics import sample_dalitz
from modelstore.dalitz.plot import model_masses
from modelstore.dalitz.polarized import rotation_matrix
from modelstore.errors import InvalidInputError

REF = "default@1.4.0"


@pytest.fixture(scope="module")
def model() -> PublishedModel:
    return published_model(REF, backend="auto")


@pytest.fixture(scope="module")
def points(model: PublishedModel) -> tuple[np.ndarray, np.ndarray]:
    return sample_dalitz(50, *model_masses(model), seed=3)


def test_rotation_is_proper() -> None:
    rng = np.random.default_rng(1)
    r = rotation_matrix(*rng.uniform(-7, 7, (3, 200)))
    assert r.shape == (200, 3, 3)
    eye = np.broadcast_to(np.eye(3), r.shape)
    np.testing.assert_allclose(r @ np.swapaxes(r, -1, -2), eye, atol=1e-14)
    np.testing.assert_allclose(np.linalg.det(r), 1.0, atol=1e-14)


def test_rotation_convention_is_zyz() -> None:
    phi, theta, chi = 0.3, 1.1, -0.7

    def rz(a: float) -> np.ndarray:
        return np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])

    ry = np.array(
        [[np.cos(theta), 0, np.sin(theta)], [0, 1, 0], [-np.sin(theta), 0, np.cos(theta)]]
    )
    np.testing.assert_allclose(rotation_matrix(phi, theta, chi), rz(phi) @ ry @ rz(chi))


def test_unpolarized_equals_intensity(model: PublishedModel, points: tuple) -> None:
    s1, s2 = points
    rate = model.polarized_intensity(s1, s2, 0.4, 1.2, -2.0, [0, 0, 0])
    np.testing.assert_allclose(rate, model.intensity(s1, s2), rtol=1e-13)


def test_scalar_and_formula(model: PublishedModel) -> None:
    p = np.array([0.1, -0.5, 0.6])
    rate = model.polarized_intensity(1.0, 3.0, 0.2, 0.9, 1.4, p)
    intensity, alpha = model.intensity_and_polarimeter(1.0, 3.0)
    assert isinstance(rate, float)
    assert rate == pytest.approx(intensity * (1 + p @ rotation_matrix(0.2, 0.9, 1.4) @ alpha))


def test_orientation_average_is_intensity(model: PublishedModel, points: tuple) -> None:
    s1, s2 = points
    n = 6  # periodic grids in φ, χ and Gauss-Legendre in cos θ: exact for R's degree
    phi = 2 * np.pi * np.arange(n) / n
    chi = 2 * np.pi * (np.arange(n) + 0.5) / n
    x, w = np.polynomial.legendre.leggauss(n)
    theta = np.arccos(x)
    grid = np.meshgrid(phi, theta, chi, indexing="ij")
    weights = np.broadcast_to(w[None, :, None], grid[0].shape) / (2 * n * n)
    intensity = model.intensity(s1, s2)
    rate = model.polarized_intensity(
        s1[:, None, None, None],
        s2[:, None, None, None],
        grid[0],
        grid[1],
        grid[2],
        [0.3, -0.6, 0.7],
    )
    average = np.sum(rate * weights, axis=(1, 2, 3))
    np.testing.assert_allclose(average, intensity, rtol=1e-12)
    assert np.ptp(rate / intensity[:, None, None, None]) > 0.1  # the P term is not zero


@pytest.mark.parametrize("bad", [[1, 1, 0], [0, 0], [np.nan, 0, 0], "x"])
def test_bad_polarization(model: PublishedModel, bad: object) -> None:
    with pytest.raises(InvalidInputError):
        model.polarized_intensity(1.0, 3.0, 0, 0, 0, bad)
