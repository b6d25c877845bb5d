"""Model spread of α⃗ or the intensity: the nominal model's value and the min/max envelope.

Per point of an N×N grid over the Dalitz plot's bounding box (as :mod:`modelstore.dalitz.field`):
the nominal model's value, and the smallest and largest value over the nominal model and the
alternative models (upstream indices 1..17, latest versions, the nominal one left out). NaN
outside the Dalitz region, and wherever the nominal model or any alternative is NaN.

The models' intensities have no common scale (each is unnormalised), so ``intensity`` is each
model's intensity divided by its own mean over the grid's points inside the Dalitz region: a
dimensionless shape whose mean there is 1 for every model (``INTENSITY_NORMALIZATION``).
"""

from __future__ import annotations

import io
import json
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from modelstore._optional import require
from modelstore.dalitz.field import dalitz_grid, grid_axes
from modelstore.dalitz.plot import axis_labels, dalitz_boundary, model_masses
from modelstore.errors import InvalidInputError
from modelstore.outputs import check_output_path, write_output
from modelstore.progress import progress

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from modelstore.model import PublishedModel

__all__ = [
    "INTENSITY_NORMALIZATION",
    "QUANTITIES",
    "band_figure",
    "model_spread",
    "quantity_values",
    "write_band",
]

QUANTITIES = ("alpha_x", "alpha_y", "alpha_z", "alpha_abs", "intensity")
INTENSITY_NORMALIZATION = "each model's intensity / its mean over the grid inside the Dalitz region"
ALTERNATIVES = range(1, 18)  # upstream indices of the alternative models


def quantity_values(model: PublishedModel, quantity: str, sigma1: Any, sigma2: Any) -> np.ndarray:
    """αx, αy, αz, |α⃗| (``alpha_abs``) or the normalised intensity of ``model`` at σ1, σ2.

    ``intensity``: divided by its mean over the given points inside the Dalitz region (those
    where it is not NaN), so that mean is 1; every version has it (α needs 1.4.0 on).

    Raises:
        InvalidInputError: an unknown quantity, or (``intensity``) no point inside the region.
        BackendUnavailableError: the version has no polarimetry (before 1.4.0), for α.
    """
    if quantity not in QUANTITIES:
        msg = f"quantity must be one of {', '.join(QUANTITIES)}, not {quantity!r}"
        raise InvalidInputError(msg)
    if quantity == "intensity":
        values = np.asarray(model.intensity(sigma1, sigma2), dtype=np.float64)
        inside = ~np.isnan(values)
        mean = float(np.mean(values[inside])) if inside.any() else 0.0
        if not mean > 0:
            msg = f"{model.ref}: no point with a positive intensity inside the Dalitz region"
            raise InvalidInputError(msg)
        return values / mean
    alpha = model.polarimeter(sigma1, sigma2)
    if quantity == "alpha_abs":
        return np.asarray(np.linalg.norm(alpha, axis=-1))
    return np.ascontiguousarray(alpha[..., "xyz".index(quantity[-1])])


def model_spread(
    model: PublishedModel,
    quantity: str = "alpha_z",
    n: int = 100,
    alternatives: list[PublishedModel] | None = None,
) -> dict[str, Any]:
    """The nominal value and the envelope over the models on an N×N grid.

    Args:
        model: the nominal model (usually ``default``).
        quantity: ``alpha_x``, ``alpha_y``, ``alpha_z``, ``alpha_abs`` or ``intensity`` (each
            model's over its own mean on the grid inside the Dalitz region).
        n: points per grid axis.
        alternatives: the other models; None, for a model of the LHCb catalog, loads upstream
            indices 1..17 (latest versions, same registry and backend as ``model``;
            ``model``'s own id left out). A model of another decay must name its own.

    Returns:
        ``quantity``, the axes (N; ``modelstore.dalitz.field.grid_axes``: ``m^2_Kpi``,
        ``m^2_pK`` for the catalog), ``nominal``, ``min``, ``max`` (N×N, ``[i][j]`` at (σ1 axis
        ``[j]``, σ2 axis ``[i]``)) and ``models`` (the refs; the nominal first); for
        ``intensity`` also ``normalization`` (what each model's intensity was divided by).

    Raises:
        InvalidInputError: an unknown quantity, a bad grid size, no alternatives for a
            model outside the LHCb catalog, or an alternative with other masses.
        BackendUnavailableError: a model has no polarimetry (before 1.4.0), for α.
        ModelNotFoundError: an alternative model is missing from the registry.
    """
    if alternatives is None and model.manifest.upstream_index is None:
        msg = (
            f"{model.ref}: the default envelope is over the alternative models of LHCb's"
            " catalog (upstream indices 1..17), which this model is not part of; name the models"
            " to compare it with (modelstore band --against REF ...; alternatives=[...])"
        )
        raise InvalidInputError(msg)
    x, y = dalitz_grid(model, n)
    s1, s2 = np.meshgrid(x, y)
    nominal = quantity_values(model, quantity, s1, s2)
    if alternatives is None:
        from modelstore.model import published_model

        alternatives = [
            published_model(i, backend=model.requested_backend, registry=model.registry)
            for i in ALTERNATIVES
        ]
        alternatives = [m for m in alternatives if m.model_id != model.model_id]
    masses = np.array(model_masses(model))
    for other in alternatives:
        if not np.allclose(model_masses(other), masses, rtol=1e-9, atol=0.0):
            msg = (
                f"{other.ref}: its masses (m0..m3) differ from {model.ref}'s; an envelope needs"
                " models of one decay over one Dalitz region"
            )
            raise InvalidInputError(msg)
    low, high = nominal.copy(), nominal.copy()
    for other in progress(alternatives, desc=f"{quantity} of the other models", unit=" models"):
        values = quantity_values(other, quantity, s1, s2)
        low = np.minimum(low, values)  # NaN propagates
        high = np.maximum(high, values)
    extra = {"normalization": INTENSITY_NORMALIZATION} if quantity == "intensity" else {}
    first, second = grid_axes(model)
    return {
        "quantity": quantity,
        **extra,
        first: x,
        second: y,
        "nominal": nominal,
        "min": low,
        "max": high,
        "models": [model.ref, *(m.ref for m in alternatives)],
    }


