"""The event writer's contract: chunks in, a staged output renamed into place on commit.

A writer writes into a temporary file or folder next to the target (see `staging`) and
renames it into place in `commit`; used as a context manager it commits on success and
deletes the partial output on any exception, KeyboardInterrupt included.
"""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from modelstore.errors import EventFileError
from modelstore.events.formats import DEFAULT_CHUNK_SIZE, DEFAULT_COLUMNS, DEFAULT_TREE, Columns
from modelstore.events.locations import EventURL, Location, parse_location, stage_output

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from types import TracebackType
    from typing import Self

__all__ = ["METADATA_KEY", "SUMMARY_KEY", "EventWriter"]

METADATA_KEY = "modelstore"
SUMMARY_KEY = "modelstore_summary"


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
