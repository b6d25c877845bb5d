"""Overlap reading, evaluating and writing: bounded hand-overs between threads.

`evaluate_file` reads chunks in one thread (`Prefetch`), evaluates them in the caller's thread
and writes them in a third (`Drain`). Decompression, the native evaluator and compression
release the GIL, so the three stages run side by side on separate cores. Each hand-over is a
queue of at most ``depth`` chunks, so the number of chunks alive at once is bounded whatever
the file's size: ``depth`` queued for evaluation, ``depth`` queued for writing, and one in each
stage.

An error in a background thread is raised, unchanged, in the caller's thread at its next
hand-over (or at `Drain.finish`). Leaving either context early (an error, Ctrl-C) stops its
thread and waits for it, so that no thread touches the reader or the writer after the caller
closes or aborts them.
"""

from __future__ import annotations

import queue
import threading
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Generic, TypeVar

from modelstore.errors import EventFileError, InvalidInputError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator
    from types import TracebackType
    from typing import Self

__all__ = ["DEFAULT_DEPTH", "Drain", "Prefetch"]

T = TypeVar("T")

DEFAULT_DEPTH = 2  # chunks queued per hand-over: enough to absorb the stages' jitter
_POLL = 0.05  # seconds between checks for a stop request or a failed partner
_END = object()  # the producer's last message


def _always() -> bool:
    return True


class _Stage(ABC):
    """A worker thread with a bounded queue and a stop flag, joined on exit."""

    def __init__(self, depth: int, name: str) -> None:
        if depth < 1:
            msg = f"queue depth must be positive, got {depth}"
            raise InvalidInputError(msg)
        self.depth = depth
        self._queue: queue.Queue[object] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    @abstractmethod
    def _run(self) -> None:
        """The thread's work."""

    def _put(self, item: object, partner_alive: Callable[[], bool]) -> bool:
        """Queue ``item``, waiting for room; False if asked to stop or the partner is gone."""
        while not self._stop.is_set():
            if not partner_alive():
                return False
            try:
                self._queue.put(item, timeout=_POLL)
            except queue.Full:
                continue
            return True
        return False

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def stop(self) -> None:
        """Ask the thread to stop and wait until it has (idempotent).

        Never raises.
        """
        self._stop.set()
        while self._thread.is_alive():
            # empty the queue, so that a producer blocked on a full queue sees the stop flag
            while True:
                try:
                    self._queue.get_nowait()
                except queue.Empty:
                    break
            self._thread.join(_POLL)

    @property
    def in_flight(self) -> int:
        """Items queued now (at most ``depth``).

        Never raises.
        """
        return self._queue.qsize()


class Prefetch(_Stage, Generic[T]):
    """Iterate ``source`` in a background thread, at most ``depth`` items ahead of the caller.

    Use it as a context manager and iterate it once; the items come in ``source``'s order, and
    an exception raised by ``source`` is raised by the iteration. Leaving the context early
    stops the thread and closes ``source`` (in that thread) if it is a generator.

    Args:
        source: what to iterate (only ever touched by the background thread).
        depth: items read ahead (queued) at most.
        name: the thread's name.

    Raises:
        InvalidInputError: ``depth`` is not positive.
    """

    def __init__(self, source: Iterable[T], depth: int = DEFAULT_DEPTH, name: str = "read") -> None:
        super().__init__(depth, name)
        self._source = source

    def _run(self) -> None:
        iterator: Iterator[T] | None = None
        try:
            iterator = iter(self._source)
            while not self._stop.is_set():  # read nothing more once asked to stop
                try:
                    item = next(iterator)
                except StopIteration:
                    break
                if not self._put(item, _always):
                    break
        except BaseException as exc:
            self._error = exc
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                try:
                    close()
                except BaseException as exc:
                    self._error = self._error or exc
            self._put(_END, _always)

    def __iter__(self) -> Iterator[T]:
        """The items of ``source``, in order.

        Raises:
            BaseException: whatever ``source`` raised, once the items before it are consumed.
            EventFileError: the thread was stopped before the end (`stop` was called).
        """
        while True:
            try:
                item = self._queue.get(timeout=_POLL)
            except queue.Empty:
                if not self._thread.is_alive() and self._queue.empty():
                    msg = "the reading thread stopped before the end of the input"
                    raise EventFileError(msg) from None
                continue
            if item is _END:
                break
            yield item  # type: ignore[misc]
        if self._error is not None:
            error, self._error = self._error, None
            raise error


class Drain(_Stage, Generic[T]):
    """Hand items to ``write`` in a background thread, in order, at most ``depth`` queued.

    Use it as a context manager: `put` each item, then `finish` to wait until all are written.
    Leaving the context without `finish` (an error, Ctrl-C) drops what is queued and waits for
    the write in progress to end.

    Args:
        write: called with each item, in the background thread.
        depth: items queued at most; `put` waits for room.
        name: the thread's name.

    Raises:
        InvalidInputError: ``depth`` is not positive.
    """

    def __init__(
        self, write: Callable[[T], None], depth: int = DEFAULT_DEPTH, name: str = "write"
    ) -> None:
        super().__init__(depth, name)
        self._write = write
        self._finished = False

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                item = self._queue.get(timeout=_POLL)
            except queue.Empty:
                continue
            if item is _END:
                self._finished = True
                return
            try:
                self._write(item)  # type: ignore[arg-type]
            except BaseException as exc:
                self._error = exc
                return

    def _check(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            self._stop.set()
            raise error

    def put(self, item: T) -> None:
        """Queue ``item`` for writing, waiting while ``depth`` items are queued.

        Raises:
            BaseException: what ``write`` raised for an earlier item (nothing more is written).
            EventFileError: the thread was stopped before (`stop` was called).
        """
        self._check()
        while not self._put(item, self._thread.is_alive):
            self._check()
            if self._stop.is_set() or not self._thread.is_alive():
                msg = "the writer thread has stopped: nothing more can be written"
                raise EventFileError(msg)

    def finish(self) -> None:
        """Wait until every queued item is written.

        Raises:
            BaseException: what ``write`` raised.
            EventFileError: the thread was stopped before (`stop` was called).
        """
        self._check()
        if self._put(_END, self._thread.is_alive):
            while self._thread.is_alive():
                self._thread.join(_POLL)
        self._check()
        if not self._finished:
            msg = "the writer thread stopped before writing every chunk"
            raise EventFileError(msg)
