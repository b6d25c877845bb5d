"""Dalitz-plot pictures: the region's geometry, and a rendered image checked pixel by pixel."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from event_samples import REF, fast_backend
from matplotlib.colors import to_rgb

from modelstore import PublishedModel, published_model
from modelstore.cli import main
from modelstore.dalitz.plot import (
    dalitz_boundary,
    dalitz_figure,
    inside_dalitz,
    model_masses,
    save_dalitz_plot,
)
from modelstore.errors import InvalidInputError
from modelstore.format.reference import dalitz_limits


@pytest.fixture(scope="module")
def model() -> PublishedModel:
    return published_model(REF, backend=fast_backend())


def read_png(data: bytes) -> np.ndarray:
    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        assert image.format == "PNG"
        return np.asarray(image.convert("RGB"), dtype=np.float64) / 255


def test_region_matches_where_the_model_is_defined(model: PublishedModel) -> None:
    """The Kibble-function test agrees with the NaN pattern of the stored reference values."""
    reference = model.reference()
    inside = inside_dalitz(reference["sigma1"], reference["sigma2"], *model_masses(model))
    np.testing.assert_array_equal(inside, ~np.isnan(reference["intensity"]))
    assert 0 < inside.sum() < inside.size


def test_boundary_is_closed_and_on_the_edge(model: PublishedModel) -> None:
    masses = model_masses(model)
    sigma1, sigma2 = dalitz_boundary(*masses)
    assert (sigma1[0], sigma2[0]) == (sigma1[-1], sigma2[-1])
    (lo1, hi1), (lo2, hi2) = dalitz_limits(*masses)
    assert np.isclose(sigma1.min(), lo1) and np.isclose(sigma1.max(), hi1)
    assert np.isclose(sigma2.min(), lo2, rtol=1e-4) and np.isclose(sigma2.max(), hi2, rtol=1e-4)
    # just inside / outside the curve, towards / away from the region's centroid
    centre = np.array([sigma1.mean(), sigma2.mean()])
    points = np.column_stack([sigma1, sigma2])[::7]
    assert inside_dalitz(*(points + 1e-3 * (centre - points)).T, *masses).all()
    assert not inside_dalitz(*(points - 1e-3 * (centre - points)).T, *masses).any()


def test_rendered_image(model: PublishedModel) -> None:
    figure = dalitz_figure(model, resolution=120, figsize=(6.0, 5.0), dpi=100)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    pixels = read_png(buffer.getvalue())
    assert pixels.shape == (500, 600, 3)

    ax = figure.axes[0]
    assert model.ref in ax.get_title()
    assert "K^-\\pi^+" in ax.get_xlabel() and "GeV" in ax.get_xlabel()
    assert "pK^-" in ax.get_ylabel()
    assert len(figure.axes) == 2  # the colour bar
    masses = model_masses(model)
    (lo1, hi1), (lo2, hi2) = dalitz_limits(*masses)
    assert ax.get_xlim() == (lo1, hi1) and ax.get_ylim() == (lo2, hi2)

    def pixel(s1: float, s2: float) -> np.ndarray:
        x, y = ax.transData.transform((s1, s2))
        return pixels[pixels.shape[0] - 1 - round(y), round(x)]

    viridis = np.array([to_rgb(c) for c in figure.axes[0].images[0].cmap(np.linspace(0, 1, 256))])
    rng = np.random.default_rng(3)
    # away from the axes' frame, and from the boundary line: only points well inside or outside
    s1 = rng.uniform(lo1 + 0.02 * (hi1 - lo1), hi1 - 0.02 * (hi1 - lo1), 400)
    s2 = rng.uniform(lo2 + 0.02 * (hi2 - lo2), hi2 - 0.02 * (hi2 - lo2), 400)
    inside = inside_dalitz(s1, s2, *masses)
    shrunk = inside_dalitz(*_towards(s1, s2, masses, 0.97), *masses)
    grown = inside_dalitz(*_towards(s1, s2, masses, 1.03), *masses)
    well_inside, well_outside = inside & grown, ~inside & ~shrunk
    assert well_inside.sum() > 100 and well_outside.sum() > 50
    for a, b in zip(s1[well_inside], s2[well_inside], strict=False):
        colour = pixel(a, b)
        # a colour of the colour map (not white, not the black boundary)
        assert np.min(np.abs(viridis - colour).sum(axis=1)) < 0.05, (a, b, colour)
    for a, b in zip(s1[well_outside], s2[well_outside], strict=False):
        np.testing.assert_allclose(pixel(a, b), 1.0, err_msg=f"({a}, {b}) is outside, not blank")


def _towards(
    s1: np.ndarray, s2: np.ndarray, masses: tuple, scale: float
) -> tuple[np.ndarray, np.ndarray]:
    """Points moved away from (scale > 1) or towards (scale < 1) the region's centre."""
    b1, b2 = dalitz_boundary(*masses)
    c1, c2 = b1.mean(), b2.mean()
    return c1 + (s1 - c1) * scale, c2 + (s2 - c2) * scale


def test_save_and_cli(tmp_path: Path, model: PublishedModel) -> None:
    path = save_dalitz_plot(model, tmp_path / "d.svg", resolution=20)
    assert path.read_text().lstrip().startswith("<?xml")
    with pytest.raises(InvalidInputError, match="cannot tell the picture format"):
        save_dalitz_plot(model, tmp_path / "d.xyz", resolution=20)

    out = tmp_path / "dalitz.png"
    result = CliRunner().invoke(
        main,
        [
            "plot",
            REF,
            "-o",
            str(out),
            "--resolution",
            "40",
            "--dpi",
            "50",
            "--backend",
            fast_backend(),
        ],
    )
    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"{REF}: {out}"
    pixels = read_png(out.read_bytes())
    assert pixels.shape == (280, 320, 3)  # 6.4 x 5.6 inches at 50 dpi
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.svg", "dalitz.png"]


def test_cli_unknown_model(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["plot", "no-such-model", "-o", str(tmp_path / "x.png")])
    assert result.exit_code == 1
    assert result.output.startswith("Error: ") and len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "x.png").exists()
