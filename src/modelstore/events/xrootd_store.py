"""A zarr 3 store on an XRootD server (``root://HOST//path/events.zarr``), through XRootD's client.

fsspec-xrootd 0.5 cannot back zarr's FsspecStore (no asynchronous instance outside a running
loop, no ``pipe_file``, a ``cat_file`` that needs a byte range and reuses stale file handles),
so `XRootDStore` speaks to the server with the XRootD Python client itself: each call opens
anew (no handle or listing cache, no search for other copies), blocking calls run in threads,
and every request carries the registry code's timeout (``$MODELSTORE_TIMEOUT``).

A store is written in place; modelstore writes one under a hidden staged name and renames the
whole folder into place once complete (`xrootd_tree`: moves, replacements and deletions of
folders on the server, checked for symbolic links).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from zarr.abc.store import (
    ByteRequest,
    OffsetByteRequest,
    RangeByteRequest,
    Store,
    SuffixByteRequest,
)
from zarr.core.buffer import default_buffer_prototype

from modelstore.errors import EventFileError, OutputError, RemoteError
from modelstore.redaction import redact
from modelstore.store.fsspec_options import with_timeouts

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterable

    from zarr.core.buffer import Buffer, BufferPrototype

__all__ = ["XRootDStore"]

_PIECE = 8 << 20  # bytes per read or write request
# XRootD's kXR_NotFound and kXR_isDirectory: "no such file", and a folder opened as a file
_NOT_FOUND = 3011
_IS_DIRECTORY = 3016


def _client() -> Any:
    """The XRootD client module and its flags (``pip install 'modelstore[xrootd]'``)."""
    from XRootD import client
    from XRootD.client.flags import DirListFlags, MkDirFlags, OpenFlags, StatInfoFlags

    return client, DirListFlags, MkDirFlags, OpenFlags, StatInfoFlags


class _Server:
    """One folder on one server: its client, the folder's path and the request timeout."""

    def __init__(self, url: str) -> None:
        client = _client()[0]
        parsed = client.URL(url)
        if not parsed.is_valid() or not parsed.path.strip("/"):
            msg = f"{url}: not a valid root://HOST//path URL"
            raise EventFileError(msg)
        self.url = url.rstrip("/")
        self.hostid = parsed.hostid
        self.root = "/" + parsed.path.strip("/")
        self.timeout = int(with_timeouts("root", {})["timeout"])
        self.fs = client.FileSystem(f"root://{self.hostid}")

    def path(self, key: str) -> str:
        return f"{self.root}/{key}" if key else self.root

    def fail(self, what: str, key: str, status: Any) -> RemoteError:
        message = " ".join(str(status.message).split())
        return RemoteError(f"root://{self.hostid}/{self.path(key)}: {what} ({message})")

    def read(self, key: str, byte_range: ByteRequest | None) -> bytes | None:
        """The bytes of ``key`` (within ``byte_range``), or None if there is no such file."""
        client, _, _, flags, _ = _client()
        f = client.File()
        status, _ = f.open(
            f"root://{self.hostid}/{self.path(key)}", flags.READ, timeout=self.timeout
        )
        if not status.ok:
            if status.errno in (_NOT_FOUND, _IS_DIRECTORY):
                return None
            raise self.fail("cannot open", key, status)
        try:
            status, info = f.stat(timeout=self.timeout)
            if not status.ok:
                raise self.fail("cannot stat", key, status)
            start, stop = _span(byte_range, int(info.size))
            pieces = []
            while start < stop:
                status, data = f.read(start, min(_PIECE, stop - start), timeout=self.timeout)
                if not status.ok:
                    raise self.fail("cannot read", key, status)
                if not data:
                    break
                pieces.append(data)
                start += len(data)
            return b"".join(pieces)
        finally:
            f.close(timeout=self.timeout)

    def write(self, key: str, data: bytes) -> None:
        """Create or replace ``key`` (and the folders above it) with ``data``."""
        client, _, _, flags, _ = _client()
        f = client.File()
        url = f"root://{self.hostid}/{self.path(key)}"
        status, _ = f.open(url, flags.DELETE | flags.MAKEPATH, timeout=self.timeout)
        if not status.ok:
            raise self.fail("cannot create", key, status)
        try:
            for offset in range(0, len(data), _PIECE):
                piece = data[offset : offset + _PIECE]
                status, _ = f.write(piece, offset, len(piece), timeout=self.timeout)
                if not status.ok:
                    raise self.fail("cannot write", key, status)
        finally:
            closed, _ = f.close(timeout=self.timeout)
        if not closed.ok:
            raise self.fail("cannot write", key, closed)

    def stat(self, key: str, *, above: bool = False) -> Any | None:
        """The server's StatInfo of ``key`` (``above``: of the folder holding the root), or None
        if there is none."""
        path = (self.root.rpartition("/")[0] or "/") if above else self.path(key)
        status, info = self.fs.stat(path, timeout=self.timeout)
        if status.ok:
            return info
        if status.errno == _NOT_FOUND:
            return None
        raise self.fail("cannot stat", key, status)

    def entries(self, key: str) -> list[tuple[str, bool]]:
        """(name, is a folder) of what folder ``key`` holds; empty if it is missing."""
        _, listing, _, _, stat_flags = _client()
        status, found = self.fs.dirlist(self.path(key), listing.STAT, timeout=self.timeout)
        if not status.ok:
            if status.errno == _NOT_FOUND or self.stat(key) is None:
                return []
            raise self.fail("cannot list", key, status)
        return [(e.name, bool(e.statinfo.flags & stat_flags.IS_DIR)) for e in found]

    def listings(self, key: str, *, above: bool = False) -> tuple[list[str], dict[str, Any]]:
        """The names in folder ``key`` (``above``: in the folder holding this one's root), and
        the StatInfo of those the server could stat, by name."""
        _, listing, _, _, _ = _client()
        path = (self.root.rpartition("/")[0] or "/") if above else self.path(key)
        found = []
        for flag in (listing.NONE, listing.STAT):
            status, entries = self.fs.dirlist(path, flag, timeout=self.timeout)
            if not status.ok:
                raise self.fail("cannot list", key, status)
            found.append(entries)
        return [e.name for e in found[0]], {e.name: e.statinfo for e in found[1] if e.statinfo}

    def parent_id(self, key: str) -> str:
        """The id of ``key/..`` as the server's file system resolves it (through links)."""
        status, info = self.fs.stat(f"{self.path(key)}/..", timeout=self.timeout)
        if not status.ok:
            message = " ".join(str(status.message).split())
            msg = (
                f"root://{self.hostid}/{self.path(key)}: cannot check it for symbolic links"
                f" (the server does not stat NAME/..: {message}); refusing to replace or"
                " delete it"
            )
            raise OutputError(msg)
        return str(info.id)

    def walk(self, key: str) -> tuple[list[str], list[str]]:
        """Files and folders under folder ``key`` (relative to the root), folders parents first."""
        files: list[str] = []
        folders: list[str] = []
        pending = [key]
        while pending:
            folder = pending.pop()
            for name, is_dir in self.entries(folder):
                rel = f"{folder}/{name}" if folder else name
                (folders if is_dir else files).append(rel)
                if is_dir:
                    pending.append(rel)
        return files, folders

    def remove(self, key: str) -> None:
        status, _ = self.fs.rm(self.path(key), timeout=self.timeout)
        if not status.ok and status.errno != _NOT_FOUND:
            raise self.fail("cannot delete", key, status)

    def remove_folder(self, key: str) -> None:
        status, _ = self.fs.rmdir(self.path(key), timeout=self.timeout)
        if not status.ok and status.errno != _NOT_FOUND:
            raise self.fail("cannot delete the folder", key, status)


