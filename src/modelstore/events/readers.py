"""Readers of event files: σ1 and σ2 in chunks of bounded size, whatever the file's size.

Each format has one reader class; `open_reader` picks it. A reader checks what it can when it
is opened (the file is readable, the columns exist, hold real numbers and have equal lengths),
so that a bad input fails before any work is done, and checks each chunk as it is read.
Every problem becomes an EventFileError whose message names the file and the problem.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import numpy as np

from modelstore._optional import require
from modelstore.errors import EventFileError
from modelstore.events.formats import DEFAULT_COLUMNS, Columns, detect_format
from modelstore.events.reader_base import (
    Chunk,
    EventReader,
    _check_dtype,
    _describe,
    _missing,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = [
    "CsvReader",
    "EventReader",
    "NpyReader",
    "NpzReader",
    "ParquetReader",
    "RootReader",
    "ZarrReader",
    "open_reader",
]


class RootReader(EventReader):
    """A TTree or RNTuple of a ROOT file, read with uproot (flat numeric branches only)."""

    format = "root"
    label = "ROOT"
    _KINDS = ("TTree", "ROOT::RNTuple")

    def _open(self) -> None:
        uproot = require("uproot", "ROOT event files")

        self._file = uproot.open(self.path)
        tree_name = self.columns.tree
        trees = [
            key.split(";")[0] for key, cls in self._file.classnames().items() if cls in self._KINDS
        ]
        if tree_name not in trees:
            raise _missing(self.path, "tree", tree_name, trees)
        self._tree = self._file[tree_name]
        branches = list(self._tree.keys())
        for name in (self.columns.sigma1, self.columns.sigma2):
            if name not in branches:
                raise _missing(self.path, f"branch in tree {tree_name!r} named", name, branches)
            where = f"{self.path}: branch {name!r} of tree {tree_name!r}"
            dtype = self._branch_dtype(self._tree[name])
            if dtype is None or dtype.shape:
                msg = f"{where} is not a flat branch of one number per event"
                raise EventFileError(msg)
            _check_dtype(dtype, where)
        self.n_events = int(self._tree.num_entries)

    @staticmethod
    def _branch_dtype(branch: Any) -> np.dtype | None:
        """The NumPy type of a flat branch (TTree) or field (RNTuple); None if it is not flat."""
        uproot = require("uproot", "ROOT event files")

        interpretation = getattr(branch, "interpretation", None)
        if interpretation is not None:  # TTree
            if isinstance(interpretation, uproot.interpretation.numerical.AsDtype):
                return interpretation.to_dtype
            return None
        ak = require("awkward", "ROOT event files")

        form = branch.to_akform()[0].contents[0]  # RNTuple: a record of the one field
        if isinstance(form, ak.forms.NumpyForm) and not form.inner_shape and not form.parameters:
            return np.dtype(ak.types.numpytype.primitive_to_dtype(form.primitive))
        return None

    def _chunks(self, chunk_size: int) -> Iterator[Chunk]:
        names = [self.columns.sigma1, self.columns.sigma2]
        for batch in self._tree.iterate(names, step_size=chunk_size, library="np"):
            yield batch[names[0]], batch[names[1]]

    def close(self) -> None:
        file = getattr(self, "_file", None)
        if file is not None:
            file.close()
            self._file = None


class ZarrReader(EventReader):
    """A zarr group (v2 or v3) with one 1-D array per column."""

    format = "zarr"
    label = "zarr"

    def _open(self) -> None:
        import zarr

        group = zarr.open_group(str(self.path), mode="r")
        found = dict(group.arrays())
        members = list(found)
        self._arrays = []
        for name in (self.columns.sigma1, self.columns.sigma2):
            if name not in members:
                raise _missing(self.path, "array", name, members)
            array = found[name]
            where = f"{self.path}: array {name!r}"
            if array.ndim != 1:
                msg = f"{where} has shape {array.shape}; expected one number per event (1-D)"
                raise EventFileError(msg)
            _check_dtype(array.dtype, where)
            self._arrays.append(array)
        self._check_lengths([a.shape[0] for a in self._arrays])

    @property
    def arrays(self) -> list[Any]:
        """The zarr arrays of σ1 and σ2 (for readers that slice them elsewhere)."""
        return self._arrays

    def _chunks(self, chunk_size: int) -> Iterator[Chunk]:
        a1, a2 = self._arrays
        assert self.n_events is not None  # noqa: S101 (narrows the type)
        for start in range(0, self.n_events, chunk_size):
            stop = min(start + chunk_size, self.n_events)
            yield np.asarray(a1[start:stop]), np.asarray(a2[start:stop])


class NpyReader(EventReader):
    """A ``.npy`` array, memory-mapped: a structured array with named fields, or shape (N, 2).

    A plain 2-D array holds σ1 in column 0 and σ2 in column 1; column names do not apply.
    """

    format = "npy"
    label = ".npy"

    def _open(self) -> None:
        array = np.load(self.path, mmap_mode="r", allow_pickle=False)
        if array.dtype.names is not None:
            for name in (self.columns.sigma1, self.columns.sigma2):
                if name not in array.dtype.names:
                    raise _missing(self.path, "field", name, array.dtype.names)
                _check_dtype(array.dtype[name], f"{self.path}: field {name!r}")
            if array.ndim != 1:
                msg = f"{self.path}: a structured array must be 1-D, got shape {array.shape}"
                raise EventFileError(msg)
            self._columns = (array[self.columns.sigma1], array[self.columns.sigma2])
        else:
            if array.ndim != 2 or array.shape[1] != 2:
                msg = (
                    f"{self.path}: expected a structured array or shape (N, 2) with σ1 and σ2"
                    f" as columns, got shape {array.shape}"
                )
                raise EventFileError(msg)
            _check_dtype(array.dtype, f"{self.path}: the array")
            self._columns = (array[:, 0], array[:, 1])
        self.n_events = len(self._columns[0])

    def _chunks(self, chunk_size: int) -> Iterator[Chunk]:
        c1, c2 = self._columns
        assert self.n_events is not None  # noqa: S101 (narrows the type)
        for start in range(0, self.n_events, chunk_size):
            stop = min(start + chunk_size, self.n_events)
            yield np.array(c1[start:stop]), np.array(c2[start:stop])

    def close(self) -> None:
        self._columns = ()  # type: ignore[assignment]


class NpzReader(EventReader):
    """An ``.npz`` archive with one 1-D array per column, streamed from the zip members."""

    format = "npz"
    label = ".npz"

    def _open(self) -> None:
        self._zip = zipfile.ZipFile(self.path)
        members = [n[: -len(".npy")] for n in self._zip.namelist() if n.endswith(".npy")]
        self._headers: list[tuple[str, np.dtype]] = []
        lengths = []
        for name in (self.columns.sigma1, self.columns.sigma2):
            if name not in members:
                raise _missing(self.path, "array", name, members)
            with self._zip.open(f"{name}.npy") as member:
                shape, dtype = self._read_header(member, name)
            lengths.append(shape[0])
            self._headers.append((name, dtype))
        self._check_lengths(lengths)

    def _read_header(self, member: Any, name: str) -> tuple[tuple[int, ...], np.dtype]:
        where = f"{self.path}: array {name!r}"
        version = np.lib.format.read_magic(member)
        if version == (1, 0):
            shape, _, dtype = np.lib.format.read_array_header_1_0(member)
        elif version == (2, 0):
            shape, _, dtype = np.lib.format.read_array_header_2_0(member)
        else:
            msg = f"{where}: .npy format version {version} is not supported (1.0 and 2.0 are)"
            raise EventFileError(msg)
        if len(shape) != 1:
            msg = f"{where} has shape {shape}; expected one number per event (1-D)"
            raise EventFileError(msg)
        _check_dtype(dtype, where)
        return shape, dtype

    def _chunks(self, chunk_size: int) -> Iterator[Chunk]:
        streams = []
        try:
            for name, dtype in self._headers:
                member = self._zip.open(f"{name}.npy")
                streams.append((member, dtype))
                self._read_header(member, name)
            assert self.n_events is not None  # noqa: S101 (narrows the type)
            for start in range(0, self.n_events, chunk_size):
                count = min(chunk_size, self.n_events - start)
                yield tuple(self._read_values(member, dtype, count) for member, dtype in streams)  # type: ignore[misc]
        finally:
            for member, _ in streams:
                member.close()

    def _read_values(self, member: Any, dtype: np.dtype, count: int) -> np.ndarray:
        data = member.read(count * dtype.itemsize)
        if len(data) != count * dtype.itemsize:
            msg = f"{self.path}: an array ends early (truncated file?)"
            raise EventFileError(msg)
        return np.frombuffer(data, dtype=dtype)

    def close(self) -> None:
        archive = getattr(self, "_zip", None)
        if archive is not None:
            archive.close()
            self._zip = None  # type: ignore[assignment]


# Bounds on what a CSV file may make the reader hold: a header longer than this, or with more
# columns, is refused before anything else is read (a 12 MB header of 10^6 columns used to
# take a minute and gigabytes); a data line longer than a block is refused too.
CSV_MAX_HEADER_BYTES = 1 << 16
CSV_MAX_COLUMNS = 1000
CSV_BLOCK_BYTES = 1 << 20


def _open_binary(path: Path) -> IO[bytes]:
    """``path`` opened for reading bytes, decompressed as its suffix says (.gz, .bz2, .xz)."""
    lower = path.name.lower()
    if lower.endswith(".gz"):
        import gzip

        return gzip.open(path, "rb")  # type: ignore[return-value]
    if lower.endswith(".bz2"):
        import bz2

        return bz2.open(path, "rb")
    if lower.endswith(".xz"):
        import lzma

        return lzma.open(path, "rb")
    return open(path, "rb")


class CsvReader(EventReader):
    """A CSV file with a header line; ``NaN`` means not-a-number, an empty field is an error.

    The header is read with bounded memory (at most `CSV_MAX_HEADER_BYTES` bytes and
    `CSV_MAX_COLUMNS` columns); duplicate column names, and rows with more or fewer fields
    than the header, are refused with the column name or line number. The data are parsed
    block by block with pyarrow (blocks of `CSV_BLOCK_BYTES`), keeping only σ1 and σ2.
    """

    format = "csv"
    label = "CSV"

    def _open(self) -> None:
        self.header = self._read_header()
        for name in (self.columns.sigma1, self.columns.sigma2):
            if name not in self.header:
                raise _missing(self.path, "column", name, self.header)

    def _read_header(self) -> list[str]:
        import csv

        with _open_binary(self.path) as f:
            line = f.readline(CSV_MAX_HEADER_BYTES + 1)
        if len(line) > CSV_MAX_HEADER_BYTES:
            msg = (
                f"{self.path}: the header line is longer than {CSV_MAX_HEADER_BYTES} bytes;"
                f" at most {CSV_MAX_COLUMNS} columns are read"
            )
            raise EventFileError(msg)
        try:
            text = line.decode("utf-8-sig").rstrip("\r\n")
        except UnicodeDecodeError:
            msg = f"{self.path}: the header line is not UTF-8 text"
            raise EventFileError(msg) from None
        if not text:
            msg = f"{self.path}: no header line (the first line must name the columns)"
            raise EventFileError(msg)
        try:
            rows = list(csv.reader([text], strict=True))
        except csv.Error as exc:
            msg = f"{self.path}: line 1: cannot parse the header ({exc})"
            raise EventFileError(msg) from None
        names = rows[0] if len(rows) == 1 else []
        if len(rows) != 1 or any("\n" in n or "\r" in n for n in names):
            msg = f"{self.path}: line 1: the header must be one line"
            raise EventFileError(msg)
        if len(names) > CSV_MAX_COLUMNS:
            msg = (
                f"{self.path}: {len(names)} columns in the header;"
                f" at most {CSV_MAX_COLUMNS} are read"
            )
            raise EventFileError(msg)
        seen: set[str] = set()
        for name in names:
            if name in seen:
                msg = f"{self.path}: line 1: column {name!r} appears more than once in the header"
                raise EventFileError(msg)
            seen.add(name)
        return names

    def _chunks(self, chunk_size: int) -> Iterator[Chunk]:
        pa = require("pyarrow", "CSV event files")
        pa_csv = require("pyarrow.csv", "CSV event files")

        names = [self.columns.sigma1, self.columns.sigma2]
        bad_rows: list[Any] = []

        def invalid_row(row: Any) -> str:
            bad_rows.append(row)
            return "error"

        read_options = pa_csv.ReadOptions(block_size=CSV_BLOCK_BYTES, use_threads=False)
        parse_options = pa_csv.ParseOptions(invalid_row_handler=invalid_row)
        convert_options = pa_csv.ConvertOptions(
            include_columns=names,
            column_types=dict.fromkeys(names, pa.string()),
            null_values=[],
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
        )
        pending: list[tuple[np.ndarray, np.ndarray]] = []
        held = 0
        rows = 0
        with _open_binary(self.path) as f:
            try:
                reader = pa_csv.open_csv(
                    f,
                    read_options=read_options,
                    parse_options=parse_options,
                    convert_options=convert_options,
                )
                for batch in reader:
                    pair = tuple(self._numbers(batch.column(name), name, rows) for name in names)
                    rows += batch.num_rows
                    pending.append(pair)  # type: ignore[arg-type]
                    held += batch.num_rows
                    if held >= chunk_size:
                        s1, s2 = _joined(pending)
                        start = 0
                        while held - start >= chunk_size:
                            yield s1[start : start + chunk_size], s2[start : start + chunk_size]
                            start += chunk_size
                        pending = [(s1[start:], s2[start:])]
                        held -= start
            except pa.ArrowInvalid as exc:
                raise self._parse_error(exc, bad_rows) from None
        if held:
            yield _joined(pending)

    def _parse_error(self, exc: Exception, bad_rows: list[Any]) -> EventFileError:
        if bad_rows:
            row = bad_rows[0]
            line = f"line {row.number}" if row.number > 0 else "a line"
            msg = (
                f"{self.path}: {line} has {row.actual_columns} field(s), but the header has"
                f" {row.expected_columns}"
            )
            return EventFileError(msg)
        if "straddl" in str(exc):
            msg = f"{self.path}: a line is longer than {CSV_BLOCK_BYTES} bytes"
            return EventFileError(msg)
        return EventFileError(f"{self.path}: not a readable CSV file ({_describe(exc)})")

    def _numbers(self, column: Any, name: str, rows_before: int) -> np.ndarray:
        pa = require("pyarrow", "CSV event files")
        pc = require("pyarrow.compute", "CSV event files")

        column = pc.utf8_trim_whitespace(column)
        try:
            return pc.cast(column, pa.float64()).to_numpy(zero_copy_only=False)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            pass
        # find the first value that is not a number by halving (a few casts, not one per row)
        lo, hi = 0, len(column)
        while hi - lo > 1:
            mid = (lo + hi) // 2
            try:
                pc.cast(column.slice(lo, mid - lo), pa.float64())
                lo = mid
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                hi = mid
        value = column[lo].as_py()
        shown = "an empty field" if value == "" else repr(value)
        line = rows_before + lo + 2  # line 1 is the header
        msg = f"{self.path}: line {line}: column {name!r} holds {shown}, not a number"
        raise EventFileError(msg)


def _joined(pending: list[tuple[np.ndarray, np.ndarray]]) -> Chunk:
    """The σ1 and σ2 arrays of ``pending`` joined end to end."""
    if len(pending) == 1:
        return pending[0]
    return np.concatenate([p[0] for p in pending]), np.concatenate([p[1] for p in pending])


class ParquetReader(EventReader):
    """A Parquet file, read one batch at a time with pyarrow."""

    format = "parquet"
    label = "Parquet"

    def _open(self) -> None:
        pa = require("pyarrow", "Parquet event files")
        pq = require("pyarrow.parquet", "Parquet event files")

        self._file = pq.ParquetFile(self.path)
        schema = self._file.schema_arrow
        for name in (self.columns.sigma1, self.columns.sigma2):
            if name not in schema.names:
                raise _missing(self.path, "column", name, schema.names)
            kind = schema.field(name).type
            if not (pa.types.is_integer(kind) or pa.types.is_floating(kind)):
                msg = f"{self.path}: column {name!r} holds {kind} values, not real numbers"
                raise EventFileError(msg)
        self.n_events = self._file.metadata.num_rows

    def _chunks(self, chunk_size: int) -> Iterator[Chunk]:
        names = [self.columns.sigma1, self.columns.sigma2]
        for batch in self._file.iter_batches(batch_size=chunk_size, columns=names):
            arrays = []
            for name in names:
                column = batch.column(name)
                if column.null_count:
                    nulls = column.null_count
                    msg = f"{self.path}: column {name!r} has {nulls} missing (null) values"
                    raise EventFileError(msg)
                arrays.append(column.to_numpy(zero_copy_only=False))
            yield arrays[0], arrays[1]

    def close(self) -> None:
        file = getattr(self, "_file", None)
        if file is not None:
            file.close()
            self._file = None


READERS: dict[str, type[EventReader]] = {
    cls.format: cls
    for cls in (RootReader, ZarrReader, NpyReader, NpzReader, CsvReader, ParquetReader)
}


def open_reader(
    path: str | Path, format: str | None = None, columns: Columns = DEFAULT_COLUMNS
) -> EventReader:
    """Open an event file for reading; the format comes from the file name unless given.

    Args:
        path: the event file, or zarr folder.
        format: one of `INPUT_FORMATS`, or None to tell from the name.
        columns: tree and column names.

    Raises:
        EventFileError: the file is missing, unreadable, or lacks the columns.
    """
    fmt = detect_format(path, format, "input")
    return READERS[fmt](path, columns)
