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
from pathlib import Path
from typing import IO, Any

import numpy as np

from modelstore._optional import require
from modelstore.events.formats import DEFAULT_COLUMNS, Columns
from modelstore.events.locations import EventURL, detect_location_format, parse_location
from modelstore.events.staging import PARTIAL_MARK, Staged
from modelstore.events.writer_base import METADATA_KEY, SUMMARY_KEY, EventWriter
from modelstore.events.zarr_writer import ZarrWriter, create_zarr_arrays

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

_COPY_BLOCK = 16 << 20


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
