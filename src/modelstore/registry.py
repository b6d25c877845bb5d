"""A registry of published model versions: resolve, read verified files, publish, verify.

A registry lives in a local folder (the embedded one by default) or at a URL. Every read
starts from the index, whose signature is checked against the trusted keys (see
``modelstore.trust`` for when one is required); manifests are reached through the digests the
index records, files through the digests their manifest records. Files of remote registries go
through the verified local cache (``modelstore.cache``).
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass, field
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from modelstore.cache import Cache
from modelstore.errors import (
    IntegrityError,
    ManifestError,
    ModelNotFoundError,
    ModelstoreError,
    OfflineError,
    PublishConflictError,
    RemoteError,
    SignatureError,
)
from modelstore.hashing import bytes_digest, check_bytes, parse_digest
from modelstore.index import MAX_INDEX_BYTES, Index
from modelstore.manifest import MAX_BLOB_SIZE, MAX_MANIFEST_BYTES, FileEntry, Manifest
from modelstore.names import ModelRef, check_model_id, check_version, parse_ref, version_key
from modelstore.storage import LocalStore, Store, open_store
from modelstore.trust import TrustPolicy, TrustState, env_flag

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Mapping, Sequence

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

__all__ = [
    "FileCheck",
    "IndexStatus",
    "Registry",
    "default_registry",
    "embedded_registry_root",
]

INDEX_PATH = "manifests/index.json"
_INDEX_ATTEMPTS = 3
SIGNATURE_PATH = "manifests/index.json.sig"
REGISTRY_ENV = "MODELSTORE_REGISTRY"
OFFLINE_ENV = "MODELSTORE_OFFLINE"


def blob_path(digest: str) -> str:
    return f"registry/sha256/{parse_digest(digest)}"


def manifest_path(model_id: str, version: str) -> str:
    return f"manifests/{check_model_id(model_id)}/{check_version(version)}.json"


def embedded_registry_root() -> Path:
    """The registry shipped with the package.

    A wheel carries it as ``modelstore/_embedded``; a source checkout (editable install) uses
    the repository's own ``registry/`` and ``manifests/``.
    """
    packaged = Path(str(resources.files("modelstore"))) / "_embedded"
    if (packaged / INDEX_PATH).is_file():
        return packaged
    checkout = Path(__file__).resolve().parents[2]
    if (checkout / INDEX_PATH).is_file():
        return checkout
    msg = "the embedded registry is missing from this installation of modelstore"
    raise ModelNotFoundError(msg)


@dataclass(frozen=True)
class FileCheck:
    """The outcome of verifying one file: ``ok``, ``mismatch``, ``missing`` or ``error``."""

    model: str
    name: str
    status: Literal["ok", "mismatch", "missing", "error"]
    detail: str = ""


@dataclass(frozen=True)
class IndexStatus:
    """An index that passed the trust checks: its digest and the keys that signed it."""

    index: Index
    digest: str | None
    signers: tuple[str, ...]
    data: bytes = field(default=b"", repr=False)
    signature: bytes | None = field(default=None, repr=False)


class Registry:
    """Published model versions in a folder or at a URL (see docs/format.md, docs/sharing.md).

    Args:
        root: a folder, a ``file://`` URL, any URL fsspec speaks (``https://``, ``s3://``), or a
            Store.
        offline: use only the local cache for remote registries (default: ``MODELSTORE_OFFLINE``).
        require_signature: require a trusted index signature for local folders too (default:
            ``MODELSTORE_REQUIRE_SIGNATURE``); remote registries always require one.
        policy: the trusted keys and signature requirement (default: from the environment).
        cache: the cache folder (default: ``MODELSTORE_CACHE_DIR`` or the per-user cache).
        storage_options: passed to fsspec for URLs (for example ``{"endpoint_url": ...}``).
    """

    def __init__(
        self,
        root: str | os.PathLike[str] | Store,
        *,
        offline: bool | None = None,
        require_signature: bool | None = None,
        policy: TrustPolicy | None = None,
        cache: Cache | str | os.PathLike[str] | None = None,
        storage_options: Mapping[str, Any] | None = None,
    ) -> None:
        self.store = root if isinstance(root, Store) else open_store(root, storage_options)
        self.is_remote = not isinstance(self.store, LocalStore)
        self.offline = env_flag(OFFLINE_ENV) if offline is None else offline
        self.cache = cache if isinstance(cache, Cache) else Cache(cache)
        self._policy = policy
        self._require_signature = require_signature
        self._check_signature = True
        self._remote_index: IndexStatus | None = None

    def __repr__(self) -> str:
        return f"Registry({self.location!r})"

    @property
    def root(self) -> Path:
        """The folder of a local registry (remote registries have none: use ``location``)."""
        if isinstance(self.store, LocalStore):
            return self.store.root
        msg = (
            f"{self.location} is a remote registry and has no local folder; publish into a folder,"
            " then copy it there with `modelstore push`"
        )
        raise RemoteError(msg)

    @property
    def location(self) -> str:
        """The folder path or URL of the registry."""
        return self.store.location

    def where(self, relpath: str) -> str:
        """Full path or URL of a file of the registry, for messages."""
        return self.store.where(relpath)

    @cached_property
    def policy(self) -> TrustPolicy:
        if self._policy is not None:
            return self._policy
        return TrustPolicy.from_environment(self._require_signature)

    @cached_property
    def is_embedded(self) -> bool:
        if not isinstance(self.store, LocalStore):
            return False
        try:
            return self.store.root == embedded_registry_root().resolve()
        except ModelNotFoundError:
            return False

    @property
    def signature_required(self) -> bool:
        return self.is_remote or self.policy.require_signature

    # -- the index: the trust root -----------------------------------------------------------

    def index(self) -> Index:
        """The trusted index; an empty one for a local folder that has none yet (publishing)."""
        return self.index_status().index

    def existing_index(self) -> Index:
        """The trusted index, for reading: a missing folder or index is an error, not empty.

        Raises:
            ModelNotFoundError: the folder does not exist, or holds no ``manifests/index.json``.
        """
        status = self.index_status()
        if status.digest is None:
            raise ModelNotFoundError(self._no_registry_message())
        return status.index

    def _no_registry_message(self) -> str:
        if isinstance(self.store, LocalStore) and not self.store.root.is_dir():
            return f"{self.location}: no such registry folder"
        return f"{self.location}: not a modelstore registry (no {INDEX_PATH})"

    def index_status(self) -> IndexStatus:
        """The index, after its signature, version and immutability checks.

        A remote index is fetched once per Registry object (``refresh()`` fetches it again);
        a local one is read on every call.
        """
        if self._remote_index is not None:
            return self._remote_index
        where = self.where(INDEX_PATH)
        signers: list[str] = []
        for attempt in range(_INDEX_ATTEMPTS):
            loaded = self._load_index_bytes()
            if loaded is None:
                return IndexStatus(Index(), None, ())
            data, signature = loaded
            if not self._check_signature:
                break
            try:
                signers = self.policy.check(data, signature, where, required=self.signature_required)
                break
            except SignatureError:
                # A publisher writes the index, then its signature: a reader in between sees a
                # new index with the old signature. Read both again before calling it tampered.
                retry = attempt + 1 < _INDEX_ATTEMPTS and not (self.is_remote and self.offline)
                if not retry or not _signature_is_for_other_index(data, signature):
                    raise
                time.sleep(0.2 * (attempt + 1))
        index = Index.from_bytes(data, where)
        digest = bytes_digest(data)
        if self._check_signature and self.signature_required and not self.is_embedded:
            TrustState(self.cache.trust, self.location).check_and_record(index, digest, where)
        status = IndexStatus(index, digest, tuple(signers), data, signature)
        if self.is_remote:
            if self._check_signature and not self.offline:
                self.cache.registries.save(self.location, index.index_version, data, signature)
            self._remote_index = status
        return status

    def _load_index_bytes(self) -> tuple[bytes, bytes | None] | None:
        """Index and signature bytes (from the cache when offline); None for a new local folder."""
        if self.is_remote and self.offline:
            cached = self.cache.registries.load(self.location)
            if cached is None:
                msg = (
                    f"offline: the index of {self.location} is not in the cache {self.cache.root};"
                    f" run `modelstore --registry {self.location} cache fetch` once while online"
                )
                raise OfflineError(msg)
            return cached
        try:
            data = self.store.read(INDEX_PATH, max_size=MAX_INDEX_BYTES)
        except ModelNotFoundError:
            if self.is_remote:
                msg = f"{self.where(INDEX_PATH)}: not found (is {self.location} a modelstore registry?)"
                raise ModelNotFoundError(msg) from None
            return None
        return data, self._read_optional(SIGNATURE_PATH)

    def refresh(self) -> None:
        """Forget the remote index fetched so far; the next read fetches it again."""
        self._remote_index = None

    def _read_optional(self, relpath: str) -> bytes | None:
        try:
            return self.store.read(relpath, max_size=MAX_INDEX_BYTES)
        except ModelNotFoundError:
            return None

    # -- reading -----------------------------------------------------------------------------

    def resolve(self, ref: str | int | ModelRef) -> tuple[str, str, str]:
        """Return ``(model id, version, manifest digest)`` for ``ID[@VERSION]``, title or index."""
        if not isinstance(ref, ModelRef):
            ref = parse_ref(ref)
        index = self.existing_index()
        model_id = index.resolve_name(ref.name)
        version, digest = index.manifest_digest(model_id, ref.version)
        return model_id, version, digest

    def manifest(self, ref: str | int | ModelRef, digest: str | None = None) -> Manifest:
        """Read and verify the manifest of ``ref`` against the index (and ``digest`` if given)."""
        return self._manifest_data(ref, digest)[1]

    def manifest_bytes(self, ref: str | int | ModelRef, digest: str | None = None) -> bytes:
        """The exact published bytes of the manifest of ``ref``, verified like ``manifest()``."""
        return self._manifest_data(ref, digest)[0]

    def _manifest_data(
        self, ref: str | int | ModelRef, digest: str | None
    ) -> tuple[bytes, Manifest]:
        model_id, version, indexed = self.resolve(ref)
        path = manifest_path(model_id, version)
        if digest is not None and digest != indexed:
            parse_digest(digest)
            msg = (
                f"{path}: the index records {indexed}, but the caller pinned {digest}"
                " (the published version is not the one you expect)"
            )
            raise IntegrityError(msg)
        data = self._read_verified(path, indexed, None, self.where(path))
        manifest = Manifest.from_bytes(data, self.where(path))
        if (manifest.model_id, manifest.version) != (model_id, version):
            msg = f"{path}: describes {manifest.model_id}@{manifest.version}, not {model_id}@{version}"
            raise ManifestError(msg)
        return data, manifest

    def read_file(self, manifest: Manifest, role: str) -> bytes:
        """Return the bytes of one artifact file, verified against the manifest.

        The returned object is the one that was hashed: callers deserialise exactly these bytes.
        """
        entry = manifest.file(role)
        return self._read_entry(manifest, entry)

    def _read_entry(self, manifest: Manifest, entry: FileEntry) -> bytes:
        path = blob_path(entry.digest)
        where = f"{manifest.model_id}@{manifest.version} {entry.name} ({self.where(path)})"
        try:
            return self._read_verified(path, entry.digest, entry.size, where)
        except OfflineError:
            raise
        except ModelNotFoundError:
            msg = f"{where}: missing from the registry"
            raise ModelNotFoundError(msg) from None

    def _read_verified(self, path: str, digest: str, size: int | None, where: str) -> bytes:
        """The bytes of ``path``, checked against ``digest`` (and ``size``); cached if remote.

        A remote file enters the cache only after the check; a cached one is checked again
        when read (a corrupt cache entry is evicted and fetched anew).
        """
        if size is not None and size > MAX_BLOB_SIZE:
            msg = (
                f"{where}: the manifest records {size} bytes, more than the largest file a"
                f" registry may hold ({MAX_BLOB_SIZE} bytes); not read"
            )
            raise IntegrityError(msg)
        blobs = self.cache.blobs if self.is_remote else None
        if blobs is not None:
            cached = blobs.get(digest, size)
            if cached is not None:
                return cached
            if self.offline:
                msg = (
                    f"offline: {where} ({digest}) is not in the cache {blobs.root}; fetch it once"
                    f" while online: `modelstore --registry {self.location} cache fetch`"
                )
                raise OfflineError(msg)
        limit = size if size is not None else MAX_MANIFEST_BYTES
        data = self.store.read(path, max_size=limit)
        check_bytes(data, name=where, size=len(data) if size is None else size, digest=digest)
        if blobs is not None:
            blobs.put(digest, data)
        return data

    def fetch(self, refs: Iterable[str] | None = None) -> list[tuple[str, int, int]]:
        """Read and verify every file of ``refs`` (default: every version), filling the cache.

        Returns ``(id@version, files fetched, files already cached)`` for each version; for a
        local registry nothing is fetched (the files are verified all the same).
        """
        results = []
        for ref in self.refs() if refs is None else refs:
            manifest = self.manifest(ref)
            fetched = cached = 0
            for entry in manifest.files:
                if self.is_remote and self.cache.blobs.contains(entry.digest):
                    cached += 1
                elif self.is_remote:
                    fetched += 1
                self._read_entry(manifest, entry)
            results.append((f"{manifest.model_id}@{manifest.version}", fetched, cached))
        return results

    def has_cached(self, entry: FileEntry) -> bool:
        """True if a remote registry's file is already in the local cache (local: always)."""
        return not self.is_remote or self.cache.blobs.contains(entry.digest)

    # -- publishing --------------------------------------------------------------------------

    def publish(
        self,
        manifest: Manifest,
        blobs: Mapping[str, bytes],
        signing_keys: Sequence[Ed25519PrivateKey] = (),
    ) -> Literal["published", "unchanged"]:
        """Store the blobs, then the manifest, then the index (the index is what makes it visible).

        Publishing an existing ``id@version`` with the same content is a no-op; with other content
        it raises PublishConflictError. Published versions are never rewritten. With
        ``signing_keys`` the new index is signed; without, a signature of the previous index is
        removed (it no longer covers the index): sign later with ``sign()``.
        """
        store = self._local_store("publishing")
        roles = {f.role for f in manifest.files}
        if roles != set(blobs):
            msg = f"the manifest lists {sorted(roles)}, but blobs were given for {sorted(blobs)}"
            raise ManifestError(msg)
        for entry in manifest.files:
            check_bytes(blobs[entry.role], name=entry.name, size=entry.size, digest=entry.digest)
        manifest_bytes = manifest.to_bytes()
        Manifest.from_bytes(manifest_bytes)  # never publish what we would refuse to read
        with store.lock():
            store.remove_leftovers()  # of publishers killed earlier; never read anyway
            index = self.index()
            ref = f"{manifest.model_id}@{manifest.version}"
            existing = index.models.get(manifest.model_id)
            if existing is not None and manifest.version in existing.versions:
                old = self.manifest(ref)
                if old.content_key() == manifest.content_key():
                    return "unchanged"
                msg = (
                    f"{ref} is already published with other content; published versions are"
                    " immutable: publish a new version instead"
                )
                raise PublishConflictError(msg)
            for entry in manifest.files:
                path = blob_path(entry.digest)
                if not self._blob_intact(path, entry):
                    self.store.write(path, blobs[entry.role])
            path = manifest_path(manifest.model_id, manifest.version)
            self.store.write(path, manifest_bytes)
            new_index = index.with_version(
                manifest.model_id,
                manifest.version,
                bytes_digest(manifest_bytes),
                manifest.title,
                manifest.upstream_index,
            )
            index_bytes = new_index.to_bytes()
            self.store.write(INDEX_PATH, index_bytes)
            if signing_keys:
                from modelstore.signing import sign_index

                self.store.write(SIGNATURE_PATH, sign_index(index_bytes, signing_keys))
            else:
                store.remove(SIGNATURE_PATH)
        return "published"

    def _local_store(self, action: str) -> LocalStore:
        if not isinstance(self.store, LocalStore):
            msg = (
                f"{action} writes into a local folder, and {self.location} is remote: do it in a"
                " folder, then copy that with `modelstore push`"
            )
            raise RemoteError(msg)
        return self.store

    @contextlib.contextmanager
    def _unchecked_signature(self) -> Iterator[None]:
        """Read the index without its signature check (to re-sign it after a publish)."""
        self._check_signature = False
        self._remote_index = None
        try:
            yield
        finally:
            self._check_signature = True
            self._remote_index = None

    def sign(self, keys: Sequence[Ed25519PrivateKey]) -> IndexStatus:
        """Verify every version against the index, then sign the index as it is.

        The old signature is not checked (it may be stale after a publish); every manifest and
        file is, so a signature never vouches for content that does not match the index.
        """
        from modelstore.signing import sign_index

        lock = self.store.lock() if isinstance(self.store, LocalStore) else contextlib.nullcontext()
        with lock, self._unchecked_signature():
            data = self.store.read(INDEX_PATH, max_size=MAX_INDEX_BYTES)
            index = Index.from_bytes(data, self.where(INDEX_PATH))
            problems = [c for c in self.verify(index_check=False) if c.status != "ok"]
            if problems:
                first = problems[0]
                msg = (
                    f"refusing to sign {self.where(INDEX_PATH)}: {len(problems)} problem(s), first"
                    f" {first.model} {first.name}: {first.detail}"
                )
                raise IntegrityError(msg)
            signature = sign_index(data, keys)
            self.store.write(SIGNATURE_PATH, signature)
        self.refresh()
        from modelstore.signing import key_id

        signers = tuple(key_id(k.public_key()) for k in keys)
        return IndexStatus(index, bytes_digest(data), signers, data, signature)

    def _blob_intact(self, path: str, entry: FileEntry) -> bool:
        if not self.store.exists(path):
            return False
        if entry.size > MAX_BLOB_SIZE:
            return False
        try:
            data = self.store.read(path, max_size=entry.size)
            check_bytes(data, name=path, size=entry.size, digest=entry.digest)
        except (IntegrityError, OSError):
            return False
        return True

    # -- verification ------------------------------------------------------------------------

    def refs(self) -> list[str]:
        """Every ``id@version`` in the index, sorted."""
        index = self.existing_index()
        return [
            f"{model_id}@{version}"
            for model_id, entry in sorted(index.models.items())
            for version in sorted(entry.versions, key=version_key)
        ]

    def check_index(self) -> FileCheck:
        """The index's trust checks as a FileCheck (signature, rollback, changed versions)."""
        try:
            status = self.index_status()
        except (IntegrityError, ManifestError) as exc:
            return FileCheck("index", "index.json", "mismatch", str(exc))
        version = status.index.index_version
        if status.signers:
            detail = f"index_version {version}, signed by {', '.join(status.signers)}"
        elif status.digest is None:
            msg = f"{self._no_registry_message()}: nothing to verify"
            return FileCheck("index", "index.json", "error", msg)
        else:
            detail = f"index_version {version}, unsigned (accepted for a local folder)"
        return FileCheck("index", "index.json", "ok", detail)

    def verify(
        self, refs: Iterable[str] | None = None, *, index_check: bool = True
    ) -> list[FileCheck]:
        """Check the index, then the manifest and every file of each version; one FileCheck each.

        A failed index check (bad signature, rollback) is the only check returned: nothing
        reached through an untrusted index can be verified.
        """
        checks: list[FileCheck] = []
        if index_check:
            checks.append(self.check_index())
            if checks[0].status != "ok":
                return checks
        for ref in self.refs() if refs is None else refs:
            try:
                manifest = self.manifest(ref)
            except OfflineError as exc:
                checks.append(FileCheck(str(ref), "manifest", "error", str(exc)))
                continue
            except IntegrityError as exc:
                checks.append(FileCheck(str(ref), "manifest", "mismatch", str(exc)))
                continue
            except ManifestError as exc:
                checks.append(FileCheck(str(ref), "manifest", "mismatch", str(exc)))
                continue
            except ModelNotFoundError as exc:
                checks.append(FileCheck(str(ref), "manifest", "missing", str(exc)))
                continue
            name = f"{manifest.model_id}@{manifest.version}"
            checks.append(FileCheck(name, "manifest.json", "ok", self.resolve(name)[2]))
            for entry in manifest.files:
                try:
                    self._read_entry(manifest, entry)
                except OfflineError as exc:
                    checks.append(FileCheck(name, entry.name, "error", str(exc)))
                except IntegrityError as exc:
                    checks.append(FileCheck(name, entry.name, "mismatch", str(exc)))
                except ModelNotFoundError as exc:
                    checks.append(FileCheck(name, entry.name, "missing", str(exc)))
                except (OSError, ModelstoreError) as exc:
                    checks.append(FileCheck(name, entry.name, "error", str(exc)))
                else:
                    checks.append(FileCheck(name, entry.name, "ok", entry.digest))
        return checks


def _signature_is_for_other_index(data: bytes, signature: bytes | None) -> bool:
    from modelstore.signing import IndexSignature

    if signature is None:
        return False
    try:
        return IndexSignature.from_bytes(signature).index_digest != bytes_digest(data)
    except SignatureError:
        return False


def default_registry(
    *, offline: bool | None = None, require_signature: bool | None = None
) -> Registry:
    """The registry named by ``MODELSTORE_REGISTRY`` (a folder or URL), else the embedded one."""
    root = os.environ.get(REGISTRY_ENV) or embedded_registry_root()
    return Registry(root, offline=offline, require_signature=require_signature)
