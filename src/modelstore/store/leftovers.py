"""Leftovers of interrupted writes: what a killed writer leaves, listed and removed on request.

Every write of a registry folder or of the cache goes through a temporary that is renamed
into place when complete, so a writer killed half-way (``kill -9``, a full disk, a power cut)
leaves only the temporary: a ``.tmp-*`` file beside the file it was to become, or in the
cache's ``native/`` folder a ``.build-*`` folder of a compile (``.bad-*``: of a broken build
being thrown away). Nothing ever reads them; they only take space.

A `Leftover` is one of them, found only under these names, only directly in the folders that
those writers use, never through a symbolic link (a link is never one). One that may belong
to a write still in progress is marked ``busy`` and never removed: a file younger than the
caller's age limit, a build whose lock another process holds. `remove_leftovers` deletes the
others, each checked again just before.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence

__all__ = [
    "BUILD_PREFIX",
    "DISCARD_PREFIX",
    "Leftover",
    "build_in_progress",
    "find_leftovers",
    "newest_change",
    "remove_leftovers",
]

#: the folder a native build is made in (``modelstore._native.build``; renamed to its key when
#: complete), and a broken entry being thrown away: what a killed build leaves in ``native/``
BUILD_PREFIX = ".build-"
DISCARD_PREFIX = ".bad-"


@dataclass(frozen=True)
class Leftover:
    """A temporary of an interrupted write: its path, bytes, age, and whether it may be in use.

    Attributes:
        path: the file or folder.
        size: its bytes (a folder's: the regular files in it).
        age: seconds since it was last modified.
        busy: it may belong to a write in progress; never removed.
        folder: it is a folder (else a regular file).
    """

    path: Path
    size: int
    age: float
    busy: bool = False
    folder: bool = False

    def describe(self) -> str:
        """One line for a listing: the path, its size and age, and ``busy`` if it is.

        Never raises.
        """
        state = "  (may be in progress: kept)" if self.busy else ""
        return f"{self.path}  {self.size} bytes  {_age(self.age)} old{state}"


def _age(seconds: float) -> str:
    for unit, length in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= length:
            return f"{seconds / length:.0f} {unit}"
    return f"{max(seconds, 0):.0f} s"


def _folder_size(folder: Path) -> int:
    total = 0
    for root, _, files in os.walk(folder):  # links to folders are not followed
        for name in files:
            with contextlib.suppress(OSError):
                info = os.lstat(os.path.join(root, name))
                total += info.st_size if stat.S_ISREG(info.st_mode) else 0
    return total


def newest_change(path: Path) -> float:
    """The latest modification time of ``path`` and, for a folder, of anything in it.

    Links are not followed. Never raises: what cannot be read counts as changed now.
    """
    try:
        newest = os.lstat(path).st_mtime
        for root, folders, files in os.walk(path):
            for name in (*folders, *files):
                newest = max(newest, os.lstat(os.path.join(root, name)).st_mtime)
    except OSError:
        return time.time()
    return newest


def find_leftovers(
    folders: Iterable[Path],
    prefixes: Sequence[str],
    *,
    directories: bool = False,
    min_age: float = 0.0,
    busy: Callable[[Path], bool] | None = None,
) -> list[Leftover]:
    """The entries directly in ``folders`` whose names start with one of ``prefixes``.

    Only regular files count (with ``directories``: only folders), never a symbolic link;
    a folder that is itself a link, or missing, is skipped. An entry younger than
    ``min_age`` seconds, or for which ``busy(path)`` is true, is marked busy.

    Never raises: what cannot be read is left out.
    """
    found = []
    now = time.time()
    for folder in folders:
        if folder.is_symlink() or not folder.is_dir():
            continue
        with contextlib.suppress(OSError), os.scandir(folder) as entries:
            for entry in entries:
                if not entry.name.startswith(tuple(prefixes)):
                    continue
                try:
                    info = entry.stat(follow_symlinks=False)
                except OSError:
                    continue
                wanted = stat.S_ISDIR if directories else stat.S_ISREG
                if not wanted(info.st_mode):
                    continue
                path = Path(entry.path)
                age = now - info.st_mtime
                size = _folder_size(path) if directories else info.st_size
                in_use = age < min_age or (busy is not None and busy(path))
                found.append(Leftover(path, size, age, in_use, directories))
    return sorted(found, key=lambda leftover: leftover.path)


def remove_leftovers(leftovers: Iterable[Leftover]) -> list[Leftover]:
    """Delete the leftovers that are not busy; return those deleted.

    Each is checked again just before: still of the kind it was found as (a regular file, or
    a folder, not a link). A folder is deleted without following links inside it.

    Never raises: one that cannot be deleted is left (and not returned).
    """
    removed = []
    for leftover in leftovers:
        if leftover.busy:
            continue
        try:
            mode = os.lstat(leftover.path).st_mode
            if not leftover.folder and stat.S_ISREG(mode):
                os.unlink(leftover.path)
            elif leftover.folder and stat.S_ISDIR(mode) and shutil.rmtree.avoids_symlink_attacks:
                shutil.rmtree(leftover.path)
            else:
                continue
        except OSError:
            continue
        removed.append(leftover)
    return removed


def build_in_progress(workdir: Path) -> bool:
    """Whether a ``.build-*`` folder in the cache's ``native/`` may belong to a running build.

    A build runs holding ``native/<key>.lock`` (the folder's name has the key's first twelve
    digits): if any lock of those keys is held, or cannot be tried, it may be.

    Never raises.
    """
    from filelock import FileLock, Timeout

    short = workdir.name.removeprefix(BUILD_PREFIX)[:12]
    for lock_path in workdir.parent.glob(f"{short}*.lock"):
        try:
            with FileLock(lock_path, timeout=0):
                pass
        except (Timeout, OSError):
            return True
    return False
