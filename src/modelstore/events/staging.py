"""Outputs are written under a temporary name next to the target and renamed when complete.

An interrupted run leaves at most a hidden ``.NAME.partial-XXXX`` file or folder, never a
truncated file under the name the user asked for.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path

from modelstore.errors import EventFileError

__all__ = ["PARTIAL_MARK", "Staged", "check_target"]

PARTIAL_MARK = ".partial-"


def check_target(target: str | Path, overwrite: bool, inputs: tuple[Path, ...] = ()) -> Path:
    """Refuse a target that exists (unless ``overwrite``) or that is one of the ``inputs``.

    Raises:
        EventFileError: the target may not be written.
    """
    target = Path(target)
    resolved = target.resolve()
    for path in inputs:
        if path.resolve() == resolved:
            msg = f"{target}: the output would overwrite the input"
            raise EventFileError(msg)
    if (target.exists() or target.is_symlink()) and not overwrite:
        msg = f"{target}: exists already (allow replacing it with overwrite=True, or --overwrite)"
        raise EventFileError(msg)
    return target


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
            if directory:
                self.path = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
            else:
                fd, name = tempfile.mkstemp(prefix=prefix, dir=parent)
                os.close(fd)
                self.path = Path(name)
        except OSError as exc:
            msg = f"{self.target}: cannot write here ({exc.strerror or exc})"
            raise EventFileError(msg) from None
        self._done = False

    def commit(self) -> Path:
        """Flush the staged output to disk and move it to the target; return the target."""
        if self._done:
            msg = f"{self.target}: already committed or aborted"
            raise EventFileError(msg)
        if self.directory:
            for root, _, files in os.walk(self.path):
                for name in files:
                    _fsync(Path(root) / name)
        else:
            _fsync(self.path)
        check_target(self.target, self.overwrite)
        old = None
        if self.target.is_dir() and not self.target.is_symlink():
            # os.replace cannot replace a folder: move the old one aside first
            old = Path(tempfile.mkdtemp(prefix=f".{self.target.name}.old-", dir=self.target.parent))
            os.replace(self.target, old / "content")
        os.replace(self.path, self.target)
        self._done = True
        _fsync(self.target.parent)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        return self.target

    def abort(self) -> None:
        """Delete the staged output (idempotent)."""
        if self._done:
            return
        self._done = True
        if self.directory:
            shutil.rmtree(self.path, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
