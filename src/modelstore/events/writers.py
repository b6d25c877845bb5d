"""Writers of event files: σ1, σ2 and the intensity, appended chunk by chunk.

A writer writes into a temporary file or folder next to the target (see `staging`) and
renames it into place in `commit`; used as a context manager it commits on success and
deletes the partial output on any exception, KeyboardInterrupt included.
"""

from __future__ import annotations

import bz2
import contextlib
import gzip
import json
import lzma
import shutil
import tempfile
import zipfile
from abc import ABC, abstractmethod
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, ClassVar

import numpy as np

from modelstore._optional import require
from modelstore.errors import EventFileError
from modelstore.events.formats import DEFAULT_CHUNK_SIZE, DEFAULT_COLUMNS, Columns, detect_format
from modelstore.events.staging import PARTIAL_MARK, Staged

if TYPE_CHECKING:
    from collections.abc import Mapping
    from types import TracebackType
    from typing import Self

__all__ = [
    "CsvWriter",
    "EventWriter",
    "NpzWriter",
    "ParquetWriter",
    "ZarrWriter",
    "create_zarr_arrays",
    "open_writer",
]

METADATA_KEY = "modelstore"
SUMMARY_KEY = "modelstore_summary"
_COPY_BLOCK = 16 << 20


class EventWriter(ABC):
    """Writes σ1, σ2 and intensity columns to one output, chunk by chunk.

    Args:
        path: the output's final name.
        columns: output column names (``columns.outputs``).
        n_events: the number of events that will be written, if known (checked on commit).
        chunk_size: the size of the chunks that will be written (zarr chunking).
        metadata: provenance strings stored where the format allows (zarr, parquet).
        overwrite: whether an existing output may be replaced.
    """

    format: ClassVar[str]
    directory: ClassVar[bool] = False

    def __init__(
        self,
        path: str | Path,
        columns: Columns = DEFAULT_COLUMNS,
        *,
        n_events: int | None = None,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        metadata: Mapping[str, str] | None = None,
        overwrite: bool = False,
    ) -> None:
        self.columns = columns
        self.n_events = n_events
        self.chunk_size = chunk_size
        self.metadata = dict(metadata or {})
        self.written = 0
        self._staged = Staged(path, directory=self.directory, overwrite=overwrite)
        self.path = self._staged.target
        try:
            self._open(self._staged.path)
        except BaseException:
            self._staged.abort()
            raise

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.abort()

    @abstractmethod
    def _open(self, staged: Path) -> None: ...

    @abstractmethod
    def _write(self, arrays: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None: ...

    @abstractmethod
    def _close(self) -> None:
        """Finish the staged output (flush, write footers); called once, before the rename."""

    def _discard(self) -> None:
        """Release resources after a failure (idempotent)."""
        with contextlib.suppress(Exception):
            self._close()

    def write(self, sigma1: np.ndarray, sigma2: np.ndarray, intensity: np.ndarray) -> None:
        """Append one chunk of events (1-D arrays of equal length).

        Raises:
            EventFileError: arrays of different lengths, or the file cannot be written.
        """
        arrays = tuple(
            np.ascontiguousarray(a, dtype=np.float64).reshape(-1)
            for a in (sigma1, sigma2, intensity)
        )
        if len({len(a) for a in arrays}) != 1:
            lengths = [len(a) for a in arrays]
            msg = f"{self.path}: columns of one chunk must have equal lengths, got {lengths}"
            raise EventFileError(msg)
        if self.n_events is not None and self.written + len(arrays[0]) > self.n_events:
            msg = f"{self.path}: more than the announced {self.n_events} events"
            raise EventFileError(msg)
        try:
            self._write(arrays)  # type: ignore[arg-type]
        except OSError as exc:
            msg = f"{self.path}: cannot write ({exc.strerror or exc})"
            raise EventFileError(msg) from None
        self.written += len(arrays[0])

    def add_metadata(self, extra: Mapping[str, str]) -> None:
        """Record more provenance strings before `commit` (counts known only at the end).

        zarr stores them in the group attribute ``modelstore``; parquet in the file's key-value
        metadata under ``modelstore_summary`` (its schema metadata is fixed when opened).

        Never raises.
        """
        self.metadata.update(extra)
        self._add_metadata(dict(extra))

    def _add_metadata(self, extra: dict[str, str]) -> None:  # noqa: B027 (optional hook)
        """Store ``extra`` where the format allows after opening (default: nowhere)."""

    def commit(self) -> Path:
        """Complete the output and move it into place; return its path.

        Raises:
            EventFileError: the output cannot be completed or moved into place.
        """
        try:
            if self.n_events is not None and self.written != self.n_events:
                msg = f"{self.path}: {self.written} events written, {self.n_events} announced"
                raise EventFileError(msg)
            self._close()
            return self._staged.commit()
        except BaseException:
            self.abort()
            raise

    def abort(self) -> None:
        """Delete everything written so far; the target is left as it was.

        Never raises.
        """
        self._discard()
        self._staged.abort()


def create_zarr_arrays(
    path: str | Path,
    columns: Columns,
    n_events: int,
    chunk_size: int,
    metadata: Mapping[str, str] | None = None,
) -> Any:
    """Create a zarr v3 group at ``path`` with float64 arrays for the output columns.

    Returns:
        The zarr group; its arrays have ``n_events`` elements (NaN until written) in chunks
        of ``chunk_size``.

    Raises:
        OSError: the zarr group cannot be written.
    """
    import zarr

    group = zarr.open_group(str(path), mode="w", zarr_format=3)
    if metadata:
        group.attrs[METADATA_KEY] = dict(metadata)
    for name in columns.outputs:
        group.create_array(
            name,
            shape=(n_events,),
            chunks=(max(1, chunk_size),),
            dtype="float64",
            fill_value=np.nan,
        )
    return group


class ZarrWriter(EventWriter):
    """A zarr v3 group with one 1-D float64 array per column, chunked like the writes."""

    format = "zarr"
    directory = True

    def _open(self, staged: Path) -> None:
        group = create_zarr_arrays(
            staged, self.columns, self.n_events or 0, self.chunk_size, self.metadata
        )
        self._group = group
        self._arrays = [group[name] for name in self.columns.outputs]

    def _add_metadata(self, extra: dict[str, str]) -> None:
        self._group.attrs[METADATA_KEY] = dict(self.metadata)

    def _write(self, arrays: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
        start, stop = self.written, self.written + len(arrays[0])
        for target, values in zip(self._arrays, arrays, strict=False):
            if self.n_events is None:
                target.resize((stop,))
            target[start:stop] = values

    def _close(self) -> None:
        self._arrays = []


class NpzWriter(EventWriter):
    """An uncompressed ``.npz`` archive as `numpy.savez` writes it.

    The archive's headers need the number of events, so the columns are first spooled to
    temporary files beside the target and copied into the archive on commit.
    """

    format = "npz"

    def _open(self, staged: Path) -> None:
        self._spool_dir = Path(
            tempfile.mkdtemp(prefix=f".{self.path.name}{PARTIAL_MARK}", dir=staged.parent)
        )
        self._staged_zip = staged
        self._spools: list[IO[bytes]] = [
            open(self._spool_dir / f"{i}.raw", "wb")  # noqa: SIM115 (closed in _close)
            for i in range(3)
        ]

    def _write(self, arrays: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
        for spool, values in zip(self._spools, arrays, strict=False):
            spool.write(values.astype("<f8", copy=False).tobytes())

    def _close(self) -> None:
        try:
            for spool in self._spools:
                spool.close()
            header = {"descr": "<f8", "fortran_order": False, "shape": (self.written,)}
            with zipfile.ZipFile(
                self._staged_zip, "w", compression=zipfile.ZIP_STORED, allowZip64=True
            ) as zf:
                for i, name in enumerate(self.columns.outputs):
                    with zf.open(f"{name}.npy", "w", force_zip64=True) as member:
                        np.lib.format.write_array_header_1_0(member, header)
                        with open(self._spool_dir / f"{i}.raw", "rb") as spool:
                            shutil.copyfileobj(spool, member, _COPY_BLOCK)
        finally:
            self._discard()

    def _discard(self) -> None:
        for spool in getattr(self, "_spools", []):
            spool.close()
        if hasattr(self, "_spool_dir"):
            shutil.rmtree(self._spool_dir, ignore_errors=True)


def _open_text(path: Path, name: str) -> IO[str]:
    """Open ``path`` for writing text, compressed as the suffix of ``name`` asks."""
    lower = name.lower()
    if lower.endswith(".gz"):
        return gzip.open(path, "wt", encoding="utf-8", newline="")
    if lower.endswith(".bz2"):
        return bz2.open(path, "wt", encoding="utf-8", newline="")
    if lower.endswith(".xz"):
        return lzma.open(path, "wt", encoding="utf-8", newline="")
    return open(path, "w", encoding="utf-8", newline="")


class CsvWriter(EventWriter):
    """A CSV file with a header line; floats in their shortest exact form, NaN as ``NaN``.

    A target named ``*.csv.gz``, ``*.csv.bz2`` or ``*.csv.xz`` is compressed accordingly.
    """

    format = "csv"

    def _open(self, staged: Path) -> None:
        self._file = _open_text(staged, self.path.name)
        self._file.write(",".join(self.columns.outputs) + "\n")

    def _write(self, arrays: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
        pd = require("pandas", "CSV event files")

        frame = pd.DataFrame(dict(zip(self.columns.outputs, arrays, strict=False)))
        frame.to_csv(self._file, header=False, index=False, na_rep="NaN", lineterminator="\n")

    def _close(self) -> None:
        self._file.close()


class ParquetWriter(EventWriter):
    """A Parquet file with one row group per chunk; metadata in the schema."""

    format = "parquet"

    def _open(self, staged: Path) -> None:
        pa = require("pyarrow", "Parquet event files")
        pq = require("pyarrow.parquet", "Parquet event files")

        metadata = (
            {METADATA_KEY: json.dumps(self.metadata, sort_keys=True)} if self.metadata else None
        )
        self._schema = pa.schema(
            [(name, pa.float64()) for name in self.columns.outputs], metadata=metadata
        )
        self._writer = pq.ParquetWriter(staged, self._schema)

    def _add_metadata(self, extra: dict[str, str]) -> None:
        self._writer.add_key_value_metadata({SUMMARY_KEY: json.dumps(extra, sort_keys=True)})

    def _write(self, arrays: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
        pa = require("pyarrow", "Parquet event files")

        self._writer.write_table(pa.Table.from_arrays(list(arrays), schema=self._schema))

    def _close(self) -> None:
        self._writer.close()


WRITERS: dict[str, type[EventWriter]] = {
    cls.format: cls for cls in (ZarrWriter, NpzWriter, CsvWriter, ParquetWriter)
}


def open_writer(
    path: str | Path,
    format: str | None = None,
    columns: Columns = DEFAULT_COLUMNS,
    **options: Any,
) -> EventWriter:
    """Open an output for writing; the format comes from the file name unless given.

    Args:
        path: the output's final name.
        format: one of `OUTPUT_FORMATS`, or None to tell from the name.
        columns: output column names.
        **options: ``n_events``, ``chunk_size``, ``metadata``, ``overwrite`` (see EventWriter).

    Raises:
        EventFileError: unknown format, or the output exists and ``overwrite`` is false.
    """
    fmt = detect_format(path, format, "output")
    return WRITERS[fmt](path, columns, **options)
