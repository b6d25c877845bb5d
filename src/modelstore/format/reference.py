"""Reference values: the intensity at a fixed set of (σ1, σ2) points, stored as a zarr v3 zip.

The zip is written deterministically (sorted members, fixed timestamps), so the same values give
the same bytes and the same digest. It is read from verified bytes in memory, never from a
second read of the file.
"""

from __future__ import annotations

import io
import math
import zipfile
from typing import TYPE_CHECKING

import numpy as np

from modelstore.errors import IntegrityError, ManifestError
from modelstore.format.jsondoc import load_document

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

__all__ = ["dalitz_limits", "read_reference", "reference_points", "write_reference"]

_FIXED_TIME = (1980, 1, 1, 0, 0, 0)
ARRAYS = ("sigma1", "sigma2", "intensity")
# From 1.4.0 on: the polarimeter vector at the same points (upstream's route), all three or none.
POLARIMETRY_ARRAYS = ("alpha_x", "alpha_y", "alpha_z")
MAX_MEMBERS = 64
MAX_UNPACKED = 256 << 20
# A reference holds a few thousand points. What an array declares (shape, chunks) decides what
# zarr allocates and how many chunks it visits, so declarations are checked against these
# budgets before any data is read: a 1 KB zip can otherwise declare 10**13 elements.
MAX_ELEMENTS = 1_000_000
MAX_CHUNKS = 1_024
MAX_NDIM = 4
MAX_METADATA_BYTES = 64 << 10
DATA_TYPES = {"float64": 8, "float32": 4}
# What write_reference uses. Other compressors (gzip, blosc) would inflate a small chunk without
# a bound known in advance; a zstd frame declares its size, which is checked before decoding.
CODECS = frozenset({"bytes", "zstd", "crc32c"})
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


def dalitz_limits(
    m0: float, m1: float, m2: float, m3: float
) -> tuple[tuple[float, float], tuple[float, float]]:
    """Ranges of σ1 = m²(23) and σ2 = m²(31) for the decay 0 → 1 2 3.

    Never raises.
    """
    return ((m2 + m3) ** 2, (m0 - m1) ** 2), ((m3 + m1) ** 2, (m0 - m2) ** 2)


def reference_points(
    m0: float,
    m1: float,
    m2: float,
    m3: float,
    n: int = 24,
    fixed: Sequence[tuple[float, float]] = (),
) -> tuple[np.ndarray, np.ndarray]:
    """The ``fixed`` (σ1, σ2) points, then the cell centres of an n×n grid over the bounding box.

    Points outside the kinematically allowed region are kept: there the intensity is NaN, and the
    reference records where. Cell centres keep every point off the box's edges. (The LHCb
    catalog's versions start with the seed's two points, ``publish.catalog.SEED_POINTS``.)

    Never raises.
    """
    (lo1, hi1), (lo2, hi2) = dalitz_limits(m0, m1, m2, m3)
    centres = (np.arange(n) + 0.5) / n
    s1, s2 = np.meshgrid(lo1 + (hi1 - lo1) * centres, lo2 + (hi2 - lo2) * centres, indexing="ij")
    sigma1 = np.concatenate([[float(p[0]) for p in fixed], s1.ravel()])
    sigma2 = np.concatenate([[float(p[1]) for p in fixed], s2.ravel()])
    return sigma1, sigma2


def write_reference(arrays: Mapping[str, np.ndarray], attributes: Mapping[str, object]) -> bytes:
    """Return the bytes of a zarr v3 zip with the given 1-D float64 arrays and group attributes.

    Never raises.
    """
    import zarr
    from zarr.storage import MemoryStore

    store_dict: dict = {}
    group = zarr.open_group(MemoryStore(store_dict), mode="w", zarr_format=3)
    group.attrs.update(dict(attributes))  # type: ignore[arg-type]
    names = ARRAYS + (POLARIMETRY_ARRAYS if POLARIMETRY_ARRAYS[0] in arrays else ())
    for name in names:
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


def _positive_ints(value: object, *, minimum: int) -> list[int] | None:
    if not isinstance(value, list) or not all(type(v) is int and v >= minimum for v in value):
        return None
    return value


def zstd_content_size(frame: bytes) -> int | None:
    """The content size a zstd frame header declares, or None if it declares none."""
    if len(frame) < 6 or frame[:4] != _ZSTD_MAGIC:
        return None
    descriptor = frame[4]
    fcs_flag, single_segment, dict_flag = descriptor >> 6, (descriptor >> 5) & 1, descriptor & 3
    offset = 5 + (0 if single_segment else 1) + (0, 1, 2, 4)[dict_flag]
    width = (1 if single_segment else 0, 2, 4, 8)[fcs_flag]
    if width == 0 or len(frame) < offset + width:
        return None
    size = int.from_bytes(frame[offset : offset + width], "little")
    return size + 256 if width == 2 else size


def check_chunk(member: str, data: bytes, meta: dict, name: str) -> None:
    """Refuse a chunk whose (declared) decoded size exceeds what its array's chunk may hold."""
    limit = (
        math.prod(meta["chunk_grid"]["configuration"]["chunk_shape"])
        * DATA_TYPES[meta["data_type"]]
    )
    if any(c.get("name") == "zstd" for c in meta["codecs"]):
        declared = zstd_content_size(data)
        if declared is None or declared > limit:
            msg = (
                f"{name}: chunk {member!r} declares {declared if declared is not None else 'no'}"
                f" decoded size; its array's chunks hold {limit} bytes"
            )
            raise IntegrityError(msg)
    elif len(data) > limit + 64:
        msg = (
            f"{name}: chunk {member!r} of {len(data)} bytes; its array's chunks hold {limit} bytes"
        )
        raise IntegrityError(msg)


