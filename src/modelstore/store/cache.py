"""The per-user cache of remote registries: verified, content-addressed, shared by processes.

Layout under ``$MODELSTORE_CACHE_DIR`` (else the per-user cache folder):

- ``blobs/sha256/<hex>``: files and manifests, named by the digest of their bytes. A blob is
  verified before it enters (and again whenever it is read); it is written to a unique
  temporary file in the same folder and renamed into place, so a partial download is never
  visible and two processes storing the same blob both succeed.
- ``registries/<name>.json``: for each remote registry, the digests of the last index (and
  signature) that passed every check; offline mode reads the index through it.
- ``trust/<name>.json``: what the client has seen of each registry (see
  ``modelstore.trust.policy``).
- ``native/``: compiled evaluators (``modelstore._native``); not managed here.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from modelstore.errors import IntegrityError, ManifestError, ModelstoreError, UnreadableFileError
from modelstore.format.jsondoc import load_document
from modelstore.store.hashing import bytes_digest, check_bytes, parse_digest
from modelstore.store.leftovers import (
    BUILD_PREFIX,
    DISCARD_PREFIX,
    Leftover,
    build_in_progress,
    find_leftovers,
    remove_leftovers,
)
from modelstore.store.local import LEFTOVER_AGE, TMP_PREFIX, atomic_write, read_regular_file

__all__ = [
    "CACHE_ENV",
    "BlobCache",
    "Cache",
    "CachedIndex",
    "CachedRegistry",
    "CachedVersion",
    "cache_dir",
]

CACHE_ENV = "MODELSTORE_CACHE_DIR"
_log = logging.getLogger("modelstore.store.cache")


def cache_dir() -> Path:
    """``$MODELSTORE_CACHE_DIR``, else the per-user cache folder (platformdirs).

    Never raises.
    """
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("modelstore"))


def location_name(location: str) -> str:
    """The file name under which the cache keeps what belongs to one registry location."""
    return hashlib.sha256(location.encode()).hexdigest()[:24]


@dataclass(frozen=True)
class BlobEntry:
    digest: str
    size: int
    path: Path


class BlobCache:
    """Content-addressed, verified blobs: ``<root>/sha256/<hex>``."""

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        self.root = Path(root) if root is not None else cache_dir() / "blobs"

    def __repr__(self) -> str:
        return f"BlobCache({str(self.root)!r})"

    def path(self, digest: str) -> Path:
        """The cache path of the blob of ``digest``.

        Raises:
            ManifestError: ``digest`` is malformed.
        """
        return self.root / "sha256" / parse_digest(digest)

    def contains(self, digest: str) -> bool:
        """True if the blob of ``digest`` is cached (unverified).

        Never raises.
        """
        return self.path(digest).is_file()

    def get(self, digest: str, size: int | None = None) -> bytes | None:
        """The cached bytes of ``digest`` if present and intact; a corrupt entry is evicted.

        Never raises: a corrupt entry is evicted and None returned.
        """
        path = self.path(digest)
        try:
            # never a FIFO or a link to /dev/zero: those would block or never end
            data = read_regular_file(path, size, follow_symlinks=False)
        except FileNotFoundError:
            return None
        except UnreadableFileError as exc:
            _log.warning("evicting a cache entry that is not a regular file: %s", exc)
            with contextlib.suppress(OSError):
                path.unlink()
            return None
        try:
            return check_bytes(
                data, name=f"cached {path}", size=len(data) if size is None else size, digest=digest
            )
        except IntegrityError as exc:
            _log.warning("evicting a corrupt cache entry: %s", exc)
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            return None

    def put(self, digest: str, data: bytes) -> Path:
        """Store verified ``data`` under ``digest`` (temporary file, fsync, rename).

        Raises:
            IntegrityError: ``data`` does not match ``digest``.
            OSError: the cache cannot be written.
        """
        check_bytes(data, name=f"blob for the cache {self.root}", size=len(data), digest=digest)
        path = self.path(digest)
        atomic_write(path, data)
        return path

    def entries(self) -> list[BlobEntry]:
        """The cached blobs, by path.

        Never raises.
        """
        folder = self.root / "sha256"
        if not folder.is_dir():
            return []
        found = []
        for path in sorted(folder.iterdir()):
            if path.is_file() and not path.name.startswith(TMP_PREFIX):
                found.append(BlobEntry(f"sha256:{path.name}", path.stat().st_size, path))
        return found

    def verify(self) -> list[tuple[BlobEntry, str]]:
        """``(entry, problem)`` for every entry whose bytes do not hash to its name ('' if fine).

        Never raises: each problem is reported in the result.
        """
        results = []
        for entry in self.entries():
            try:
                parse_digest(entry.digest)
                actual = bytes_digest(entry.path.read_bytes())
            except (ManifestError, OSError) as exc:
                results.append((entry, str(exc)))
                continue
            problem = (
                "" if actual == entry.digest else f"digest mismatch: the bytes hash to {actual}"
            )
            results.append((entry, problem))
        return results

    def leftovers(self) -> list[Path]:
        """Temporary files of interrupted writes (never read as cache content).

        Never raises.
        """
        folder = self.root / "sha256"
        return sorted(folder.glob(f"{TMP_PREFIX}*")) if folder.is_dir() else []


@dataclass(frozen=True)
class CachedIndex:
    """The last verified index of one registry location, as the cache records it."""

    location: str
    index_digest: str
    signature_digest: str | None
    index_version: int
    fetched: str


class CachedRegistry:
    """Per-location records of the last verified index (``<cache>/registries/``)."""

    def __init__(self, blobs: BlobCache, folder: str | os.PathLike[str] | None = None) -> None:
        self.blobs = blobs
        self.folder = Path(folder) if folder is not None else cache_dir() / "registries"

    def _path(self, location: str) -> Path:
        return self.folder / f"{location_name(location)}.json"

    def save(
        self, location: str, index_version: int, index_bytes: bytes, signature: bytes | None
    ) -> None:
        """Keep a registry's index and signature for offline use.

        Raises:
            OSError: the cache cannot be written.
        """
        index_digest = bytes_digest(index_bytes)
        self.blobs.put(index_digest, index_bytes)
        signature_digest = None
        if signature is not None:
            signature_digest = bytes_digest(signature)
            self.blobs.put(signature_digest, signature)
        record = {
            "location": location,
            "index_digest": index_digest,
            "signature_digest": signature_digest,
            "index_version": index_version,
            "fetched": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        atomic_write(self._path(location), (json.dumps(record, indent=1) + "\n").encode())

    def record(self, location: str) -> CachedIndex | None:
        """What the cache holds of one registry, or None.

        Never raises.
        """
        path = self._path(location)
        if not path.exists():
            return None
        return _read_record(path)

    def load(self, location: str) -> tuple[bytes, bytes | None] | None:
        """The cached index and signature bytes of ``location``, if both are still in the cache.

        Never raises: a missing or unreadable entry gives None.
        """
        record = self.record(location)
        if record is None:
            return None
        index_bytes = self.blobs.get(record.index_digest)
        if index_bytes is None:
            return None
        signature = None
        if record.signature_digest is not None:
            signature = self.blobs.get(record.signature_digest)
            if signature is None:
                return None
        return index_bytes, signature

    def records(self) -> list[CachedIndex]:
        """What the cache holds of every registry.

        Never raises.
        """
        if not self.folder.is_dir():
            return []
        records = (_read_record(path) for path in sorted(self.folder.glob("*.json")))
        return [record for record in records if record is not None]


#: a cache record is a few hundred bytes; anything much larger is not one
_MAX_RECORD_BYTES = 64 * 1024


def _read_record(path: Path) -> CachedIndex | None:
    """One cache record, read strictly (regular file, bounded, strict JSON, typed fields).

    Never raises: an unreadable or malformed record is logged and gives None.
    """
    try:
        raw = load_document(
            read_regular_file(path, _MAX_RECORD_BYTES),
            str(path),
            max_bytes=_MAX_RECORD_BYTES,
            what="a cache record",
        )
        record = CachedIndex(
            raw["location"],
            raw["index_digest"],
            raw["signature_digest"],
            raw["index_version"],
            raw["fetched"],
        )
    except (OSError, ModelstoreError, KeyError, TypeError):
        _log.warning("ignoring an unreadable cache record %s", path)
        return None
    text_fields = (record.location, record.index_digest, record.fetched)
    if (
        not all(isinstance(value, str) for value in text_fields)
        or not isinstance(record.signature_digest, str | None)
        or type(record.index_version) is not int
    ):
        _log.warning("ignoring a malformed cache record %s", path)
        return None
    return record


class Cache:
    """The cache folder: ``blobs/``, ``registries/``, ``trust/`` (created only when used)."""

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        self.root = Path(root).expanduser() if root is not None else cache_dir()
        self.blobs = BlobCache(self.root / "blobs")
        self.registries = CachedRegistry(self.blobs, self.root / "registries")
        self.trust = self.root / "trust"

    def __repr__(self) -> str:
        return f"Cache({str(self.root)!r})"

    def versions(self, record: CachedIndex) -> list[CachedVersion]:
        """For one cached registry: each version and how many of its files the cache holds.

        Never raises.
        """
        from modelstore.format.index import Index
        from modelstore.format.manifest import Manifest
        from modelstore.format.names import version_key

        data = self.blobs.get(record.index_digest)
        if data is None:
            return []
        found = []
        try:
            index = Index.from_bytes(data, record.location)
        except ModelstoreError:
            return []
        for model_id, entry in index.models.items():
            for version in sorted(entry.versions, key=version_key):
                ref = f"{model_id}@{version}"
                raw = self.blobs.get(entry.versions[version])
                if raw is None:
                    found.append(CachedVersion(ref, False, 0, None))
                    continue
                try:
                    manifest = Manifest.from_bytes(raw, ref)
                except ModelstoreError:
                    found.append(CachedVersion(ref, False, 0, None))
                    continue
                have = sum(self.blobs.contains(f.digest) for f in manifest.files)
                found.append(CachedVersion(ref, True, have, len(manifest.files)))
        return found

    def leftovers(self) -> list[Leftover]:
        """Temporaries of interrupted writes in the cache (see ``modelstore.store.leftovers``).

        ``.tmp-*`` files in ``blobs/sha256/``, ``registries/`` and ``trust/`` (busy while
        younger than ten minutes: another process may be writing them), and ``.build-*``
        and ``.bad-*`` folders in ``native/`` (a build is busy while its lock is held; a
        discarded entry for ten minutes). Nothing else, and nothing through a link.

        Never raises.
        """
        files = [self.blobs.root / "sha256", self.registries.folder, self.trust]
        native = [self.root / "native"]
        return sorted(
            [
                *find_leftovers(files, [TMP_PREFIX], min_age=LEFTOVER_AGE),
                *find_leftovers(native, [BUILD_PREFIX], directories=True, busy=build_in_progress),
                *find_leftovers(native, [DISCARD_PREFIX], directories=True, min_age=LEFTOVER_AGE),
            ],
            key=lambda leftover: leftover.path,
        )

    def remove_leftovers(self) -> list[Leftover]:
        """Delete the cache's leftovers that are not busy (`leftovers`); return those deleted.

        Never raises: one that cannot be deleted is kept.
        """
        return remove_leftovers(self.leftovers())

    def clean(self, *, forget_trust: bool = False) -> tuple[int, int]:
        """Remove cached blobs and index records (and the trust state); return (files, bytes).

        Compiled evaluators (``native/``) are left alone.

        Raises:
            OSError: a cache folder cannot be removed.
        """
        files = size = 0
        folders = [self.blobs.root, self.registries.folder]
        if forget_trust:
            folders.append(self.trust)
        for folder in folders:
            if not folder.is_dir():
                continue
            for path in folder.rglob("*"):
                if path.is_file():
                    files += 1
                    size += path.stat().st_size
            shutil.rmtree(folder)
        return files, size


@dataclass(frozen=True)
class CachedVersion:
    """One version of a cached registry: is its manifest cached, and how many of its files."""

    ref: str
    manifest: bool
    files_cached: int
    files_total: int | None
