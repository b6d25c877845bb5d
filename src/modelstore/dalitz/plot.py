"""Dalitz-plot pictures: a model's intensity over the kinematically allowed region.

Drawn with matplotlib's object-oriented API on an Agg canvas (no pyplot, no display needed).
Axes are σ1 = m²(23) (x) and σ2 = m²(31) (y) in GeV² for the decay 0 → 1 2 3, labelled with the
particles the manifest's ``about`` names (else, for a model of the LHCb catalog, Λc⁺ → p π⁺ K⁻:
σ1 = m²(K⁻π⁺), σ2 = m²(pK⁻); for any other model m²(23) and m²(31)); the masses m0..m3 are the
model's own parameters.
"""

from __future__ import annotations

import io
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from modelstore._optional import require
from modelstore.errors import InvalidInputError
from modelstore.format.reference import dalitz_limits

if TYPE_CHECKING:
    from collections.abc import Mapping

    from matplotlib.figure import Figure

    from modelstore.format.manifest import ParameterValue
    from modelstore.model import PublishedModel

__all__ = [
    "axis_labels",
    "dalitz_boundary",
    "dalitz_figure",
    "inside_dalitz",
    "model_masses",
    "save_dalitz_plot",
]

DEFAULT_RESOLUTION = 400
MAX_RESOLUTION = 4000  # 16 million grid cells
QUANTITIES = ("intensity", "alpha_x", "alpha_y", "alpha_z", "alpha_abs")
SIGMA1_LABEL = r"$\sigma_1 = m^2(K^-\pi^+)$ [GeV$^2$]"
SIGMA2_LABEL = r"$\sigma_2 = m^2(pK^-)$ [GeV$^2$]"
GENERIC_LABELS = (r"$\sigma_1 = m^2(23)$ [GeV$^2$]", r"$\sigma_2 = m^2(31)$ [GeV$^2$]")


def axis_labels(model: PublishedModel) -> tuple[str, str]:
    """The σ1 and σ2 axis labels: the model's own particles where its manifest names them.

    Never raises.
    """
    about = model.manifest.about
    labels = None if about is None else about.axis_labels()
    if labels is None:
        if model.manifest.upstream_index is not None:  # the LHCb catalog: Λc⁺ → p π⁺ K⁻
            return SIGMA1_LABEL, SIGMA2_LABEL
        return GENERIC_LABELS
    return (
        rf"$\sigma_1$ = {_mathtext_safe(labels[0])} [GeV$^2$]",
        rf"$\sigma_2$ = {_mathtext_safe(labels[1])} [GeV$^2$]",
    )


def _mathtext_safe(text: str) -> str:
    """Plain text for matplotlib: ``$`` would start mathtext, escape it."""
    return text.replace("$", r"\$")


def model_masses(model: PublishedModel) -> tuple[float, float, float, float]:
    """The masses m0..m3 (GeV) that the model's parameters ``m0``..``m3`` hold.

    Raises:
        InvalidInputError: the model's masses are missing or not real numbers.
    """
    values = model.parameters
    try:
        return tuple(float(np.real(values[f"m{i}"])) for i in range(4))  # type: ignore[return-value]
    except KeyError as exc:
        msg = f"{model.ref}: no mass parameter {exc.args[0]!r}, cannot draw its Dalitz region"
        raise InvalidInputError(msg) from None


def _kallen(x: Any, y: Any, z: Any) -> Any:
    return x * x + y * y + z * z - 2 * (x * y + y * z + z * x)


def inside_dalitz(
    sigma1: Any, sigma2: Any, m0: float, m1: float, m2: float, m3: float
) -> np.ndarray:
    """Whether (σ1, σ2) lies strictly inside the Dalitz region (the Kibble function is negative).

    Never raises.
    """
    s1 = np.asarray(sigma1, dtype=np.float64)
    s2 = np.asarray(sigma2, dtype=np.float64)
    s3 = m0**2 + m1**2 + m2**2 + m3**2 - s1 - s2
    kibble = _kallen(
        _kallen(s2, m2**2, m0**2),
        _kallen(s3, m3**2, m0**2),
        _kallen(s1, m1**2, m0**2),
    )
    return kibble < 0


def dalitz_boundary(
    m0: float, m1: float, m2: float, m3: float, n: int = 400
) -> tuple[np.ndarray, np.ndarray]:
    """A closed curve (σ1, σ2) along the edge of the Dalitz region.

    For each σ1 = m²(23), σ2 = m²(31) ranges between the values with particles 3 and 1
    back to back and parallel in the (23) rest frame.

    Never raises.
    """
    (lo, hi), _ = dalitz_limits(m0, m1, m2, m3)
    # cosine spacing: dense near the ends, where the curve turns
    s1 = lo + (hi - lo) * (1 - np.cos(np.linspace(0, np.pi, n))) / 2
    root = np.sqrt(s1)
    e3 = (s1 + m3**2 - m2**2) / (2 * root)
    e1 = (m0**2 - s1 - m1**2) / (2 * root)
    p3 = np.sqrt(np.clip(e3**2 - m3**2, 0, None))
    p1 = np.sqrt(np.clip(e1**2 - m1**2, 0, None))
    low = (e3 + e1) ** 2 - (p3 + p1) ** 2
    high = (e3 + e1) ** 2 - (p3 - p1) ** 2
    sigma1 = np.concatenate([s1, s1[::-1], s1[:1]])
    sigma2 = np.concatenate([low, high[::-1], low[:1]])
    return sigma1, sigma2