def check_array_metadata(member: str, raw: object, name: str) -> None:
    """Refuse an array declaration whose shape, type, chunks or codecs exceed the budgets."""
    array = member.rpartition("/zarr.json")[0] or "(root)"
    where = f"{name}: array {array!r}"
    if not isinstance(raw, dict):
        raise IntegrityError(f"{where}: metadata is not a JSON object")
    if raw.get("node_type") != "array":
        return
    shape = _positive_ints(raw.get("shape"), minimum=0)
    if shape is None or not 1 <= len(shape) <= MAX_NDIM:
        raise IntegrityError(f"{where}: malformed shape {raw.get('shape')!r}")
    elements = math.prod(shape)
    if elements > MAX_ELEMENTS:
        raise IntegrityError(
            f"{where}: declares {elements} elements; a reference has at most {MAX_ELEMENTS}"
        )
    if raw.get("data_type") not in DATA_TYPES:
        raise IntegrityError(
            f"{where}: data type {raw.get('data_type')!r} is not one of {sorted(DATA_TYPES)}"
        )
    grid = raw.get("chunk_grid")
    config = grid.get("configuration") if isinstance(grid, dict) else None
    chunk_shape = _positive_ints(
        config.get("chunk_shape") if isinstance(config, dict) else None, minimum=1
    )
    if (
        not isinstance(grid, dict)
        or grid.get("name") != "regular"
        or chunk_shape is None
        or len(chunk_shape) != len(shape)
    ):
        raise IntegrityError(f"{where}: only a regular chunk grid matching the shape is read")
    chunks = math.prod(-(-s // c) for s, c in zip(shape, chunk_shape, strict=False))
    if chunks > MAX_CHUNKS:
        raise IntegrityError(
            f"{where}: declares {chunks} chunks; a reference has at most {MAX_CHUNKS}"
        )
    if math.prod(chunk_shape) > MAX_ELEMENTS:
        raise IntegrityError(
            f"{where}: chunks of {math.prod(chunk_shape)} elements; at most {MAX_ELEMENTS}"
        )
    codecs = raw.get("codecs")
    if not isinstance(codecs, list) or not all(
        isinstance(c, dict) and c.get("name") in CODECS for c in codecs
    ):
        raise IntegrityError(f"{where}: codecs other than {sorted(CODECS)} are not read")
    encoding = raw.get("chunk_key_encoding", {"name": "default"})
    if not isinstance(encoding, dict) or encoding.get("name") != "default":
        raise IntegrityError(f"{where}: only the default chunk key encoding is read")


def read_reference(data: bytes, name: str = "reference values") -> dict[str, np.ndarray]:
    """Read arrays written by `write_reference` from (already verified) bytes.

    Raises:
        IntegrityError: not a readable reference file, or arrays beyond the budget, or missing.
    """
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
            contents = {i.filename: zf.read(i) for i in infos}
        arrays_meta: dict[str, dict] = {}
        for member, raw_bytes in contents.items():
            if member == "zarr.json" or member.endswith("/zarr.json"):
                try:
                    raw = load_document(
                        raw_bytes,
                        f"{name}: {member}",
                        max_bytes=MAX_METADATA_BYTES,
                        what="zarr metadata",
                    )
                except ManifestError as exc:
                    raise IntegrityError(str(exc)) from None
                check_array_metadata(member, raw, name)
                if raw.get("node_type") == "array":
                    arrays_meta[member.rpartition("zarr.json")[0]] = raw
        for member, raw_bytes in contents.items():
            prefix = next(
                (p for p in arrays_meta if member.startswith(p) and member != f"{p}zarr.json"), None
            )
            if prefix is not None:
                check_chunk(member, raw_bytes, arrays_meta[prefix], name)
        members = {key: buffer_cls.from_bytes(value) for key, value in contents.items()}
        # Only the per-array metadata checked above is used, never a consolidated copy.
        group = zarr.open_group(
            MemoryStore(members, read_only=True), mode="r", zarr_format=3, use_consolidated=False
        )
        present = [key for key in POLARIMETRY_ARRAYS if f"{key}/zarr.json" in contents]
        if present and len(present) != len(POLARIMETRY_ARRAYS):
            msg = f"{name}: holds {present}; the polarimeter needs all of {POLARIMETRY_ARRAYS}"
            raise IntegrityError(msg)
        arrays = {
            key: np.asarray(group[key][:], dtype=np.float64)  # type: ignore[index]
            for key in ARRAYS + tuple(present)
        }
    except IntegrityError:
        raise
    except (
        zipfile.BadZipFile,
        LookupError,
        ValueError,
        OSError,
        TypeError,
        MemoryError,
        RuntimeError,
        NotImplementedError,
        AttributeError,
        EOFError,
    ) as exc:  # zarr, numcodecs
        msg = f"{name}: not a readable zarr reference file ({type(exc).__name__}: {exc})"
        raise IntegrityError(msg) from None
    lengths = {a.shape for a in arrays.values()}
    if len(lengths) != 1 or len(next(iter(lengths))) != 1:
        msg = f"{name}: arrays {tuple(arrays)} must be 1-D and of equal length"
        raise IntegrityError(msg)
    return arrays
