"""Readers of event files: σ1 and σ2 in chunks of bounded size, whatever the file's size.

Each format has one reader class (CSV and Parquet in ``tabular``); `open_reader` picks it. A
reader checks what it can when it is opened (the file is readable, the columns exist, hold real
numbers and have equal lengths),
so that a bad input fails before any work is done, and checks each chunk as it is read.
Every problem becomes an EventFileError whose message names the file and the problem.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from modelstore._optional import require
from modelstore.errors import EventFileError
from modelstore.events.formats import DEFAULT_COLUMNS, Columns
from modelstore.events.locations import (
    EventURL,
    detect_location_format,
    open_zarr_store,
    parse_location,
)
from modelstore.events.reader_base import (
    Chunk,
    EventReader,
    _check_dtype,
    _missing,
)
from modelstore.events.tabular import CsvReader, ParquetReader

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
    path: Path  # local files only (`remote` is false)
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
        self._classify((key, self._flat_dtype(self._tree[key])) for key in branches)

    @classmethod
    def _flat_dtype(cls, branch: Any) -> np.dtype | None:
        try:
            return cls._branch_dtype(branch)
        except Exception:  # a branch uproot cannot describe is not carried
            return None

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
        names = [self.columns.sigma1, self.columns.sigma2, *self.carried]
        wanted = list(dict.fromkeys(names))
        for batch in self._tree.iterate(wanted, step_size=chunk_size, library="np"):
            yield tuple(batch[name] for name in names)

    def close(self) -> None:
        """Close the ROOT file (idempotent).

        Never raises.
        """
        file = getattr(self, "_file", None)
        if file is not None:
            file.close()
            self._file = None


class ZarrReader(EventReader):
    """A zarr group (v2 or v3) with one 1-D array per column."""

    format = "zarr"
    label = "zarr"
    remote = True

    def _open(self) -> None:
        import zarr

        group = zarr.open_group(open_zarr_store(self.path), mode="r")
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
        self._found = found
        self._classify(
            (name, a.dtype if a.ndim == 1 and a.shape[0] == self.n_events else None)
            for name, a in found.items()
        )

    @property
    def arrays(self) -> list[Any]:
        """The zarr arrays of σ1 and σ2 (for readers that slice them elsewhere)."""
        return self._arrays

    def _chunks(self, chunk_size: int) -> Iterator[Chunk]:
        arrays = [*self._arrays, *(self._found[name] for name in self.carried)]
        assert self.n_events is not None  # noqa: S101 (narrows the type)
        for start in range(0, self.n_events, chunk_size):
            stop = min(start + chunk_size, self.n_events)
            yield tuple(np.asarray(a[start:stop]) for a in arrays)


class NpyReader(EventReader):
    """A ``.npy`` array, memory-mapped: a structured array with named fields, or shape (N, 2).

    A plain 2-D array holds σ1 in column 0 and σ2 in column 1; column names do not apply.
    """

    format = "npy"
    label = ".npy"
    path: Path  # local files only (`remote` is false)

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
            self._array = array
            self._classify((name, array.dtype[name]) for name in array.dtype.names)
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
        columns = [*self._columns, *(self._array[name] for name in self.carried)]
        assert self.n_events is not None  # noqa: S101 (narrows the type)
        for start in range(0, self.n_events, chunk_size):
            stop = min(start + chunk_size, self.n_events)
            yield tuple(np.array(c[start:stop]) for c in columns)

    def close(self) -> None:
        """Drop the memory-mapped columns (idempotent).

        Never raises.
        """
        self._columns = ()  # type: ignore[assignment]
        self._array = None


class NpzReader(EventReader):
    """An ``.npz`` archive with one 1-D array per column, streamed from the zip members."""

    format = "npz"
    label = ".npz"
    path: Path  # local files only (`remote` is false)

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
        self._classify(self._member_dtype(name) for name in members)

    def _member_dtype(self, name: str) -> tuple[str, np.dtype | None]:
        """``(name, dtype)`` of a 1-D member with one value per event, else ``(name, None)``."""
        try:
            with self._zip.open(f"{name}.npy") as member:
                shape, dtype = self._read_header(member, name)
        except (EventFileError, OSError, ValueError, zipfile.BadZipFile):
            return name, None
        return name, (dtype if shape == (self.n_events,) else None)

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
            for name, dtype in [*self._headers, *self._carry]:
                member = self._zip.open(f"{name}.npy")
                streams.append((member, dtype))
                self._read_header(member, name)
            assert self.n_events is not None  # noqa: S101 (narrows the type)
            for start in range(0, self.n_events, chunk_size):
                count = min(chunk_size, self.n_events - start)
                yield tuple(self._read_values(member, dtype, count) for member, dtype in streams)
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
        """Close the archive (idempotent).

        Never raises.
        """
        archive = getattr(self, "_zip", None)
        if archive is not None:
            archive.close()
            self._zip = None  # type: ignore[assignment]


READERS: dict[str, type[EventReader]] = {
    cls.format: cls
    for cls in (RootReader, ZarrReader, NpyReader, NpzReader, CsvReader, ParquetReader)
}


def open_reader(
    path: str | Path | EventURL, format: str | None = None, columns: Columns = DEFAULT_COLUMNS
) -> EventReader:
    """Open an event file for reading; the format comes from the file name unless given.

    Args:
        path: the event file, or zarr folder; or the URL of a zarr store (``s3://...``).
        format: one of `INPUT_FORMATS`, or None to tell from the name.
        columns: tree and column names.

    Raises:
        EventFileError: the file is missing, unreadable, or lacks the columns; a URL of
            something else than a zarr store.
        MissingExtraError: the URL's scheme needs an extra (``s3://``: ``modelstore[s3]``).
    """
    location = parse_location(path)
    fmt = detect_location_format(location, format, "input")
    return READERS[fmt](location, columns)
