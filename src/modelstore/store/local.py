"""The local folder store, and the file primitives it is built on (atomic write, bounded read).

The contract it fulfils lives in ``modelstore.store.contract``; remote stores (``s3://``,
``https://``, anything fsspec speaks) in ``modelstore.store.remote``;
``modelstore.store.open_store`` picks one from a location.
"""

from __future__ import annotations

import builtins
import contextlib
import os
import stat
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

from filelock import FileLock

from modelstore.errors import InvalidNameError, ModelNotFoundError, UnreadableFileError
from modelstore.store.contract import TMP_PREFIX, Store, check_relpath

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = [
    "TMP_PREFIX",
    "LocalStore",
    "atomic_write",
    "creation_mode",
    "read_regular_file",
]

LEFTOVER_AGE = 600.0


def _umask() -> int:
    """The process's umask, read without changing it where the system allows."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)  # elsewhere: set and restore (briefly visible to other threads)
    os.umask(mask)
    return mask


def creation_mode(directory: bool = False) -> int:
    """The mode ``open`` or ``mkdir`` would give a new file or folder: 0o666/0o777 less the umask.

    Temporary files from ``tempfile.mkstemp`` are 0o600 and folders from ``mkdtemp`` 0o700;
    what is renamed into place as a user's output gets this mode instead.

    Never raises.
    """
    return (0o777 if directory else 0o666) & ~_umask()


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and a rename.

    The file gets the mode an ordinary ``open`` would give it (0o666 less the umask), not the
    0o600 of the temporary file.

    Raises:
        OSError: the file cannot be written (nothing is left behind).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=TMP_PREFIX, dir=path.parent)
    try:
        os.fchmod(fd, creation_mode())
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


def read_regular_file(
    path: str | os.PathLike[str], max_size: int | None = None, *, follow_symlinks: bool = True
) -> bytes:
    """The bytes of ``path`` if it is a regular file (at most ``max_size + 1`` of them).

    A FIFO, a device (``/dev/zero``) or a folder in place of a file would block or never end;
    it is opened without blocking, recognised by ``fstat`` and refused with UnreadableFileError.
    The buffer is sized by the file, not by ``max_size`` (which a manifest may set absurdly).

    Raises:
        UnreadableFileError: the path is not a regular file.
        OSError: it cannot be opened or read (FileNotFoundError if absent).
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    if not follow_symlinks:
        flags |= getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        msg = f"{path}: cannot open ({exc.strerror or exc})"
        raise UnreadableFileError(msg) from None
    with os.fdopen(fd, "rb") as f:
        info = os.fstat(f.fileno())
        if not stat.S_ISREG(info.st_mode):
            msg = f"{path}: not a regular file (a FIFO, device or folder); refusing to read it"
            raise UnreadableFileError(msg)
        if max_size is None:
            return f.read()
        return f.read(max(0, min(max_size, info.st_size)) + 1)


class LocalStore(Store):
    """A registry folder: ``registry/`` (blobs) and ``manifests/`` (index and manifests)."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).resolve()

    def __repr__(self) -> str:
        return f"LocalStore({str(self.root)!r})"

    @property
    def location(self) -> str:
        return str(self.root)

    def path(self, relpath: str) -> Path:
        """Absolute path of ``relpath``, refused if it would leave the root.

        Raises:
            InvalidNameError: ``relpath`` is not plain or resolves outside the folder.
        """
        path = (self.root / check_relpath(relpath)).resolve()
        if not path.is_relative_to(self.root):
            msg = f"registry path {relpath!r} resolves outside the registry {self.root}"
            raise InvalidNameError(msg)
        return path

    def read(self, relpath: str, max_size: int | None = None) -> bytes:
        """See ``Store.read``.

        Raises:
            ModelNotFoundError, InvalidNameError, UnreadableFileError: as ``Store.read``.
        """
        try:
            return read_regular_file(self.path(relpath), max_size)
        except FileNotFoundError:
            msg = f"{relpath}: missing from the registry at {self.root}"
            raise ModelNotFoundError(msg) from None

    def exists(self, relpath: str) -> bool:
        """See ``Store.exists``.

        Raises:
            InvalidNameError: as ``Store.exists``.
        """
        return self.path(relpath).is_file()

    def write(self, relpath: str, data: bytes) -> None:
        """See ``Store.write``.

        Raises:
            InvalidNameError: as ``Store.write``.
            OSError: the folder cannot be written.
        """
        atomic_write(self.path(relpath), data)

    def remove(self, relpath: str) -> None:
        """See ``Store.remove``.

        Raises:
            InvalidNameError: as ``Store.remove``.
        """
        with contextlib.suppress(FileNotFoundError):
            self.path(relpath).unlink()

    def list(self, prefix: str) -> list[str]:
        """See ``Store.list``.

        Raises:
            InvalidNameError: as ``Store.list``.
        """
        folder = self.path(prefix)
        if not folder.is_dir():
            return []
        return sorted(
            p.relative_to(self.root).as_posix()
            for p in folder.rglob("*")
            if p.is_file() and not p.name.startswith((TMP_PREFIX, "."))
        )

    @contextlib.contextmanager
    def lock(self, timeout: float = 600.0) -> Iterator[None]:
        """Serialise the writers of this registry (publish, sign, push: every write holds it).

        Raises:
            Timeout (filelock): another writer held the lock for ``timeout`` seconds (ten
                minutes by default).
        """
        lock_path = self.root / "manifests" / ".publish.lock"
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(lock_path, timeout=timeout):
            yield

    def leftovers(self) -> builtins.list[Path]:
        """Temporary files left by interrupted writes (never read as registry content).

        Only this tool's own temporaries count: ``.tmp-*`` regular files directly in
        ``registry/sha256/``, ``manifests/`` and ``manifests/<id>/``. Nothing is looked at
        through a symbolic link, and nothing elsewhere under the root (in a source checkout the
        root is the whole repository) is ever touched.

        Never raises.
        """
        found = []
        for folder in self._own_folders():
            with contextlib.suppress(OSError), os.scandir(folder) as entries:
                for entry in entries:
                    if entry.name.startswith(TMP_PREFIX) and entry.is_file(follow_symlinks=False):
                        found.append(Path(entry.path))
        return sorted(found)

    def _own_folders(self) -> builtins.list[Path]:
        """The folders this store writes files into, each a real folder (not a link)."""

        def real_folder(path: Path) -> bool:
            return not path.is_symlink() and path.is_dir()

        folders = []
        for top in ("registry", "manifests"):
            if not real_folder(self.root / top):
                continue
            if top == "registry":
                if real_folder(self.root / "registry" / "sha256"):
                    folders.append(self.root / "registry" / "sha256")
                continue
            folders.append(self.root / "manifests")
            with contextlib.suppress(OSError), os.scandir(self.root / "manifests") as entries:
                folders += [Path(e.path) for e in entries if e.is_dir(follow_symlinks=False)]
        return folders

    def remove_leftovers(self, older_than: float = LEFTOVER_AGE) -> int:
        """Delete leftovers older than ``older_than`` seconds; return how many.

        Younger ones may belong to a write in progress (one not serialised by the publish lock),
        so they stay; leftovers are never read either way.

        Never raises.
        """
        removed = 0
        cutoff = time.time() - older_than
        for path in self.leftovers():
            with contextlib.suppress(OSError):
                if path.lstat().st_mtime < cutoff:
                    path.unlink()
                    removed += 1
        return removed
