"""Where a registry's files live: a folder on the local disk.

Every path is built from validated names and digests and checked to stay inside the root.
Writes go to a unique temporary file in the target folder, are fsynced, then renamed into
place, so a crash never leaves a half-written file under its final name.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from filelock import FileLock

from modelstore.errors import InvalidNameError, ModelNotFoundError

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ["LocalStore", "atomic_write"]

TMP_PREFIX = ".tmp-"


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=TMP_PREFIX, dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    with contextlib.suppress(OSError):
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


class LocalStore:
    """A registry folder: ``registry/`` (blobs) and ``manifests/`` (index and manifests)."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).resolve()

    def __repr__(self) -> str:
        return f"LocalStore({str(self.root)!r})"

    def path(self, relpath: str) -> Path:
        """Absolute path of ``relpath``, refused if it would leave the root."""
        parts = relpath.split("/")
        if (
            not relpath
            or relpath.startswith("/")
            or "\x00" in relpath
            or any(p in ("", ".", "..") for p in parts)
        ):
            msg = f"refusing registry path {relpath!r}"
            raise InvalidNameError(msg)
        path = (self.root / relpath).resolve()
        if not path.is_relative_to(self.root):
            msg = f"registry path {relpath!r} resolves outside the registry {self.root}"
            raise InvalidNameError(msg)
        return path

    def read(self, relpath: str) -> bytes:
        try:
            return self.path(relpath).read_bytes()
        except FileNotFoundError:
            msg = f"{relpath}: missing from the registry at {self.root}"
            raise ModelNotFoundError(msg) from None

    def exists(self, relpath: str) -> bool:
        return self.path(relpath).is_file()

    def write(self, relpath: str, data: bytes) -> None:
        atomic_write(self.path(relpath), data)

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Serialise publishers of this registry (index read-modify-write)."""
        lock_path = self.root / "manifests" / ".publish.lock"
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(lock_path, timeout=600):
            yield

    def leftovers(self) -> list[Path]:
        """Temporary files left by interrupted writes (never read as registry content)."""
        return sorted(p for p in self.root.glob(f"*/**/{TMP_PREFIX}*") if p.is_file())
