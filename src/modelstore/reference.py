"""Reference values: the intensity at a fixed set of (σ1, σ2) points, stored as a zarr v3 zip.

The zip is written deterministically (sorted members, fixed timestamps), so the same values give
the same bytes and the same digest. It is read from verified bytes in memory, never from a
second read of the file.
"""

from __future__ import annotations

import io
import zipfile
from typing import TYPE_CHECKING

import numpy as np

from modelstore.errors import IntegrityError

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["dalitz_limits", "read_reference", "reference_points", "write_reference"]

_FIXED_TIME = (1980, 1, 1, 0, 0, 0)
ARRAYS = ("sigma1", "sigma2", "intensity")
MAX_MEMBERS = 64
MAX_UNPACKED = 256 << 20


def dalitz_limits(m0: float, m1: float, m2: float, m3: float) -> tuple[tuple[float, float], tuple[float, float]]:
    """Ranges of σ1 = m²(23) and σ2 = m²(31) for the decay 0 → 1 2 3."""
    return ((m2 + m3) ** 2, (m0 - m1) ** 2), ((m3 + m1) ** 2, (m0 - m2) ** 2)


def reference_points(m0: float, m1: float, m2: float, m3: float, n: int = 24) -> tuple[np.ndarray, np.ndarray]:
    """Cell centres of an n×n grid over the Dalitz plot's bounding box, plus two fixed points.

    Points outside the kinematically allowed region are kept: there the intensity is NaN, and the
    reference records where. Cell centres keep every point off the box's edges.
    """
    (lo1, hi1), (lo2, hi2) = dalitz_limits(m0, m1, m2, m3)
    centres = (np.arange(n) + 0.5) / n
    s1, s2 = np.meshgrid(lo1 + (hi1 - lo1) * centres, lo2 + (hi2 - lo2) * centres, indexing="ij")
    sigma1 = np.concatenate([[1.0, 1.1], s1.ravel()])
    sigma2 = np.concatenate([[3.0, 3.2], s2.ravel()])
    return sigma1, sigma2


def write_reference(arrays: Mapping[str, np.ndarray], attributes: Mapping[str, object]) -> bytes:
    """Return the bytes of a zarr v3 zip with the given 1-D float64 arrays and group attributes."""
    import zarr
    from zarr.storage import MemoryStore

    store_dict: dict = {}
    group = zarr.open_group(MemoryStore(store_dict), mode="w", zarr_format=3)
    group.attrs.update(dict(attributes))
    for name in ARRAYS:
        values = np.asarray(arrays[name], dtype=np.float64)
        array = group.create_array(name, shape=values.shape, dtype="float64", chunks=values.shape)
        array[:] = values
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for key in sorted(store_dict):
            info = zipfile.ZipInfo(key, date_time=_FIXED_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, store_dict[key].to_bytes())
    return buffer.getvalue()


def read_reference(data: bytes, name: str = "reference values") -> dict[str, np.ndarray]:
    """Read arrays written by `write_reference` from (already verified) bytes."""
    import zarr
    from zarr.core.buffer import default_buffer_prototype
    from zarr.storage import MemoryStore

    buffer_cls = default_buffer_prototype().buffer
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            infos = zf.infolist()
            if len(infos) > MAX_MEMBERS or sum(i.file_size for i in infos) > MAX_UNPACKED:
                msg = f"{name}: the zip holds more than a reference file may"
                raise IntegrityError(msg)
            members = {i.filename: buffer_cls.from_bytes(zf.read(i)) for i in infos}
        group = zarr.open_group(MemoryStore(members, read_only=True), mode="r", zarr_format=3)
        arrays = {key: np.asarray(group[key][:], dtype=np.float64) for key in ARRAYS}
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as exc:
        msg = f"{name}: not a readable zarr reference file ({type(exc).__name__}: {exc})"
        raise IntegrityError(msg) from None
    lengths = {a.shape for a in arrays.values()}
    if len(lengths) != 1 or len(next(iter(lengths))) != 1:
        msg = f"{name}: arrays {ARRAYS} must be 1-D and of equal length"
        raise IntegrityError(msg)
    return arrays
