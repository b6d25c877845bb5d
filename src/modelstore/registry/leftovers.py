"""Leftovers of killed writers in a registry folder: listed, and removed on request.

A publish, sign or push killed half-way leaves ``.tmp-*`` files beside the blobs and manifests
it was writing (`LocalStore.leftovers` says exactly where it looks). They are never read, and
the next publish removes those older than ten minutes; `registry_leftovers` lists them all at
once, `remove_registry_leftovers` removes them. Every writer of a registry folder holds its
publish lock while it writes, so removal holds the lock too: a write in progress is never
touched (its files are listed as busy, and removal waits for the lock or gives up).
"""

from __future__ import annotations

import contextlib
import os
import time
from typing import TYPE_CHECKING

from modelstore.errors import BusyError, ModelNotFoundError, RemoteError
from modelstore.store.leftovers import Leftover, remove_leftovers
from modelstore.store.local import LocalStore

if TYPE_CHECKING:
    from modelstore.registry.core import Registry

__all__ = ["registry_leftovers", "remove_registry_leftovers"]


def _folder_store(registry: Registry) -> LocalStore:
    store = registry.store
    if not isinstance(store, LocalStore):
        msg = (
            f"{registry.location}: leftovers are looked for in registry folders only (object"
            " stores receive each file whole; elsewhere, clean the folder the registry is"
            " served from)"
        )
        raise RemoteError(msg)
    if not (store.root / "manifests").is_dir():
        msg = f"{store.root}: not a registry folder (it has no manifests/ folder)"
        raise ModelNotFoundError(msg)
    return store


def _leftovers(store: LocalStore, busy: bool) -> list[Leftover]:
    found = []
    now = time.time()
    for path in store.leftovers():
        with contextlib.suppress(OSError):
            info = os.lstat(path)
            found.append(Leftover(path, info.st_size, now - info.st_mtime, busy))
    return found


def _lock_is_free(store: LocalStore) -> bool:
    """Whether no writer holds the publish lock (probed; never created by a mere listing)."""
    from filelock import Timeout

    if not (store.root / "manifests" / ".publish.lock").exists():
        return True  # every writer creates it before it writes
    try:
        with store.lock(timeout=0):
            return True
    except (Timeout, OSError):
        return False


def registry_leftovers(registry: Registry) -> list[Leftover]:
    """The ``.tmp-*`` files killed writers left in a registry folder, by path.

    All are marked busy while another process holds the registry's publish lock (a write in
    progress may own some of them).

    Raises:
        RemoteError: the registry is not a folder.
        ModelNotFoundError: the folder is not a registry.
    """
    store = _folder_store(registry)
    return _leftovers(store, busy=not _lock_is_free(store))


def remove_registry_leftovers(registry: Registry, wait: float = 10.0) -> list[Leftover]:
    """Delete the leftovers of a registry folder, holding its publish lock; return them.

    Holding the lock, no writer is half-way, so every ``.tmp-*`` file found then is a
    leftover. Only those files are deleted: nothing else in the folder, nothing through a link.

    Raises:
        RemoteError: the registry is not a folder.
        ModelNotFoundError: the folder is not a registry.
        BusyError: another process held the publish lock for ``wait`` seconds.
    """
    from filelock import Timeout

    store = _folder_store(registry)
    try:
        with store.lock(timeout=wait):
            return remove_leftovers(_leftovers(store, busy=False))
    except Timeout:
        msg = (
            f"{registry.location}: another process is writing the registry (it holds"
            f" {store.root / 'manifests' / '.publish.lock'}); try again when it is done"
        )
        raise BusyError(msg) from None
