"""Private cache folders: owned by this user and writable by nobody else, or also closed to them.

The per-user cache keeps code: native libraries (``<cache>/native``) and JAX's compiled
programs (``<cache>/jax``). Such code is used only from folders that pass `unsafe_reason`, as
ssh's StrictModes treats ``~/.ssh``: owned by the current user, writable by nobody else (group
write is accepted for the user's own private group, the usual setup with umask 002).

A *closed* folder is also unreachable by anyone else (no group or other permission at all, mode
0700; again group bits only for the user's private group): what is inside it is out of everyone
else's reach whatever the modes of its entries. That is what JAX's cache needs, since JAX
writes its entries with the process's umask (0666 under umask 000).

`make_private_folder` creates a folder with mode 0700; missing parents get what ``mkdir`` gives
them under the user's umask, as for any other folder the user creates.
"""

from __future__ import annotations

import os
import stat
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["make_private_folder", "unsafe_reason"]


def unsafe_reason(path: Path, what: str = "folder", *, closed: bool = False) -> str | None:
    """Why ``path`` cannot be trusted as part of a private cache, or None if it can.

    Trusted: a real folder (or file) owned by the current user, writable by nobody else; with
    ``closed``, also not readable or searchable by anyone else. A folder may be a link the user
    made: its target is checked.

    Never raises.
    """
    try:
        info = path.lstat()
    except OSError as exc:
        return f"cannot inspect {what} {path} ({exc.strerror or exc})"
    if stat.S_ISLNK(info.st_mode) and what == "folder":
        try:
            info = path.stat()
        except OSError as exc:
            return f"cannot inspect {what} {path} ({exc.strerror or exc})"
    expected = stat.S_ISDIR if what == "folder" else stat.S_ISREG
    if not expected(info.st_mode):
        return f"{path} is not a regular {what}"
    if hasattr(os, "getuid") and info.st_uid != os.getuid():
        return f"{what} {path} is owned by uid {info.st_uid}, not by this user (uid {os.getuid()})"
    mode = stat.S_IMODE(info.st_mode)
    if mode & stat.S_IWOTH or (mode & stat.S_IWGRP and not _private_group(info.st_gid)):
        return f"{what} {path} is writable by group or others (mode {mode:03o})"
    if closed and (
        mode & stat.S_IRWXO or (mode & stat.S_IRWXG and not _private_group(info.st_gid))
    ):
        return f"{what} {path} is open to group or others (mode {mode:03o}; it must be 700)"
    return None


def _private_group(gid: int) -> bool:
    """Whether ``gid`` is the user's own private group (named after the user, no other members).

    With such groups the usual umask is 002, so the user's folders are group-writable without
    anyone else being able to write them (Debian's OpenSSH accepts them for the same reason).
    """
    try:
        import grp
        import pwd

        user = pwd.getpwuid(os.getuid())
        group = grp.getgrgid(gid)
    except (ImportError, KeyError, OSError):
        return False
    return (
        gid == user.pw_gid
        and group.gr_name == user.pw_name
        and all(member == user.pw_name for member in group.gr_mem)
        and not any(p.pw_gid == gid and p.pw_uid != user.pw_uid for p in pwd.getpwall())
    )


def make_private_folder(path: Path, *, closed: bool = False) -> str | None:
    """Create ``path`` (mode 0700) if it is missing; why it cannot be trusted, or None.

    Missing parents are created as ``mkdir`` makes them under the user's umask. An existing
    folder is checked as it is, never loosened or tightened (see `unsafe_reason`).

    Never raises.
    """
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        return f"cannot create {path} ({exc.strerror or exc})"
    return unsafe_reason(path, closed=closed)