def _span(byte_range: ByteRequest | None, size: int) -> tuple[int, int]:
    """The [start, stop) bytes of a file of ``size`` bytes that ``byte_range`` asks for."""
    if byte_range is None:
        return 0, size
    if isinstance(byte_range, RangeByteRequest):
        return min(byte_range.start, size), min(byte_range.end, size)
    if isinstance(byte_range, OffsetByteRequest):
        return min(byte_range.offset, size), size
    if isinstance(byte_range, SuffixByteRequest):
        return max(0, size - byte_range.suffix), size
    msg = f"unexpected byte range {byte_range!r}"
    raise EventFileError(msg)


class XRootDStore(Store):
    """A zarr store in a folder on an XRootD server.

    Args:
        url: ``root://HOST[:PORT]//path/to/store.zarr``.
        read_only: refuse writes and deletes.

    Raises:
        ImportError: the XRootD bindings are not installed.
        EventFileError: the URL is not a valid ``root://`` URL with a path.
    """

    supports_writes = True
    supports_deletes = True
    supports_listing = True

    def __init__(self, url: str, *, read_only: bool = False) -> None:
        super().__init__(read_only=read_only)
        self._server = _Server(url)
        self.url = self._server.url

    def __repr__(self) -> str:
        return f"XRootDStore({str(self)!r})"

    def __str__(self) -> str:
        return redact(self.url)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, XRootDStore) and (other.url, other.read_only) == (
            self.url,
            self.read_only,
        )

    def __hash__(self) -> int:
        return hash((self.url, self.read_only))

    def __getstate__(self) -> dict[str, Any]:
        return {"url": self.url, "read_only": self.read_only}

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Pickled by its URL (a client connection does not travel): reconnects on arrival."""
        self.__init__(state["url"], read_only=state["read_only"])  # type: ignore[misc]

    def with_read_only(self, read_only: bool = False) -> XRootDStore:
        """The same store, read-only or not.

        Never raises.
        """
        return XRootDStore(self.url, read_only=read_only)

    async def get(
        self,
        key: str,
        prototype: BufferPrototype | None = None,
        byte_range: ByteRequest | None = None,
    ) -> Buffer | None:
        """The value of ``key``, or None if there is none.

        Raises:
            RemoteError: the server refused or failed the read.
        """
        data = await asyncio.to_thread(self._server.read, key, byte_range)
        if data is None:
            return None
        return (prototype or default_buffer_prototype()).buffer.from_bytes(data)

    async def get_partial_values(
        self, prototype: BufferPrototype, key_ranges: Iterable[tuple[str, ByteRequest | None]]
    ) -> list[Buffer | None]:
        """`get` of each (key, byte range).

        Raises:
            RemoteError: as `get`.
        """
        return list(await asyncio.gather(*(self.get(k, prototype, r) for k, r in key_ranges)))

    async def exists(self, key: str) -> bool:
        """True if ``key`` is a file in the store.

        Raises:
            RemoteError: the server could not say.
        """
        info = await asyncio.to_thread(self._server.stat, key)
        return info is not None and not info.flags & _client()[4].IS_DIR

    async def set(self, key: str, value: Buffer) -> None:
        """Write ``value`` at ``key``.

        Raises:
            ValueError: the store is read-only (zarr's own check).
            RemoteError: the server refused or failed the write.
        """
        self._check_writable()
        await asyncio.to_thread(self._server.write, key, value.to_bytes())

    async def delete(self, key: str) -> None:
        """Delete ``key`` (nothing happens if it is missing).

        Raises:
            ValueError: the store is read-only (zarr's own check).
            RemoteError: the server refused the deletion.
        """
        self._check_writable()
        await asyncio.to_thread(self._server.remove, key)

    async def list(self) -> AsyncIterator[str]:
        """Every key of the store.

        Raises:
            RemoteError: the server failed a listing.
        """
        async for key in self.list_prefix(""):
            yield key

    async def list_prefix(self, prefix: str) -> AsyncIterator[str]:
        """Every key that starts with ``prefix``.

        Raises:
            RemoteError: the server failed a listing.
        """
        files, _ = await asyncio.to_thread(self._server.walk, prefix.rpartition("/")[0])
        for key in sorted(files):
            if key.startswith(prefix):
                yield key

    async def list_dir(self, prefix: str) -> AsyncIterator[str]:
        """The names (files and folders) directly under ``prefix``.

        Raises:
            RemoteError: the server failed the listing.
        """
        entries = await asyncio.to_thread(self._server.entries, prefix.strip("/"))
        for name, _ in sorted(entries):
            yield name
