"""Outputs are written under a temporary name next to the target and renamed when complete.

An interrupted run leaves at most a hidden ``.NAME.partial-XXXX`` file or folder, never a
truncated file under the name the user asked for.

Replacing an existing output (``overwrite``) never deletes anything this tool did not write:
a regular file may be replaced, a folder only if it is a zarr store this tool wrote (a group
whose attributes carry modelstore's provenance and that holds nothing but arrays), a symbolic
link never; an output that contains an input or sits inside one is refused (paths compared
with symbolic links resolved), and the old folder is deleted without following links.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import stat
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

from modelstore.errors import EventFileError
from modelstore.store.local import creation_mode

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = ["PARTIAL_MARK", "PROVENANCE_KEY", "Staged", "check_target"]

PARTIAL_MARK = ".partial-"
PROVENANCE_KEY = "modelstore"  # the zarr group attribute that marks an output of this tool
_MAX_ZARR_JSON = 1 << 20


def _read_zarr_json(path: Path) -> dict | None:
    """The JSON of a regular (not linked) ``zarr.json`` file, or None."""
    try:
        if not stat.S_ISREG(path.lstat().st_mode):
            return None
        with open(path, "rb") as f:
            data = f.read(_MAX_ZARR_JSON + 1)
        if len(data) > _MAX_ZARR_JSON:
            return None
        doc = json.loads(data)
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


def is_previous_output(folder: Path) -> bool:
    """True if ``folder`` is a zarr store that this tool wrote (and nothing else is inside).

    It must be a real folder (not a link) holding a zarr v3 group whose attributes carry
    modelstore's provenance, and, besides its ``zarr.json``, only real folders that are zarr
    arrays: so replacing it deletes no file a user put there.
    """
    try:
        if not stat.S_ISDIR(folder.lstat().st_mode):
            return False
        entries = list(os.scandir(folder))
    except OSError:
        return False
    group = _read_zarr_json(folder / "zarr.json")
    attributes = group.get("attributes") if group else None
    if (
        group is None
        or group.get("node_type") != "group"
        or not isinstance(attributes, dict)
        or not isinstance(attributes.get(PROVENANCE_KEY), dict)
        or "model" not in attributes[PROVENANCE_KEY]
    ):
        return False
    for entry in entries:
        if entry.name == "zarr.json":
            continue
        if not entry.is_dir(follow_symlinks=False):
            return False
        array = _read_zarr_json(Path(entry.path) / "zarr.json")
        if array is None or array.get("node_type") != "array":
            return False
    return True


def _overlaps(output: Path, path: Path) -> bool:
    """True if ``output`` is ``path``, contains it or lies inside it (links resolved)."""
    a, b = output.resolve(), path.resolve()
    return a == b or a.is_relative_to(b) or b.is_relative_to(a)


def _check_replaceable(target: Path) -> None:
    """Refuse to replace anything but a regular file or a previous zarr output of this tool."""
    try:
        mode = target.lstat().st_mode
    except FileNotFoundError:
        return
    except OSError as exc:
        msg = f"{target}: cannot inspect the existing output ({exc.strerror or exc})"
        raise EventFileError(msg) from None
    if stat.S_ISLNK(mode):
        msg = (
            f"{target}: is a symbolic link; refusing to replace it (name the file it points to,"
            " or remove the link yourself)"
        )
        raise EventFileError(msg)
    if stat.S_ISREG(mode):
        return
    if stat.S_ISDIR(mode) and is_previous_output(target):
        return
    what = "a folder" if stat.S_ISDIR(mode) else "not a regular file"
    msg = (
        f"{target}: is {what} that modelstore did not write; refusing to replace it"
        " (--overwrite replaces only a file, or a zarr output written by modelstore eval)"
    )
    raise EventFileError(msg)


def check_target(target: str | Path, overwrite: bool, inputs: tuple[Path, ...] = ()) -> Path:
    """Refuse a target that exists (unless ``overwrite``), or that overlaps one of the ``inputs``.

    With ``overwrite``, only a regular file or a zarr output written by this tool may be
    replaced (see the module's docstring).

    Raises:
        EventFileError: the target may not be written.
    """
    target = Path(target)
    for path in inputs:
        if target.resolve() == Path(path).resolve():
            msg = f"{target}: the output would overwrite the input"
            raise EventFileError(msg)
        if _overlaps(target, Path(path)):
            msg = (
                f"{target}: the output would contain or sit inside the input {path};"
                " choose an output outside it"
            )
            raise EventFileError(msg)
    if target.exists() or target.is_symlink():
        if not overwrite:
            msg = (
                f"{target}: exists already (allow replacing it with overwrite=True, or --overwrite)"
            )
            raise EventFileError(msg)
        _check_replaceable(target)
    return target


def _lstat_mode(path: Path) -> int:
    try:
        return path.lstat().st_mode
    except FileNotFoundError:
        return 0


def _remove_tree(folder: Path) -> None:
    """Delete ``folder`` without following symbolic links (links are removed, not entered)."""
    if not shutil.rmtree.avoids_symlink_attacks:  # pragma: no cover (Linux and macOS avoid them)
        msg = f"{folder}: this platform cannot delete folders safely; delete it yourself"
        raise EventFileError(msg)
    shutil.rmtree(folder, ignore_errors=True)


def _fsync(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


class Staged:
    """A temporary file or folder beside ``target`` that `commit` renames into place.

    Args:
        target: the path the complete output gets.
        directory: stage a folder (zarr) rather than a file.
        overwrite: whether an existing target may be replaced on commit.
    """

    def __init__(
        self, target: str | Path, *, directory: bool = False, overwrite: bool = False
    ) -> None:
        self.target = check_target(target, overwrite)
        self.overwrite = overwrite
        self.directory = directory
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
            raise EventFileError(msg) from None
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

        Raises:
            EventFileError: the target appeared meanwhile and may not be replaced, or the move
                failed.
        """
        if self._done:
            msg = f"{self.target}: already committed or aborted"
            raise EventFileError(msg)
        self._stop_syncing()
        if self.directory:
            for root, _, files in os.walk(self.path):
                for name in files:
                    _fsync(Path(root) / name)
        else:
            _fsync(self.path)
        check_target(self.target, self.overwrite)
        old = None
        if stat.S_ISDIR(_lstat_mode(self.target)):
            # os.replace cannot replace a folder: move the old one aside first
            old = Path(tempfile.mkdtemp(prefix=f".{self.target.name}.old-", dir=self.target.parent))
            os.replace(self.target, old / "content")
        os.replace(self.path, self.target)
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
