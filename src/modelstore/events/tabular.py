"""Readers of text and columnar event files: CSV (through pyarrow) and Parquet (``[events]``)."""

from __future__ import annotations

from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import numpy as np

from modelstore._optional import require
from modelstore.errors import EventFileError
from modelstore.events.reader_base import Chunk, EventReader, _describe, _missing

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = [
    "CSV_BLOCK_BYTES",
    "CSV_MAX_COLUMNS",
    "CSV_MAX_HEADER_BYTES",
    "CsvReader",
    "ParquetReader",
]


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
    path: Path  # local files only (`remote` is false)

    def _open(self) -> None:
        self.header = self._read_header()
        for name in (self.columns.sigma1, self.columns.sigma2):
            if name not in self.header:
                raise _missing(self.path, "column", name, self.header)
        types = self._infer_types()
        self._classify((name, types.get(name, np.dtype(np.float64))) for name in self.header)

    def _infer_types(self) -> dict[str, np.dtype | None]:
        """The columns' types as pyarrow infers them from the first block (CSV has no types).

        Integers stay int64 (event numbers beyond 2⁵³ survive), other numbers are float64,
        anything else (text, booleans) is not carried; a block pyarrow cannot parse leaves the
        errors to the reading of the events.
        """
        pa = require("pyarrow", "CSV event files")
        pa_csv = require("pyarrow.csv", "CSV event files")

        read_options = pa_csv.ReadOptions(block_size=CSV_BLOCK_BYTES, use_threads=False)
        parse_options = pa_csv.ParseOptions(invalid_row_handler=lambda _: "skip")
        try:
            with _open_binary(self.path) as f:
                reader = pa_csv.open_csv(f, read_options=read_options, parse_options=parse_options)
                schema = reader.read_next_batch().schema
        except Exception:  # no rows, or a bad block: reported when the events are read
            return {}
        types: dict[str, np.dtype | None] = {}
        for field in schema:
            if pa.types.is_integer(field.type):
                types[field.name] = np.dtype(np.int64)
            elif pa.types.is_floating(field.type) or pa.types.is_null(field.type):
                types[field.name] = np.dtype(np.float64)
            else:
                types[field.name] = None
        return types

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

        names = [self.columns.sigma1, self.columns.sigma2, *self.carried]
        kinds = [np.dtype(np.float64)] * 2 + [dtype for _, dtype in self._carry]
        bad_rows: list[Any] = []

        def invalid_row(row: Any) -> str:
            bad_rows.append(row)
            return "error"

        read_options = pa_csv.ReadOptions(block_size=CSV_BLOCK_BYTES, use_threads=False)
        parse_options = pa_csv.ParseOptions(invalid_row_handler=invalid_row)
        convert_options = pa_csv.ConvertOptions(
            include_columns=list(dict.fromkeys(names)),
            column_types=dict.fromkeys(names, pa.string()),
            null_values=[],
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
        )
        pending: list[tuple[np.ndarray, ...]] = []
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
                    parsed = tuple(
                        self._numbers(batch.column(name), name, rows, dtype)
                        for name, dtype in zip(names, kinds, strict=True)
                    )
                    rows += batch.num_rows
                    pending.append(parsed)
                    held += batch.num_rows
                    if held >= chunk_size:
                        joined = _joined(pending)
                        start = 0
                        while held - start >= chunk_size:
                            yield tuple(a[start : start + chunk_size] for a in joined)
                            start += chunk_size
                        pending = [tuple(a[start:] for a in joined)]
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

    def _numbers(
        self, column: Any, name: str, rows_before: int, dtype: np.dtype | None = None
    ) -> np.ndarray:
        pa = require("pyarrow", "CSV event files")
        pc = require("pyarrow.compute", "CSV event files")

        integers = dtype is not None and dtype.kind == "i"
        target = pa.int64() if integers else pa.float64()
        column = pc.utf8_trim_whitespace(column)
        try:
            return pc.cast(column, target).to_numpy(zero_copy_only=False)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            pass
        # find the first value that is not a number by halving (a few casts, not one per row)
        lo, hi = 0, len(column)
        while hi - lo > 1:
            mid = (lo + hi) // 2
            try:
                pc.cast(column.slice(lo, mid - lo), target)
                lo = mid
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                hi = mid
        value = column[lo].as_py()
        shown = "an empty field" if value == "" else repr(value)
        line = rows_before + lo + 2  # line 1 is the header
        msg = f"{self.path}: line {line}: column {name!r} holds {shown}, not a number"
        if integers:
            msg = (
                f"{self.path}: line {line}: column {name!r} holds {shown}, not an integer (its"
                " first lines hold integers, so it is written as int64; leave it out with"
                " --drop-columns)"
            )
        raise EventFileError(msg)


def _joined(pending: list[tuple[np.ndarray, ...]]) -> Chunk:
    """The columns of ``pending`` joined end to end."""
    if len(pending) == 1:
        return pending[0]
    return tuple(np.concatenate(parts) for parts in zip(*pending, strict=True))


class ParquetReader(EventReader):
    """A Parquet file, read one batch at a time with pyarrow."""

    format = "parquet"
    label = "Parquet"
    path: Path  # local files only (`remote` is false)

    def _open(self) -> None:
        pa = require("pyarrow", "Parquet event files")
        pq = require("pyarrow.parquet", "Parquet event files")

        # without pre-buffering: pyarrow 26 would keep every row group read so far buffered,
        # so that memory grew with the file (2e7 events: 440 MiB instead of 100 MiB)
        self._file = pq.ParquetFile(self.path, pre_buffer=False)
        schema = self._file.schema_arrow
        for name in (self.columns.sigma1, self.columns.sigma2):
            if name not in schema.names:
                raise _missing(self.path, "column", name, schema.names)
            kind = schema.field(name).type
            if not (pa.types.is_integer(kind) or pa.types.is_floating(kind)):
                msg = f"{self.path}: column {name!r} holds {kind} values, not real numbers"
                raise EventFileError(msg)
        self.n_events = self._file.metadata.num_rows
        self._classify((field.name, self._numpy_dtype(field.type)) for field in schema)

    @staticmethod
    def _numpy_dtype(kind: Any) -> np.dtype | None:
        pa = require("pyarrow", "Parquet event files")

        if pa.types.is_integer(kind) or pa.types.is_floating(kind):
            return np.dtype(kind.to_pandas_dtype())
        return None

    def _chunks(self, chunk_size: int) -> Iterator[Chunk]:
        names = [self.columns.sigma1, self.columns.sigma2, *self.carried]
        wanted = list(dict.fromkeys(names))
        for batch in self._file.iter_batches(batch_size=chunk_size, columns=wanted):
            arrays = []
            for name in names:
                column = batch.column(name)
                if column.null_count:
                    nulls = column.null_count
                    msg = f"{self.path}: column {name!r} has {nulls} missing (null) values"
                    raise EventFileError(msg)
                arrays.append(column.to_numpy(zero_copy_only=False))
            yield tuple(arrays)

    def close(self) -> None:
        """Close the Parquet file (idempotent).

        Never raises.
        """
        file = getattr(self, "_file", None)
        if file is not None:
            file.close()
            self._file = None
