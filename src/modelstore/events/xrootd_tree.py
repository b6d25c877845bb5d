"""Folders on an XRootD server: checked for symbolic links, moved, replaced, deleted.

Symbolic links on the server's disk: the server stats through them (a link to a folder is
listed as a folder, one to a file as a file, with the id of what it points to), and xrootd's
file system removes or renames a link's *target* along with the link (as it does for the
links of its cache spaces). So before anything is moved or deleted, `check_tree` looks for
links the ways the protocol allows, and refuses the whole folder if it finds one:

- a folder whose ``..`` is not the folder it is listed in (the server resolves ``NAME/..``
  through the link, to the folder that holds the link's target);
- two entries that are the same file or folder (a link to a neighbour);
- an entry the server lists but cannot stat (a dangling link);
- an entry that is neither a file nor a folder.

A link to a file outside the folder is shown as a file by the protocol and cannot be seen;
only someone with access to the server's disk can make one.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from modelstore.errors import EventFileError, OutputError, RemoteError
from modelstore.events.xrootd_store import _client, _Server

if TYPE_CHECKING:
    from typing import Any

__all__ = ["check_tree", "move_tree", "remove_tree", "replace_tree"]


def _linked(server: _Server, key: str, what: str) -> OutputError:
    where = f"{server.url}/{key}" if key else server.url
    return OutputError(
        f"{where}: {what}; refusing to replace or delete {server.url} (the server would act on"
        " what a symbolic link points to)"
    )


def _own_entries(server: _Server, key: str, folder_id: str) -> list[tuple[str, bool, str]]:
    """(name, is a folder, id) of what folder ``key`` holds, each checked to be no link."""
    flags = _client()[4]
    names, stats = server.listings(key)
    seen: dict[str, str] = {}
    entries = []
    for name in sorted(names):
        rel = f"{key}/{name}" if key else name
        info: Any = stats.get(name)
        if info is None:
            raise _linked(server, rel, "is listed but cannot be inspected (a dangling link?)")
        if info.flags & flags.OTHER:
            raise _linked(server, rel, "is neither a file nor a folder")
        if str(info.id) in seen:
            raise _linked(server, rel, f"is the same file or folder as {seen[str(info.id)]}")
        seen[str(info.id)] = rel
        is_dir = bool(info.flags & flags.IS_DIR)
        if is_dir and server.parent_id(rel) != folder_id:
            raise _linked(server, rel, "is a symbolic link to a folder elsewhere")
        entries.append((name, is_dir, str(info.id)))
    return entries


def _checked_walk(server: _Server) -> tuple[list[str], list[str]] | None:
    """Files and folders under the server's folder (parents first); None if it is missing.

    The folder itself must be a real folder of the folder holding it, and nothing under it a
    link (see the module's docstring).
    """
    info = server.stat("")
    if info is None:
        return None
    if not info.flags & _client()[4].IS_DIR:
        raise _linked(server, "", "is not a folder")
    above = server.stat("", above=True)
    if above is None or server.parent_id("") != str(above.id):
        raise _linked(server, "", "is a symbolic link to a folder elsewhere")
    name = server.root.rpartition("/")[2]
    _, neighbours = server.listings("", above=True)
    twins = [n for n, s in neighbours.items() if n != name and str(s.id) == str(info.id)]
    if twins:
        raise _linked(server, "", f"is the same folder as its neighbour {twins[0]}")
    files: list[str] = []
    folders: list[str] = []
    pending = [("", str(info.id))]
    while pending:
        folder, folder_id = pending.pop()
        for entry, is_dir, entry_id in _own_entries(server, folder, folder_id):
            rel = f"{folder}/{entry}" if folder else entry
            (folders if is_dir else files).append(rel)
            if is_dir:
                pending.append((rel, entry_id))
    return files, folders


def check_tree(url: str) -> None:
    """Refuse the folder at ``url`` if it is, or holds, a symbolic link (as far as visible).

    See the module's docstring for what the XRootD protocol lets a client see. Nothing
    happens if the folder is missing.

    Raises:
        ImportError: the XRootD bindings are not installed.
        EventFileError: not a ``root://`` URL with a path.
        OutputError: a link, a dangling or special entry, or the server cannot be asked.
        RemoteError: the server refused a listing or a stat.
    """
    _checked_walk(_Server(url))


def remove_tree(url: str) -> None:
    """Delete the folder at ``url`` and everything under it (nothing if it is missing).

    The whole folder is checked first (`check_tree`): one that is or holds a symbolic link is
    refused before anything is deleted.

    Raises:
        ImportError: the XRootD bindings are not installed.
        EventFileError: not a ``root://`` URL with a path.
        OutputError: the folder is, or holds, a link (see `check_tree`).
        RemoteError: the server refused a listing or a deletion.
    """
    server = _Server(url)
    found = _checked_walk(server)
    if found is None:
        return
    files, folders = found
    for key in files:
        server.remove(key)
    for key in reversed(folders):
        server.remove_folder(key)
    server.remove_folder("")


def move_tree(source: str, target: str) -> None:
    """Rename the folder at ``source`` to ``target`` (one server; ``target`` must not exist).

    Raises:
        ImportError: the XRootD bindings are not installed.
        EventFileError: not ``root://`` URLs with a path, or on two different servers.
        RemoteError: the server refused the rename.
    """
    old, new = _Server(source), _Server(target)
    if old.hostid != new.hostid:
        msg = f"{source} -> {target}: a rename cannot cross servers"
        raise EventFileError(msg)
    status, _ = old.fs.mv(old.root, new.root, timeout=old.timeout)
    if not status.ok:
        raise old.fail(f"cannot rename to {new.root}", "", status)


def replace_tree(source: str, target: str) -> None:
    """Rename the folder at ``source`` to ``target``, replacing a folder that is there.

    The old ``target`` is checked (`check_tree`), renamed aside to a hidden name, replaced by
    ``source``, and deleted only then; if the rename of ``source`` fails it is put back.

    Raises:
        ImportError: the XRootD bindings are not installed.
        EventFileError: not ``root://`` URLs with a path, or on two different servers.
        OutputError: the old target is, or holds, a link (nothing moved); or it could not be
            deleted after the replacement (the message says where it is).
        RemoteError: the server refused a rename, listing or deletion.
    """
    if _Server(target).stat("") is None:
        move_tree(source, target)
        return
    check_tree(target)
    head, _, name = target.rstrip("/").rpartition("/")
    aside = f"{head}/.{name}.old-{uuid.uuid4().hex[:12]}"
    move_tree(target, aside)
    try:
        move_tree(source, target)
    except BaseException:
        move_tree(aside, target)
        raise
    try:
        remove_tree(aside)
    except (OutputError, RemoteError) as exc:
        msg = (
            f"{target}: written, but the previous output, moved to {aside}, could not be"
            f" deleted ({exc}); delete it yourself"
        )
        raise OutputError(msg) from None
