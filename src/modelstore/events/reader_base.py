"""The event reader contract: σ1 and σ2 in chunks of bounded size, whatever the file's size.

Each format has one reader class (``modelstore.events.readers``); `open_reader` picks it. A
reader checks what it can when it is opened (the file is readable, the columns exist, hold real
numbers and have equal lengths), so that a bad input fails before any work is done, and checks
each chunk as it is read.
Every problem becomes an EventFileError whose message names the file and the problem.
"""

from __future__ import annotations

import stat
from abc import ABC, abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from modelstore.errors import EventFileError, ModelstoreError
from modelstore.events.formats import DEFAULT_COLUMNS, Columns
from modelstore.events.locations import EventURL, Location, parse_location

if TYPE_CHECKING:
    from collections.abc import Generator, Iterable, Iterator, Sequence
    from types import TracebackType
    from typing import Self

__all__ = ["CARRIED_KINDS", "Chunk", "EventReader"]

Chunk = tuple[np.ndarray, ...]  # σ1, σ2, then the carried columns (`EventReader.carry`)
CARRIED_KINDS = "iuf"  # the NumPy kinds of the columns an output can carry (int, uint, float)


def _check_dtype(dtype: Any, where: str) -> None:
    kind = getattr(dtype, "kind", "O")
    if kind not in "iuf":
        msg = f"{where} holds {dtype} values, not real numbers"
        raise EventFileError(msg)


def _describe(exc: BaseException, limit: int = 300) -> str:
    """``Type: message`` on one line (third-party messages can span lines or be long)."""
    text = " ".join(str(exc).split())
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _missing(path: Location, what: str, name: str, available: Sequence[str]) -> EventFileError:
    shown = ", ".join(repr(a) for a in sorted(available)[:20]) or "none"
    more = " ..." if len(available) > 20 else ""
    return EventFileError(f"{path}: no {what} {name!r} (available: {shown}{more})")