def band_figure(spread: dict[str, Any], model: PublishedModel, dpi: float = 100) -> Figure:
    """Two panels: the nominal value (α: diverging, [-1, 1]) and the envelope width max - min.

    Raises:
        MissingExtraError: matplotlib is not installed (``modelstore[plot]``).
        InvalidInputError: the model has no usable masses.
    """
    figure_cls = require("matplotlib.figure", "plots").Figure
    x, y = (spread[axis] for axis in grid_axes(model))
    dx, dy = (x[-1] - x[0]) / (2 * (x.size - 1)), (y[-1] - y[0]) / (2 * (y.size - 1))
    extent = (x[0] - dx, x[-1] + dx, y[0] - dy, y[-1] + dy)  # grid points are cell centres
    boundary = dalitz_boundary(*model_masses(model))
    xlabel, ylabel = axis_labels(model)
    figure = figure_cls(figsize=(11, 4.8), dpi=dpi, layout="constrained")
    intensity = spread["quantity"] == "intensity"
    nominal_title = f"{spread['quantity']}{' / its mean' if intensity else ''}, {model.ref}"
    panels = (
        (spread["nominal"], nominal_title, *(("viridis", (0, None)) if intensity
         else ("RdBu_r", (-1, 1)))),
        (spread["max"] - spread["min"], f"max - min over {len(spread['models'])} models",
         "viridis", (0, None)),
    )  # fmt: skip
    for k, (values, title, cmap, (vmin, vmax)) in enumerate(panels):
        ax = figure.add_subplot(1, 2, k + 1)
        mesh = ax.imshow(
            np.ma.masked_invalid(values), origin="lower", extent=extent, aspect="auto",
            interpolation="nearest", cmap=cmap, vmin=vmin, vmax=vmax,
        )  # fmt: skip
        ax.plot(*boundary, color="black", linewidth=0.8)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.set_title(textwrap.fill(title, 50), fontsize="small")
        figure.colorbar(mesh, ax=ax)
    return figure


def write_band(
    spread: dict[str, Any], model: PublishedModel, path: str | Path, *, overwrite: bool = False
) -> Path:
    """Write the spread as JSON (``.json``; NaN as the token ``NaN``) or as a picture.

    The output rule of `modelstore.outputs` applies (an existing file is replaced only with
    ``overwrite``; a FIFO or ``/dev/null`` is written into, never replaced).

    Raises:
        InvalidInputError: a picture format matplotlib cannot write.
        MissingExtraError: a picture without matplotlib (``modelstore[plot]``).
        OutputError: the output may not be written there, or writing failed (nothing is left
            behind).
    """
    path = Path(path)
    check_output_path(path, overwrite, streams=True)  # before drawing
    if path.suffix.lower() == ".json":
        doc = {
            key: (value.tolist() if isinstance(value, np.ndarray) else value)
            for key, value in spread.items()
        }
        data = json.dumps(doc, separators=(",", ":")).encode()
        return write_output(path, data, overwrite=overwrite)
    figure = band_figure(spread, model)
    fmt = path.suffix.lstrip(".").lower()
    supported = figure.canvas.get_supported_filetypes()
    if fmt not in supported:
        msg = (
            f"{path}: cannot tell the picture format (use .json or {', '.join(sorted(supported))})"
        )
        raise InvalidInputError(msg)
    buffer = io.BytesIO()
    figure.savefig(buffer, format=fmt, dpi=figure.dpi)
    return write_output(path, buffer.getvalue(), overwrite=overwrite)
