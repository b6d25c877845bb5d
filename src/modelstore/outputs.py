"""The one rule for what a command may do at its output path (``-o``), and the staged write.

Every command that writes a named output (``eval``, ``field``, ``band``, ``plot``, ``get``)
follows it; what is at the path decides:

- nothing: the output is written there.
- a regular file: replaced only with ``--overwrite`` (``overwrite=True`` from Python);
  otherwise refused in one line naming the path and the flag.
- a folder: replaced (with ``--overwrite``) only where the caller recognises it as one of its
  own outputs (a zarr store ``modelstore eval`` wrote); ``get`` writes into a folder.
- a FIFO or a character device (``/dev/null``, a terminal): never replaced. An output that is
  one whole file (``field``, ``band``, ``plot``) is written into it as ``cat`` would (no
  ``--overwrite`` needed; a FIFO without a reader is refused rather than waited on); an output
  that is staged beside its target (``eval``, ``get``) refuses it.
- a symbolic link: never replaced and never deleted through; one that ends at a FIFO or a
  character device (``/dev/stdout``) counts as that device, any other is refused.
- a block device or a socket: refused.

A file or folder is written under a hidden temporary name in the target's own folder and
renamed into place when complete (nothing half-written under the name asked for), with the
mode an ordinary ``open`` or ``mkdir`` would give it (0o666 or 0o777 less the umask). A folder
being replaced is moved aside first and deleted only once the new one is in place, without
following symbolic links.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

from modelstore.errors import OutputError
from modelstore.store.local import creation_mode

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from modelstore.store.leftovers import Leftover

__all__ = [
    "OVERWRITE_HINT",
    "PARTIAL_MARK",
    "Staged",
    "check_output_path",
    "output_kind",
    "output_leftovers",
    "write_output",
]

PARTIAL_MARK = ".partial-"
#: a ``.NAME.partial-*`` entry with anything written in the last this many seconds may belong to
#: a run still writing it (an eval of 10⁹ events writes for minutes): listed, never removed
OUTPUT_BUSY_AGE = 900.0
OVERWRITE_HINT = "replace it with --overwrite, or overwrite=True from Python"
_STREAMS = ("FIFO", "character device")


def output_kind(path: str | os.PathLike[str]) -> str:
    """What is at ``path``, the link itself not followed.

    One of ``missing``, ``file``, ``folder``, ``symbolic link``, ``FIFO``, ``character
    device``, ``block device``, ``socket`` or ``unknown``.

    Raises:
        OutputError: the path cannot be inspected (a permission, a component that is a file).
    """
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return "missing"
    except OSError as exc:
        msg = f"{os.fspath(path)}: cannot inspect the output path ({exc.strerror or exc})"
        raise OutputError(msg) from None
    return _kind(mode)


def _kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISREG, "file"),
        (stat.S_ISDIR, "folder"),
        (stat.S_ISLNK, "symbolic link"),
        (stat.S_ISFIFO, "FIFO"),
        (stat.S_ISCHR, "character device"),
        (stat.S_ISBLK, "block device"),
        (stat.S_ISSOCK, "socket"),
    ):
        if test(mode):
            return name
    return "unknown"


def _link_end(path: Path) -> str:
    """What a symbolic link ends at (``missing`` for a dangling one)."""
    try:
        return _kind(os.stat(path).st_mode)
    except OSError:
        return "missing"


def check_output_path(
    target: str | os.PathLike[str],
    overwrite: bool,
    *,
    streams: bool = False,
    own_folder: Callable[[Path], bool] | None = None,
) -> bool:
    """Apply the output rule (see the module) to ``target``; True if it is a stream to write into.

    Args:
        target: the output path.
        overwrite: whether an existing regular file (or own folder) may be replaced.
        streams: the output is one whole file that may be written into a FIFO or character
            device (True is returned for one); otherwise such a target is refused.
        own_folder: recognises a folder this command wrote (and may replace); None: no folder
            may be replaced.

    Raises:
        OutputError: the target may not be written (the message names it and the way out).
    """
    path = Path(target)
    kind = output_kind(path)
    if kind == "missing":
        return False
    if kind == "symbolic link":
        end = _link_end(path)
        if streams and end in _STREAMS:
            return True
        msg = (
            f"{path}: is a symbolic link; refusing to replace it or write through it (name the"
            " file it points to, or remove the link yourself)"
        )
        raise OutputError(msg)
    if kind in _STREAMS:
        if streams:
            return True
        msg = (
            f"{path}: is a {kind}; this output is written only to a regular file or folder"
            " (staged beside it and renamed into place), never into a FIFO or device"
        )
        raise OutputError(msg)
    if kind == "file" or (kind == "folder" and own_folder is not None and own_folder(path)):
        if overwrite:
            return False
        msg = f"{path}: exists already ({OVERWRITE_HINT})"
        raise OutputError(msg)
    if kind == "folder" and own_folder is None:
        msg = f"{path}: is a folder; refusing to replace it (name a file)"
        raise OutputError(msg)
    if kind == "folder":
        msg = (
            f"{path}: is a folder that modelstore did not write; refusing to replace it"
            " (--overwrite replaces only a file, or a zarr output written by modelstore eval)"
        )
        raise OutputError(msg)
    msg = f"{path}: is a {kind}; refusing to replace it or write into it"
    raise OutputError(msg)


def _fsync(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _remove_tree(folder: Path) -> None:
    """Delete ``folder`` without following symbolic links (links are removed, not entered)."""
    if not shutil.rmtree.avoids_symlink_attacks:  # pragma: no cover (Linux and macOS avoid them)
        msg = f"{folder}: this platform cannot delete folders safely; delete it yourself"
        raise OutputError(msg)
    shutil.rmtree(folder, ignore_errors=True)


class Staged:
    """A temporary file or folder beside ``target`` that `commit` renames into place.

    Args:
        target: the path the complete output gets.
        directory: stage a folder (a zarr store) rather than a file.
        overwrite: whether an existing target may be replaced on commit.
        own_folder: recognises a folder the caller wrote (which ``overwrite`` may replace).

    Raises:
        OutputError: the target may not be written (`check_output_path`), or its folder
            cannot be written.
    """

    def __init__(
        self,
        target: str | Path,
        *,
        directory: bool = False,
        overwrite: bool = False,
        own_folder: Callable[[Path], bool] | None = None,
    ) -> None:
        self.target = Path(target)
        self.overwrite = overwrite
        self.own_folder = own_folder
        self.directory = directory
        check_output_path(self.target, overwrite, own_folder=own_folder)
        parent = self.target.parent
        try:
            parent.mkdir(parents=True, exist_ok=True)
            prefix = f".{self.target.name}{PARTIAL_MARK}"
            # the modes an ordinary open or mkdir would give (mkstemp/mkdtemp give 0o600/0o700)
            if directory:
                self.path = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
                os.chmod(self.path, creation_mode(directory=True))
            else:
                fd, name = tempfile.mkstemp(prefix=prefix, dir=parent)
                self.path = Path(name)
                try:
                    os.fchmod(fd, creation_mode())
                finally:
                    os.close(fd)
        except OSError as exc:
            msg = f"{self.target}: cannot write here ({exc.strerror or exc})"
            raise OutputError(msg) from None
        self._done = False
        self._lock = threading.Lock()
        self._pending: set[Path] = set()
        self._syncer: ThreadPoolExecutor | None = None

    def sync_soon(self, paths: Iterable[Path]) -> None:
        """fsync these files (written in full, or grown) in a background thread.

        The disk then writes them while the work goes on, and the fsync of every file before
        the rename (`commit`) finds little left to do; correctness never depends on it. A path
        already waiting is not queued twice; a missing one is skipped.

        Never raises.
        """
        with self._lock:
            if self._done:
                return
            new = [path for path in paths if path not in self._pending]
            self._pending.update(new)
            if not new:
                return
            if self._syncer is None:
                self._syncer = ThreadPoolExecutor(1, thread_name_prefix="modelstore-fsync")
            self._syncer.submit(self._sync, new)

    def _sync(self, paths: list[Path]) -> None:
        with self._lock:
            self._pending.difference_update(paths)  # a later write queues the path again
        for path in paths:
            _fsync(path)

    def _stop_syncing(self) -> None:
        """Drop the queued fsyncs and wait for the one in progress."""
        with self._lock:
            syncer, self._syncer = self._syncer, None
            self._pending.clear()
        if syncer is not None:
            syncer.shutdown(wait=True, cancel_futures=True)

    def commit(self) -> Path:
        """Flush the staged output to disk and move it to the target; return the target.

        A folder being replaced is moved aside first and deleted (links not followed) only
        after the new one is in place.

        Raises:
            OutputError: the target appeared meanwhile and may not be replaced, or the move
                failed (the staged output is then deleted and the target left as it was).
        """
        if self._done:
            msg = f"{self.target}: already committed or aborted"
            raise OutputError(msg)
        self._stop_syncing()
        if self.directory:
            for root, _, files in os.walk(self.path):
                for name in files:
                    _fsync(Path(root) / name)
        else:
            _fsync(self.path)
        old = None
        try:
            check_output_path(self.target, self.overwrite, own_folder=self.own_folder)
            if output_kind(self.target) == "folder":
                # os.replace cannot replace a folder: move the old one aside first
                old = Path(
                    tempfile.mkdtemp(prefix=f".{self.target.name}.old-", dir=self.target.parent)
                )
                os.replace(self.target, old / "content")
            try:
                os.replace(self.path, self.target)
            except OSError:
                if old is not None:
                    os.replace(old / "content", self.target)
                    old.rmdir()
                raise
        except OSError as exc:
            self.abort()
            if isinstance(exc, OutputError):
                raise
            msg = f"{self.target}: cannot move the output into place ({exc.strerror or exc})"
            raise OutputError(msg) from None
        self._done = True
        _fsync(self.target.parent)
        if old is not None:
            _remove_tree(old)
        return self.target

    def abort(self) -> None:
        """Delete the staged output (idempotent).

        Never raises.
        """
        with self._lock:
            if self._done:
                return
            self._done = True
        self._stop_syncing()
        if self.directory:
            shutil.rmtree(self.path, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()


def _write_into(path: Path, data: bytes) -> None:
    """Write ``data`` into the FIFO or character device at ``path`` (never created, truncated)."""
    flags = os.O_WRONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        if exc.errno == getattr(os, "ENXIO", 6):
            msg = f"{path}: is a FIFO that nothing reads; start its reader first"
        else:
            msg = f"{path}: cannot write into it ({exc.strerror or exc})"
        raise OutputError(msg) from None
    try:
        kind = _kind(os.fstat(fd).st_mode)
        if kind not in _STREAMS:  # it changed since it was checked
            msg = f"{path}: is now a {kind}; refusing to write into it"
            raise OutputError(msg)
        os.set_blocking(fd, True)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    except OutputError:
        raise
    except OSError as exc:
        msg = f"{path}: cannot write into it ({exc.strerror or exc})"
        raise OutputError(msg) from None
    finally:
        os.close(fd)


def write_output(path: str | os.PathLike[str], data: bytes, *, overwrite: bool = False) -> Path:
    """Write one whole output file by the rule (see the module); return its path.

    Into a FIFO or character device the bytes are written as they are; anywhere else they go
    to a hidden temporary file beside ``path``, flushed to disk and renamed into place.

    Raises:
        OutputError: the output may not be written there (it exists and ``overwrite`` is
            false, it is a link, a folder, a FIFO nothing reads...), or writing failed
            (nothing is left behind).
    """
    path = Path(path)
    if check_output_path(path, overwrite, streams=True):
        _write_into(path, data)
        return path
    staged = Staged(path, overwrite=overwrite)
    try:
        with open(staged.path, "wb") as f:
            f.write(data)
    except OSError as exc:
        staged.abort()
        msg = f"{path}: cannot write ({exc.strerror or exc})"
        raise OutputError(msg) from None
    return staged.commit()


def output_leftovers(folder: str | Path, *, busy_age: float = OUTPUT_BUSY_AGE) -> list[Leftover]:
    """The ``.NAME.partial-*`` files and folders that killed runs of ``eval``, ``get``,
    ``field``, ``band`` and ``plot`` left directly in ``folder`` (local only).

    A finished run renames its partial into place and an interrupted one deletes it, so only a
    killed process leaves one. An entry where anything was modified in the last ``busy_age``
    seconds is marked busy (a run may still be writing it); symbolic links are never listed.

    Raises:
        OutputError: ``folder`` is not a folder.
    """
    from modelstore.store.leftovers import find_leftovers, newest_change

    root = Path(folder)
    if root.is_symlink() or not root.is_dir():
        msg = f"{root}: not a folder (name the folder the outputs were written to)"
        raise OutputError(msg)

    def recent(path: Path) -> bool:
        return time.time() - newest_change(path) < busy_age

    found = []
    for directories in (False, True):
        found += [
            leftover
            for leftover in find_leftovers([root], ["."], directories=directories, busy=recent)
            if PARTIAL_MARK in leftover.path.name[1:]
        ]
    return sorted(found, key=lambda leftover: leftover.path)
