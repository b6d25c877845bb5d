"""Writers of event files: σ1, σ2, the evaluated quantities (and other columns), by chunk.

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
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, ClassVar

import numpy as np

from modelstore._optional import require
from modelstore.errors import EventFileError
from modelstore.events.formats import (
    DEFAULT_CHUNK_SIZE,
    DEFAULT_COLUMNS,
    DEFAULT_TREE,
    Columns,
)
from modelstore.events.locations import (
    EventURL,
    Location,
    detect_location_format,
    open_zarr_store,
    parse_location,
    stage_output,
)
from modelstore.events.staging import PARTIAL_MARK, Staged

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from types import TracebackType
    from typing import Self

__all__ = [
    "CsvWriter",
    "EventWriter",
    "NpzWriter",
    "ParquetWriter",
    "RootWriter",
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
        path: the output's final name (a URL for a zarr store: see `locations`).
        columns: output column names (``columns.outputs``).
        n_events: the number of events that will be written, if known (checked on commit).
        chunk_size: the size of the chunks that will be written (zarr chunking).
        metadata: provenance strings stored where the format allows (zarr, parquet, ROOT).
        overwrite: whether an existing output may be replaced.
        fields: the output columns as ``(name, dtype)`` pairs, in order (default: the three
            ``columns.outputs`` as float64).
        tree: the TTree name of a ROOT output.
    """

    format: ClassVar[str]
    directory: ClassVar[bool] = False
    forbidden: ClassVar[str] = ""  # characters the format does not allow in a column name

    def __init__(
        self,
        path: str | Path | EventURL,
        columns: Columns = DEFAULT_COLUMNS,
        *,
        n_events: int | None = None,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        metadata: Mapping[str, str] | None = None,
        overwrite: bool = False,
        fields: Sequence[tuple[str, Any]] | None = None,
        tree: str = DEFAULT_TREE,
    ) -> None:
        self.columns = columns
        if fields is None:
            fields = [(name, np.float64) for name in columns.outputs]
        self.fields = [(name, np.dtype(dtype)) for name, dtype in fields]
        self.names = tuple(name for name, _ in self.fields)
        if len(set(self.names)) != len(self.names) or not all(self.names):
            msg = f"{path}: output column names must be distinct and non-empty: {self.names}"
            raise EventFileError(msg)
        bad = [n for n in self.names if any(c in n for c in self.forbidden) or n in (".", "..")]
        if bad:
            shown = ", ".join(repr(n) for n in bad)
            msg = (
                f"{path}: {self.format} cannot name a column {shown}"
                " (leave it out with --drop-columns, or choose another output format)"
            )
            raise EventFileError(msg)
        self.tree = tree
        self.n_events = n_events
        self.chunk_size = chunk_size
        self.metadata = dict(metadata or {})
        self.written = 0
        # a URL only for a folder (zarr): stage_output refuses it for the other formats
        location = parse_location(path)
        self._staged = stage_output(location, directory=self.directory, overwrite=overwrite)
        self.path: Location = self._staged.target
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
    def _open(self, staged: Any) -> None:
        """Open the staged output: a Path (an `EventURL` too for zarr)."""

    @abstractmethod
    def _write(self, arrays: tuple[np.ndarray, ...]) -> None: ...

    @abstractmethod
    def _close(self) -> None:
        """Finish the staged output (flush, write footers); called once, before the rename."""

    def _discard(self) -> None:
        """Release resources after a failure (idempotent)."""
        with contextlib.suppress(Exception):
            self._close()

    def write(self, *columns: np.ndarray) -> None:
        """Append one chunk of events: one 1-D array per field, in order, of equal lengths.

        Raises:
            EventFileError: a wrong number of arrays, arrays of different lengths, or the file
                cannot be written.
        """
        if len(columns) != len(self.fields):
            msg = f"{self.path}: {len(columns)} columns given, {len(self.fields)} expected"
            raise EventFileError(msg)
        arrays = tuple(
            np.ascontiguousarray(a, dtype=dtype).reshape(-1)
            for a, (_, dtype) in zip(columns, self.fields, strict=True)
        )
        if len({len(a) for a in arrays}) != 1:
            lengths = [len(a) for a in arrays]
            msg = f"{self.path}: columns of one chunk must have equal lengths, got {lengths}"
            raise EventFileError(msg)
        if self.n_events is not None and self.written + len(arrays[0]) > self.n_events:
            msg = f"{self.path}: more than the announced {self.n_events} events"
            raise EventFileError(msg)
        try:
            self._write(arrays)
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

    def commit(self) -> Location:
        """Complete the output and move it into place; return its path (or URL).

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
    path: str | Path | EventURL,
    columns: Columns,
    n_events: int,
    chunk_size: int,
    metadata: Mapping[str, str] | None = None,
    fields: Sequence[tuple[str, np.dtype]] | None = None,
) -> Any:
    """Create a zarr v3 group at ``path`` (a folder, or a URL) with arrays for the output columns.

    ``fields`` are ``(name, dtype)`` pairs (default: ``columns.outputs`` as float64).

    Returns:
        The zarr group; its arrays have ``n_events`` elements (NaN until written) in chunks
        of ``chunk_size``, compressed with Blosc (LZ4, level 1, byte shuffle).

    Raises:
        OSError: the zarr group cannot be written.
        EventFileError: a URL that cannot be opened.
        MissingExtraError: the URL's scheme needs an extra.
    """
    import zarr
    from zarr.codecs import BloscCodec

    store = open_zarr_store(parse_location(path), writable=True)
    group = zarr.open_group(store, mode="w", zarr_format=3)
    if metadata:
        group.attrs[METADATA_KEY] = dict(metadata)
    if fields is None:
        fields = [(name, np.dtype(np.float64)) for name in columns.outputs]
    for name, dtype in fields:
        group.create_array(
            name,
            shape=(n_events,),
            chunks=(max(1, chunk_size),),
            dtype=dtype,
            fill_value=np.nan if dtype.kind == "f" else 0,
            # byte shuffle then LZ4 at level 1: float64 columns come out a little smaller than
            # with zarr's default (zstd) at twice its speed, so that writing keeps up with the
            # native evaluator (benchmarks/bench_eval_stream.py); any codec is read
            compressors=[BloscCodec(cname="lz4", clevel=1, shuffle="shuffle")],
        )
    return group


class ZarrWriter(EventWriter):
    """A zarr v3 group with one 1-D float64 array per column, chunked like the writes."""

    format = "zarr"
    directory = True
    forbidden = "/"  # a slash would make nested groups

    def _open(self, staged: Location) -> None:
        group = create_zarr_arrays(
            staged, self.columns, self.n_events or 0, self.chunk_size, self.metadata, self.fields
        )
        self._group = group
        self._arrays = [group[name] for name in self.names]
        self._pool = ThreadPoolExecutor(len(self._arrays), thread_name_prefix="modelstore-zarr")

    def _add_metadata(self, extra: dict[str, str]) -> None:
        self._group.attrs[METADATA_KEY] = dict(self.metadata)

    def _write(self, arrays: tuple[np.ndarray, ...]) -> None:
        start, stop = self.written, self.written + len(arrays[0])

        def store(target: Any, values: np.ndarray) -> None:
            if self.n_events is None:
                target.resize((stop,))
            target[start:stop] = values

        # the columns are encoded and stored side by side (zarr and Blosc release the GIL)
        list(self._pool.map(store, self._arrays, arrays))
        size = max(1, self.chunk_size)
        chunks = range(start // size, -(-stop // size))
        staged = self._staged
        if isinstance(staged, Staged):  # a remote store (`RemoteStaged`) has nothing to fsync
            staged.sync_soon(
                staged.path / name / array.metadata.encode_chunk_key((i,))
                for name, array in zip(self.names, self._arrays, strict=True)
                for i in chunks
            )

    def _close(self) -> None:
        self._arrays = []
        self._pool.shutdown()

    def _discard(self) -> None:
        # waits for the stores in progress, so that none writes after the staged folder is gone
        pool = getattr(self, "_pool", None)
        if pool is not None:
            pool.shutdown(cancel_futures=True)
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
            for i in range(len(self.fields))
        ]

    def _write(self, arrays: tuple[np.ndarray, ...]) -> None:
        for spool, values, (_, dtype) in zip(self._spools, arrays, self.fields, strict=True):
            spool.write(values.astype(dtype.newbyteorder("<"), copy=False).tobytes())

    def _close(self) -> None:
        try:
            for spool in self._spools:
                spool.close()
            with zipfile.ZipFile(
                self._staged_zip, "w", compression=zipfile.ZIP_STORED, allowZip64=True
            ) as zf:
                for i, (name, dtype) in enumerate(self.fields):
                    descr = np.lib.format.dtype_to_descr(dtype.newbyteorder("<"))
                    header = {"descr": descr, "fortran_order": False, "shape": (self.written,)}
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
        self._file.write(",".join(self.names) + "\n")

    def _write(self, arrays: tuple[np.ndarray, ...]) -> None:
        pd = require("pandas", "CSV event files")

        frame = pd.DataFrame(dict(zip(self.names, arrays, strict=True)))
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
            [(name, pa.from_numpy_dtype(dtype)) for name, dtype in self.fields], metadata=metadata
        )
        # dictionary encoding only for integer columns: for float columns (no value repeats)
        # pyarrow builds a dictionary per page and drops it, which made writing 8 times slower
        # and the file larger
        integers = [name for name, dtype in self.fields if dtype.kind in "iu"]
        self._writer = pq.ParquetWriter(staged, self._schema, use_dictionary=integers)

    def _add_metadata(self, extra: dict[str, str]) -> None:
        self._writer.add_key_value_metadata({SUMMARY_KEY: json.dumps(extra, sort_keys=True)})

    def _write(self, arrays: tuple[np.ndarray, ...]) -> None:
        pa = require("pyarrow", "Parquet event files")

        self._writer.write_table(pa.Table.from_arrays(list(arrays), schema=self._schema))
        if isinstance(self._staged, Staged):  # always (Parquet is local only)
            self._staged.sync_soon([self._staged.path])

    def _close(self) -> None:
        self._writer.close()


class RootWriter(EventWriter):
    """A ROOT file with one TTree (``tree``) of flat branches, one basket per chunk (uproot).

    The provenance is stored as a JSON ``TObjString`` named ``modelstore`` beside the tree.
    """

    format = "root"
    forbidden = "/"  # a slash would be read as a leaf type ("name/D")

    def _open(self, staged: Path) -> None:
        uproot = require("uproot", "ROOT event files")

        self._file = uproot.recreate(staged)
        self._tree = self._file.mktree(self.tree, dict(self.fields))

    def _write(self, arrays: tuple[np.ndarray, ...]) -> None:
        if len(arrays[0]):
            self._tree.extend(dict(zip(self.names, arrays, strict=True)))

    def _close(self) -> None:
        file = getattr(self, "_file", None)
        if file is None:
            return
        try:
            if self.metadata:
                file[METADATA_KEY] = json.dumps(self.metadata, sort_keys=True)
        finally:
            self._file = None
            file.close()

    def _discard(self) -> None:
        file = getattr(self, "_file", None)
        self._file = None
        if file is not None:
            with contextlib.suppress(Exception):
                file.close()


WRITERS: dict[str, type[EventWriter]] = {
    cls.format: cls for cls in (ZarrWriter, NpzWriter, CsvWriter, ParquetWriter, RootWriter)
}


def open_writer(
    path: str | Path | EventURL,
    format: str | None = None,
    columns: Columns = DEFAULT_COLUMNS,
    **options: Any,
) -> EventWriter:
    """Open an output for writing; the format comes from the file name unless given.

    Args:
        path: the output's final name; or the URL of a zarr store (``s3://...``).
        format: one of `OUTPUT_FORMATS`, or None to tell from the name.
        columns: output column names.
        **options: ``n_events``, ``chunk_size``, ``metadata``, ``overwrite``, ``fields``,
            ``tree`` (see EventWriter).

    Raises:
        EventFileError: unknown format, the output exists and ``overwrite`` is false, or a URL
            of something else than a zarr store.
        MissingExtraError: the URL's scheme needs an extra (``s3://``: ``modelstore[s3]``).
    """
    location = parse_location(path)
    fmt = detect_location_format(location, format, "output")
    return WRITERS[fmt](location, columns, **options)
