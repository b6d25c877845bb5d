"""The polarimeter field on a square grid, in upstream's JSON layout (or a zarr v3 zip).

Layout as ``polarimetry.io.export_polarimetry_field``: ``m^2_Kpi`` (σ1, N values), ``m^2_pK``
(σ2, N values), and N×N nested lists ``alpha_x``, ``alpha_y``, ``alpha_z``, ``intensity`` where
entry ``[i][j]`` belongs to (``m^2_Kpi[j]``, ``m^2_pK[i]``), as ``numpy.meshgrid`` lays it out;
NaN outside the Dalitz region (written as the JSON token ``NaN``, as Python's ``json`` and
upstream do); an optional ``metadata`` object comes first. Models outside the LHCb catalog
(other decays) name their axes ``sigma1``, ``sigma2`` instead (:func:`grid_axes`), and the
metadata says what they are in the model's own particles.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from modelstore.dalitz.plot import model_masses
from modelstore.errors import InvalidInputError
from modelstore.format.reference import dalitz_limits
from modelstore.outputs import check_output_path, write_output

if TYPE_CHECKING:
    from modelstore.format.manifest import ParameterValue
    from modelstore.model import PublishedModel

__all__ = [
    "FIELD_ARRAYS",
    "MAX_GRID",
    "dalitz_grid",
    "field_bytes",
    "grid_axes",
    "polarimetry_field",
    "write_field",
]

FIELD_ARRAYS = ("alpha_x", "alpha_y", "alpha_z", "intensity")
LHCB_AXES = ("m^2_Kpi", "m^2_pK")  # upstream's names: σ1 = m²(K⁻π⁺), σ2 = m²(pK⁻)
GENERIC_AXES = ("sigma1", "sigma2")
MAX_GRID = 2000
FORMATS = ("json", "zarr")


def dalitz_grid(model: PublishedModel, n: int) -> tuple[np.ndarray, np.ndarray]:
    """σ1 and σ2 axes: ``n`` evenly spaced values each over the Dalitz plot's bounding box.

    Raises:
        InvalidInputError: ``n`` outside 2..2000, or the model has no usable masses.
    """
    if not 2 <= int(n) <= MAX_GRID:
        msg = f"the grid must have 2 to {MAX_GRID} points per axis, got {n}"
        raise InvalidInputError(msg)
    (lo1, hi1), (lo2, hi2) = dalitz_limits(*model_masses(model))
    return np.linspace(lo1, hi1, int(n)), np.linspace(lo2, hi2, int(n))


def grid_axes(model: PublishedModel) -> tuple[str, str]:
    """The names of the σ1 and σ2 axes: upstream's for the LHCb catalog, else ``sigma1/2``.

    Never raises.
    """
    return LHCB_AXES if model.manifest.upstream_index is not None else GENERIC_AXES


def polarimetry_field(
    model: PublishedModel, n: int, **parameters: ParameterValue
) -> dict[str, np.ndarray]:
    """α⃗ and the intensity on the N×N grid: the axes (N; :func:`grid_axes`) and N×N arrays.

    ``[i][j]`` is at (σ1 axis ``[j]``, σ2 axis ``[i]``); NaN outside the region.

    Raises:
        InvalidInputError: a bad grid size or parameter override.
        BackendUnavailableError: the version has no polarimetry (before 1.4.0).
    """
    x, y = dalitz_grid(model, n)
    s1, s2 = np.meshgrid(x, y)
    intensity, alpha = model.intensity_and_polarimeter(s1, s2, **parameters)
    first, second = grid_axes(model)
    return {
        first: x,
        second: y,
        "alpha_x": alpha[..., 0],
        "alpha_y": alpha[..., 1],
        "alpha_z": alpha[..., 2],
        "intensity": np.asarray(intensity),
    }


def field_metadata(model: PublishedModel, parameters: dict[str, Any]) -> dict[str, Any]:
    """What the file describes: model, version, manifest digest, conventions; never raises."""
    from modelstore import __version__

    polarimetry = model.manifest.provenance.get("polarimetry")
    subsystem = polarimetry.get("reference_subsystem", 1) if isinstance(polarimetry, dict) else 1
    about = model.manifest.about
    labels = None if about is None else about.axis_labels()
    axes = {} if labels is None else {"axes": dict(zip(grid_axes(model), labels, strict=True))}
    return {
        "model": model.model_id,
        "version": model.version,
        "title": model.title,
        **axes,
        "reference_subsystem": subsystem,
        "intensity": "unnormalised I0",
        "overrides": {k: str(v) for k, v in parameters.items()},
        "producer": f"modelstore {__version__}",
    }


def field_bytes(
    field: dict[str, np.ndarray], fmt: str = "json", metadata: dict[str, Any] | None = None
) -> bytes:
    """The field as upstream's JSON (compact separators) or as a zarr v3 zip.

    Raises:
        InvalidInputError: an unknown format.
    """
    if fmt == "json":
        doc: dict[str, Any] = {} if metadata is None else {"metadata": metadata}
        for key in _keys(field):
            doc[key] = np.asarray(field[key], dtype=np.float64).tolist()
        return json.dumps(doc, separators=(",", ":")).encode()
    if fmt == "zarr":
        return _zarr_zip(field, metadata or {})
    msg = f"format must be one of {', '.join(FORMATS)}, not {fmt!r}"
    raise InvalidInputError(msg)


def _keys(field: dict[str, np.ndarray]) -> list[str]:
    """The two axes (in the field's order), then the arrays."""
    return [*(k for k in field if k not in FIELD_ARRAYS), *FIELD_ARRAYS]


def _zarr_zip(field: dict[str, np.ndarray], metadata: dict[str, Any]) -> bytes:
    import zarr
    from zarr.storage import MemoryStore

    store: dict = {}
    group = zarr.open_group(MemoryStore(store), mode="w", zarr_format=3)
    group.attrs.update({"metadata": metadata})
    for key in _keys(field):
        values = np.asarray(field[key], dtype=np.float64)
        array = group.create_array(key, shape=values.shape, dtype="float64", chunks=values.shape)
        array[...] = values
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name in sorted(store):
            zf.writestr(name, store[name].to_bytes())
    return buffer.getvalue()


def write_field(
    model: PublishedModel,
    path: str | Path,
    n: int,
    fmt: str | None = None,
    *,
    overwrite: bool = False,
    **parameters: ParameterValue,
) -> Path:
    """Compute the field on an N×N grid and write it to ``path``; returns the path.

    ``fmt`` None takes the format from the suffix (``.zarr``/``.zip``: zarr, else JSON). The
    output rule of `modelstore.outputs` applies: an existing file is replaced only with
    ``overwrite``; a FIFO or character device (``/dev/null``) is written into, never replaced;
    a file is written under a temporary name and renamed into place.

    Raises:
        InvalidInputError: a bad grid size, format or parameter override.
        BackendUnavailableError: the version has no polarimetry (before 1.4.0).
        OutputError: the output may not be written there, or writing failed (nothing is left
            behind).
    """
    path = Path(path)
    if fmt is None:
        fmt = "zarr" if path.suffix.lower() in (".zarr", ".zip") else "json"
    if fmt not in FORMATS:
        msg = f"format must be one of {', '.join(FORMATS)}, not {fmt!r}"
        raise InvalidInputError(msg)
    check_output_path(path, overwrite, streams=True)  # before the work
    field = polarimetry_field(model, n, **parameters)
    data = field_bytes(field, fmt, field_metadata(model, dict(parameters)))
    return write_output(path, data, overwrite=overwrite)