def dalitz_figure(
    model: PublishedModel,
    *,
    resolution: int = DEFAULT_RESOLUTION,
    parameters: Mapping[str, ParameterValue] | None = None,
    figsize: tuple[float, float] = (6.4, 5.6),
    dpi: float = 100,
    cmap: str | None = None,
    quantity: str = "intensity",
) -> Figure:
    """A matplotlib Figure of the intensity (or a polarimetry quantity) over the Dalitz region.

    The intensity is evaluated at the centres of a ``resolution`` × ``resolution`` grid over
    the region's bounding box; cells outside the region are left blank (the axes' white).

    Args:
        model: the model to draw.
        resolution: grid cells per axis.
        parameters: parameter values overriding the model's defaults, by name.
        figsize: figure size in inches.
        dpi: dots per inch of the figure (and of a PNG saved from it).
        cmap: a matplotlib colour map name (default: viridis; RdBu_r for αx, αy, αz).
        quantity: ``intensity``, or ``alpha_x``, ``alpha_y``, ``alpha_z`` (a diverging map
            over [-1, 1]) or ``alpha_abs`` (|α⃗| over [0, 1]), which need version 1.4.0 on.

    Raises:
        InvalidInputError: ``resolution`` out of range, unusable masses, unknown quantity.
        BackendUnavailableError: a polarimetry quantity of a version before 1.4.0.
        MissingExtraError: matplotlib is not installed (``modelstore[plot]``).
    """
    Figure = require("matplotlib.figure", "plots").Figure  # noqa: N806

    if not 2 <= resolution <= MAX_RESOLUTION:
        msg = f"resolution must be from 2 to {MAX_RESOLUTION}, got {resolution}"
        raise InvalidInputError(msg)
    masses = model_masses(model)
    (lo1, hi1), (lo2, hi2) = dalitz_limits(*masses)
    centres = (np.arange(resolution) + 0.5) / resolution
    s1, s2 = np.meshgrid(lo1 + (hi1 - lo1) * centres, lo2 + (hi2 - lo2) * centres, indexing="xy")
    inside = inside_dalitz(s1, s2, *masses)
    if quantity not in QUANTITIES:
        msg = f"quantity must be one of {', '.join(QUANTITIES)}, not {quantity!r}"
        raise InvalidInputError(msg)
    values = np.full(s1.shape, np.nan)
    limits: tuple[float | None, float | None]
    overrides = dict(parameters or {})
    if quantity == "intensity":
        values[inside] = model.intensity(s1[inside], s2[inside], **overrides)
        limits, label = (None, None), "intensity (arbitrary units)"
    else:
        alpha = model.polarimeter(s1[inside], s2[inside], **overrides)
        if quantity == "alpha_abs":
            values[inside] = np.linalg.norm(alpha, axis=-1)
            limits, label = (0.0, 1.0), r"$|\vec\alpha|$"
        else:
            values[inside] = alpha[..., "xyz".index(quantity[-1])]
            limits, label = (-1.0, 1.0), rf"$\alpha_{quantity[-1]}$"
            cmap = cmap or "RdBu_r"
    image = np.ma.masked_invalid(values)

    figure = Figure(figsize=figsize, dpi=dpi, layout="constrained")
    ax = figure.add_subplot()
    mesh = ax.imshow(
        image,
        origin="lower",
        extent=(lo1, hi1, lo2, hi2),
        aspect="auto",
        interpolation="nearest",
        cmap=cmap or "viridis",
        vmin=limits[0],
        vmax=limits[1],
    )
    ax.plot(*dalitz_boundary(*masses), color="black", linewidth=0.8)
    ax.set_xlim(lo1, hi1)
    ax.set_ylim(lo2, hi2)
    xlabel, ylabel = axis_labels(model)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(textwrap.fill(f"{model.ref}: {model.title}", 70), fontsize="small")
    figure.colorbar(mesh, ax=ax, label=label)
    return figure


def save_dalitz_plot(
    model: PublishedModel,
    path: str | Path,
    *,
    format: str | None = None,
    overwrite: bool = False,
    **options: Any,
) -> Path:
    """Draw `dalitz_figure` and write it to ``path`` (written in full, then renamed into place).

    The output rule of `modelstore.outputs` applies: an existing file is replaced only with
    ``overwrite``; a FIFO or character device (``/dev/null``) is written into, never replaced.

    Args:
        model: the model to draw.
        path: the picture to write; the format comes from its suffix (png, pdf, svg, ...).
        format: overrides the format told by the suffix.
        overwrite: replace an existing file.
        **options: passed to `dalitz_figure` (resolution, parameters, figsize, dpi, cmap,
            quantity).

    Returns:
        The path written.

    Raises:
        InvalidInputError: an unknown output format or resolution.
        MissingExtraError: matplotlib is not installed (``modelstore[plot]``).
        BackendUnavailableError: a polarimetry quantity of a version before 1.4.0.
        OutputError: the output may not be written there, or writing failed.
    """
    from modelstore.outputs import check_output_path, write_output

    path = Path(path)
    check_output_path(path, overwrite, streams=True)  # before drawing
    figure = dalitz_figure(model, **options)
    fmt = (format or path.suffix.lstrip(".")).lower()
    supported = figure.canvas.get_supported_filetypes()
    if fmt not in supported:
        msg = f"{path}: cannot tell the picture format (use one of {', '.join(sorted(supported))})"
        raise InvalidInputError(msg)
    buffer = io.BytesIO()
    figure.savefig(buffer, format=fmt, dpi=figure.dpi)
    return write_output(path, buffer.getvalue(), overwrite=overwrite)
