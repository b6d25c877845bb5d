"""The store contract: what every registry store does, and the optional abilities some have.

A store holds files under relative paths such as ``manifests/index.json`` or
``registry/sha256/<hex>``. Every path is built from validated names and digests and checked
before use. Writes are atomic: a reader sees the old file or the new one, never half of one.

Optional abilities are runtime-checkable protocols (ask "can you?", not "are you local?"):
``SupportsLocking`` (serialise publishers), ``SupportsLeftovers`` (list and remove temporaries
of interrupted writes) and ``SupportsLocalPath`` (files are paths on this machine). Whether a
store accepts writes at all is the flag ``Store.supports_writes``. The conformance suite every
store must pass ships in ``modelstore.testing.store``.
"""

from __future__ import annotations

import abc
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from modelstore.errors import InvalidNameError
from modelstore.redaction import redact

if TYPE_CHECKING:
    from contextlib import AbstractContextManager
    from pathlib import Path

__all__ = [
    "TMP_PREFIX",
    "Store",
    "SupportsLeftovers",
    "SupportsLocalPath",
    "SupportsLocking",
    "check_relpath",
    "is_url",
]

TMP_PREFIX = ".tmp-"


def check_relpath(relpath: str) -> str:
    """Return ``relpath`` if it is a plain relative path with no empty, ``.`` or ``..`` parts.

    Raises:
        InvalidNameError: anything else (absolute, ``..``, backslashes, NUL, empty parts).
    """
    parts = relpath.split("/") if isinstance(relpath, str) else []
    if (
        not parts
        or not relpath
        or relpath.startswith("/")
        or "\x00" in relpath
        or "\\" in relpath
        or any(p in ("", ".", "..") for p in parts)
    ):
        msg = f"refusing registry path {relpath!r}"
        raise InvalidNameError(msg)
    return relpath


def is_url(location: object) -> bool:
    """True for ``scheme://...`` strings other than ``file://`` (those are local folders).

    Never raises.
    """
    return isinstance(location, str) and "://" in location and not location.startswith("file://")


class Store(abc.ABC):
    """The contract every registry store fulfils: read, exists, atomic write, list, remove.

    Every method checks its ``relpath`` with ``check_relpath`` (InvalidNameError otherwise).
    """

    #: False for read-only stores (plain HTTP): ``write`` and ``remove`` raise RemoteError.
    supports_writes: bool = True

    @property
    @abc.abstractmethod
    def location(self) -> str:
        """The folder path or URL of the store as shown: a URL's password is ``***``."""

    @property
    def address(self) -> str:
        """What opens this store again (``open_store``): ``location``, with a URL's password.

        Never shown to the user (messages, outputs and cache records use ``location``).
        """
        return self.location

    @abc.abstractmethod
    def read(self, relpath: str, max_size: int | None = None) -> bytes:
        """The bytes of ``relpath``.

        With ``max_size``, at most ``max_size + 1`` bytes are read, so a caller that expects a
        given size can refuse an oversized file without holding all of it.

        Raises:
            ModelNotFoundError: ``relpath`` is not a file in the store.
            InvalidNameError: ``relpath`` is not a plain relative path.
            RemoteError: a remote store could not be reached or read.
            UnreadableFileError: a local path is something other than a regular file.
        """

    @abc.abstractmethod
    def exists(self, relpath: str) -> bool:
        """True if ``relpath`` is a file in the store.

        Raises:
            InvalidNameError: ``relpath`` is not a plain relative path.
            RemoteError: a remote store could not be reached.
        """

    @abc.abstractmethod
    def write(self, relpath: str, data: bytes) -> None:
        """Store ``data`` at ``relpath`` atomically (readers never see a partial file).

        Raises:
            InvalidNameError: ``relpath`` is not a plain relative path.
            RemoteError: the store is read-only or could not be written.
        """

    @abc.abstractmethod
    def list(self, prefix: str) -> list[str]:
        """Sorted relative paths of the files under the folder ``prefix`` (no temporary files).

        Raises:
            InvalidNameError: ``prefix`` is not a plain relative path.
            RemoteError: a remote store could not be listed.
        """

    @abc.abstractmethod
    def remove(self, relpath: str) -> None:
        """Delete ``relpath`` if it exists (used only for a signature that no longer applies).

        Raises:
            InvalidNameError: ``relpath`` is not a plain relative path.
            RemoteError: the store is read-only or could not be written.
        """

    def where(self, relpath: str) -> str:
        """Where ``relpath`` lives, for messages (a full path or URL, without a password).

        Never raises.
        """
        return redact(f"{self.location.rstrip('/')}/{relpath}")


@runtime_checkable
class SupportsLocking(Protocol):
    """A store that can serialise publishers (the index read-modify-write)."""

    def lock(self) -> AbstractContextManager[None]:
        """Hold the publish lock while the context is open.

        Raises:
            Timeout (filelock): another publisher holds the lock for too long.
        """
        ...


@runtime_checkable
class SupportsLeftovers(Protocol):
    """A store that can list and remove temporaries of interrupted writes."""

    def leftovers(self) -> list[Path]:
        """Temporary files left by interrupted writes.

        Never raises.
        """
        ...

    def remove_leftovers(self, older_than: float = ...) -> int:
        """Delete leftovers older than ``older_than`` seconds; return how many.

        Never raises.
        """
        ...


@runtime_checkable
class SupportsLocalPath(Protocol):
    """A store whose files are paths on this machine (a folder)."""

    root: Path

    def path(self, relpath: str) -> Path:
        """The local path of ``relpath``.

        Raises:
            InvalidNameError: ``relpath`` is not plain or resolves outside the folder.
        """
        ...