class EventReader(ABC):
    """Reads σ1 and σ2 from one event file, chunk by chunk.

    Use it as a context manager; `chunks` yields pairs of 1-D float64 arrays of equal length,
    and `chunks_with` the columns chosen with `carry` besides.

    Attributes:
        path: the file (or zarr folder) read; a URL (`EventURL`) for a remote zarr store.
        columns: where σ1 and σ2 are found.
        n_events: the number of events, or None where the format does not say (csv).
        carryable: the columns that can be carried to an output, as ``(name, dtype)`` pairs in
            the input's order: flat columns of integers or floats, one value per event (CSV
            columns are read as float64). A plain (N, 2) ``.npy`` array has none.
        others: the names of the input's other columns (nested, strings, booleans...).
    """

    format: ClassVar[str]
    label: ClassVar[str]  # the format's name in messages
    remote: ClassVar[bool] = False  # whether a URL can be read (zarr only); else path is a Path

    def __init__(self, path: str | Path | EventURL, columns: Columns = DEFAULT_COLUMNS) -> None:
        self.path: Location = parse_location(path)
        self.columns = columns
        self.n_events: int | None = None
        self.carryable: list[tuple[str, np.dtype]] = []
        self.others: list[str] = []
        self._carry: list[tuple[str, np.dtype]] = []
        if isinstance(self.path, Path):
            self._check_local(self.path)
        elif not self.remote:  # a URL of a zarr store is checked when opened
            msg = f"{self.path}: only zarr stores are read through a URL, not {self.label} files"
            raise EventFileError(msg)
        try:
            self._open()
        except ModelstoreError:
            self.close()
            raise
        except Exception as exc:
            self.close()
            msg = f"{self.path}: not a readable {self.label} file ({_describe(exc)})"
            raise EventFileError(msg) from None

    @staticmethod
    def _check_local(path: Path) -> None:
        try:
            mode = path.stat().st_mode
        except FileNotFoundError:
            msg = f"{path}: no such file"
            raise EventFileError(msg) from None
        except OSError as exc:
            msg = f"{path}: cannot read ({exc.strerror or exc})"
            raise EventFileError(msg) from None
        if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
            # a FIFO or device would block or never end
            msg = f"{path}: not a regular file or folder (FIFOs and devices are not read)"
            raise EventFileError(msg)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @abstractmethod
    def _open(self) -> None:
        """Open the file and check columns, types and lengths; set ``n_events`` if known."""

    @abstractmethod
    def _chunks(self, chunk_size: int) -> Iterator[Chunk]: ...

    def close(self) -> None:  # noqa: B027 (an optional hook: most readers hold nothing)
        """Release the file (idempotent).

        Never raises.
        """

    def _classify(self, columns: Iterable[tuple[str, Any]]) -> None:
        """Sort ``(name, dtype or None)`` pairs, in input order, into `carryable` and `others`."""
        for name, dtype in columns:
            kind = getattr(dtype, "kind", "O")
            if kind in CARRIED_KINDS and not dtype.shape:
                # half floats as float32 (exact): ROOT has none
                wide = np.dtype(np.float32) if np.dtype(dtype) == np.float16 else np.dtype(dtype)
                self.carryable.append((name, wide.newbyteorder("=")))
            else:
                self.others.append(name)

    @property
    def carried(self) -> tuple[str, ...]:
        """The names of the columns chosen with `carry`."""
        return tuple(name for name, _ in self._carry)

    def carry(self, names: Sequence[str]) -> None:
        """Read these columns too (names from `carryable`, σ1 and σ2 excluded): see `chunks_with`.

        Raises:
            EventFileError: a name that is not among `carryable`.
        """
        known = dict(self.carryable)
        unknown = [name for name in names if name not in known]
        if unknown:
            shown = ", ".join(repr(n) for n in unknown)
            msg = f"{self.path}: cannot carry {shown} (not a flat numeric column of the input)"
            raise EventFileError(msg)
        self._carry = [(name, known[name]) for name in names]

    def chunks(self, chunk_size: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield ``(sigma1, sigma2)`` float64 arrays of at most ``chunk_size`` events each.

        Raises:
            EventFileError: the file cannot be read, or a chunk holds bad values.
        """
        for s1, s2, _ in self.chunks_with(chunk_size):
            yield s1, s2

    def chunks_with(
        self, chunk_size: int
    ) -> Iterator[tuple[np.ndarray, np.ndarray, tuple[np.ndarray, ...]]]:
        """Yield ``(sigma1, sigma2, carried)``: ``carried`` holds the `carry` columns' chunks.

        Raises:
            EventFileError: the file cannot be read, or a chunk holds bad values.
        """
        if chunk_size < 1:
            msg = f"chunk size must be positive, got {chunk_size}"
            raise EventFileError(msg)
        done = 0
        iterator: Generator[Chunk, None, None] = self._chunks(chunk_size)  # type: ignore[assignment]
        try:
            while True:
                try:
                    s1, s2, *rest = next(iterator)
                except StopIteration:
                    break
                except ModelstoreError:
                    raise
                except Exception as exc:
                    msg = f"{self.path}: cannot read events after event {done} ({_describe(exc)})"
                    raise EventFileError(msg) from None
                s1 = np.ascontiguousarray(s1, dtype=np.float64).reshape(-1)
                s2 = np.ascontiguousarray(s2, dtype=np.float64).reshape(-1)
                if s1.shape != s2.shape:
                    msg = (
                        f"{self.path}: {self.columns.sigma1!r} and {self.columns.sigma2!r} have"
                        f" different lengths (from event {done}: {len(s1)} and {len(s2)})"
                    )
                    raise EventFileError(msg)
                carried = tuple(
                    np.ascontiguousarray(a, dtype=dtype).reshape(-1)
                    for a, (_, dtype) in zip(rest, self._carry, strict=True)
                )
                if any(a.shape != s1.shape for a in carried):
                    msg = f"{self.path}: carried columns have other lengths than σ1 (event {done})"
                    raise EventFileError(msg)
                done += len(s1)
                yield s1, s2, carried
        finally:
            iterator.close()
        if self.n_events is not None and done != self.n_events:
            msg = f"{self.path}: read {done} events, but the file announces {self.n_events}"
            raise EventFileError(msg)

    def _check_lengths(self, lengths: Sequence[int]) -> None:
        n1, n2 = lengths
        if n1 != n2:
            msg = (
                f"{self.path}: {self.columns.sigma1!r} has {n1} events but"
                f" {self.columns.sigma2!r} has {n2}"
            )
            raise EventFileError(msg)
        self.n_events = n1
