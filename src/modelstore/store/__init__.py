"""Where a registry's bytes live: the store contract, the local folder, fsspec URLs, the cache.

``open_store`` picks a store from a location; ``contract`` holds the abstract ``Store`` and its
optional abilities; ``modelstore.testing.store.StoreTests`` checks any implementation.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from modelstore.errors import InvalidNameError
from modelstore.store.contract import (
    TMP_PREFIX,
    Store,
    SupportsLeftovers,
    SupportsLocalPath,
    SupportsLocking,
    check_relpath,
    is_url,
)
from modelstore.store.local import LocalStore
from modelstore.store.remote import RemoteStore

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = [
    "TMP_PREFIX",
    "LocalStore",
    "RemoteStore",
    "Store",
    "SupportsLeftovers",
    "SupportsLocalPath",
    "SupportsLocking",
    "check_relpath",
    "is_url",
    "open_store",
]


def open_store(
    location: str | os.PathLike[str], storage_options: Mapping[str, Any] | None = None
) -> Store:
    """A LocalStore for a folder (or ``file://`` URL), else a RemoteStore through fsspec.

    Raises:
        InvalidNameError: storage options were given for a local folder.
        RemoteError: the URL's scheme is unknown, or the remote cannot be opened.
        MissingExtraError: the URL needs an extra that is not installed (``s3://``: ``[s3]``).
    """
    if is_url(location):
        return RemoteStore(str(location), storage_options)
    if storage_options:
        msg = f"storage options were given for the local folder {location}; they apply to URLs only"
        raise InvalidNameError(msg)
    if isinstance(location, str) and location.startswith("file://"):
        location = location.removeprefix("file://")
    return LocalStore(location)
