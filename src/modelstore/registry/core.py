"""A registry of published model versions: resolve, read verified files, publish, verify.

A registry lives in a local folder (the embedded one by default) or at a URL. Every read
starts from the index, whose signature is checked against the trusted keys (see
``modelstore.trust.policy`` for when one is required); manifests are reached through the digests the
index records, files through the digests their manifest records. Files of remote registries go
through the verified local cache (``modelstore.store.cache``).
"""

from __future__ import annotations

import os
import time
from functools import cached_property
from typing import TYPE_CHECKING, Any, Literal

from modelstore.errors import (
    IntegrityError,
    ManifestError,
    ModelNotFoundError,
    OfflineError,
    RemoteError,
    SignatureError,
)
from modelstore.format.index import MAX_INDEX_BYTES, Index
from modelstore.format.manifest import (
    EXECUTABLE_ROLES,
    MAX_BLOB_SIZE,
    MAX_MANIFEST_BYTES,
    FileEntry,
    Manifest,
)
from modelstore.format.names import ModelRef, parse_ref
from modelstore.registry import checks, code_trust, publishing
from modelstore.registry.layout import (
    INDEX_PATH,
    OFFLINE_ENV,
    REGISTRY_ENV,
    SIGNATURE_PATH,
    FileCheck,
    IndexStatus,
    blob_path,
    embedded_registry_root,
    manifest_path,
)
from modelstore.store import Store, SupportsLocalPath, open_store
from modelstore.store.cache import Cache
from modelstore.store.hashing import bytes_digest, check_bytes, parse_digest
from modelstore.trust.policy import TrustPolicy, TrustState, env_flag
from modelstore.trust.signing import signature_is_for_other_index

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence
    from pathlib import Path

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

__all__ = ["Registry", "default_registry"]

_INDEX_ATTEMPTS = 3


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
        trust_code: trust this registry to run code (its pickles, C source and array programs)
            even if its index is not signed by a trusted key; see :meth:`code_trust`.
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
        trust_code: bool = False,
    ) -> None:
        self.trust_code = trust_code
        self.store = root if isinstance(root, Store) else open_store(root, storage_options)
        self.is_remote = not isinstance(self.store, SupportsLocalPath)
        self.offline = env_flag(OFFLINE_ENV) if offline is None else offline
        self.cache = cache if isinstance(cache, Cache) else Cache(cache)
        self._policy = policy
        self._require_signature = require_signature
        self._remote_index: IndexStatus | None = None

    def __repr__(self) -> str:
        return f"Registry({self.location!r})"

    @property
    def root(self) -> Path:
        """The folder of a local registry (remote registries have none: use ``location``)."""
        if isinstance(self.store, SupportsLocalPath):
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
        """Full path or URL of a file of the registry, for messages (never raises)."""
        return self.store.where(relpath)

    @cached_property
    def policy(self) -> TrustPolicy:
        if self._policy is not None:
            return self._policy
        return TrustPolicy.from_environment(self._require_signature)

    @cached_property
    def is_embedded(self) -> bool:
        if not isinstance(self.store, SupportsLocalPath):
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
        """The trusted index; an empty one for a local folder that has none yet (publishing).

        Raises:
            ModelNotFoundError: no such model, version or file (OfflineError: not cached offline).
            IntegrityError: bytes or the index fail verification (SignatureError, RollbackError,
                VersionChangedError for the index's trust checks).
            ManifestError: the index or manifest is malformed.
            RemoteError: a remote registry could not be reached or read.
        """
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
        if isinstance(self.store, SupportsLocalPath) and not self.store.root.is_dir():
            return f"{self.location}: no such registry folder"
        return f"{self.location}: not a modelstore registry (no {INDEX_PATH})"

    def index_status(self) -> IndexStatus:
        """The index, after its signature, version and immutability checks.

        A remote index is fetched once per Registry object (``refresh()`` fetches it again);
        a local one is read on every call.

        Raises:
            SignatureError: a required signature is missing, untrusted or does not verify.
            RollbackError: the index is older than one this client has seen.
            VersionChangedError: a version this client has seen now has another manifest.
            ManifestError: the index is malformed.
            OfflineError: offline, and the remote index is not cached.
            ModelNotFoundError: a remote registry has no index.
            RemoteError: a remote registry could not be reached or read.
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
            try:
                signers = self.policy.check(
                    data, signature, where, required=self.signature_required
                )
                break
            except SignatureError:
                # A publisher writes the index, then its signature: a reader in between sees a
                # new index with the old signature. Read both again before calling it tampered.
                retry = attempt + 1 < _INDEX_ATTEMPTS and not (self.is_remote and self.offline)
                if not retry or not signature_is_for_other_index(data, signature):
                    raise
                time.sleep(0.2 * (attempt + 1))
        index = Index.from_bytes(data, where)
        digest = bytes_digest(data)
        if self.signature_required and not self.is_embedded:
            TrustState(self.cache.trust, self.location).check_and_record(index, digest, where)
        status = IndexStatus(index, digest, tuple(signers), data, signature)
        if self.is_remote:
            if not self.offline:
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
        """Forget the remote index fetched so far; the next read fetches it again (never raises)."""
        self._remote_index = None

    def _read_optional(self, relpath: str) -> bytes | None:
        try:
            return self.store.read(relpath, max_size=MAX_INDEX_BYTES)
        except ModelNotFoundError:
            return None

    # -- trust to run code -------------------------------------------------------------------

    def code_trust(self) -> str | None:
        """Why this registry may run code, or None (see ``modelstore.registry.code_trust``).

        Raises:
            IntegrityError, RemoteError, OfflineError: the index could not be trusted or read.
        """
        return code_trust.code_trust(self)

    def require_code_trust(self, what: str) -> str:
        """Why this registry may run ``what`` (see ``modelstore.registry.code_trust``).

        Raises:
            UntrustedCodeError: it is not trusted to run code (IntegrityError: a bad index).
        """
        return code_trust.require_code_trust(self, what)

    # -- reading -----------------------------------------------------------------------------

    def resolve(self, ref: str | int | ModelRef) -> tuple[str, str, str]:
        """Return ``(model id, version, manifest digest)`` for ``ID[@VERSION]``, title or index.

        Raises:
            InvalidNameError: ``ref`` does not follow the grammar.
            ModelNotFoundError: no such model or version, or no registry there.
            IntegrityError: the index fails its trust checks.
        """
        return _resolve_in(self.existing_index(), ref)

    def manifest(self, ref: str | int | ModelRef, digest: str | None = None) -> Manifest:
        """Read and verify the manifest of ``ref`` against the index (and ``digest`` if given).

        Raises:
            ModelNotFoundError: no such model, version or file (OfflineError: not cached offline).
            IntegrityError: bytes or the index fail verification (SignatureError, RollbackError,
                VersionChangedError for the index's trust checks).
            ManifestError: the index or manifest is malformed.
            RemoteError: a remote registry could not be reached or read.
        """
        return self._manifest_data(ref, digest)[1]

    def manifest_bytes(self, ref: str | int | ModelRef, digest: str | None = None) -> bytes:
        """The exact published bytes of the manifest of ``ref``, verified like ``manifest()``.

        Raises:
            The errors of ``manifest()``.
        """
        return self._manifest_data(ref, digest)[0]

    def _manifest_data(
        self, ref: str | int | ModelRef, digest: str | None
    ) -> tuple[bytes, Manifest]:
        data, manifest, _ = self._manifest_in(self.existing_index(), ref, digest)
        return data, manifest

    def _manifest_in(
        self, index: Index, ref: str | int | ModelRef, digest: str | None
    ) -> tuple[bytes, Manifest, str]:
        """The manifest of ``ref`` as ``index`` records it: bytes, parsed, and its digest."""
        model_id, version, indexed = _resolve_in(index, ref)
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
        return data, manifest, indexed

    def read_file(self, manifest: Manifest, role: str, *, copy_only: bool = False) -> bytes:
        """Return the bytes of one artifact file, verified against the manifest.

        The returned object is the one that was hashed: callers deserialise exactly these bytes.
        A file that runs as code when used (``EXECUTABLE_ROLES``: the pickle, the C source, the
        array program) is handed out only by a registry trusted to run code, unless the caller
        only copies the bytes (``copy_only=True``: export, push, republish).

        Raises:
            UntrustedCodeError: an executable role from a registry not trusted to run code.
            ModelNotFoundError: the manifest has no file of that role, or the file is missing
                (OfflineError: offline and not cached).
            IntegrityError: the bytes do not match the manifest's size or digest.
            RemoteError: a remote registry could not be reached or read.
        """
        entry = manifest.file(role)
        if role in EXECUTABLE_ROLES and not copy_only:
            self.require_code_trust(f"{manifest.model_id}@{manifest.version} {entry.name}")
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

        Raises:
            The errors of ``manifest()``.
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

    # -- publishing and verification (in modelstore.registry.publishing and .checks) ---------

    def publish(
        self,
        manifest: Manifest,
        blobs: Mapping[str, bytes],
        signing_keys: Sequence[Ed25519PrivateKey] = (),
    ) -> Literal["published", "unchanged"]:
        """Store the blobs, then the manifest, then the index: see ``publishing.publish``.

        Raises:
            RemoteError: the registry is not a local folder (publish there, then push).
            ManifestError: the blobs do not match the manifest's roles, or it would not read back.
            IntegrityError: a blob does not match its manifest entry.
            PublishConflictError: ``id@version`` is already published with other content.
        """
        return publishing.publish(self, manifest, blobs, signing_keys)

    def sign(self, keys: Sequence[Ed25519PrivateKey]) -> IndexStatus:
        """Verify every version against the index, then sign it: see ``publishing.sign``.

        Raises:
            IntegrityError: a manifest or file does not match the index (nothing is signed).
            ModelNotFoundError: the registry has no index.
            RemoteError: a remote registry could not be read or written.
        """
        return publishing.sign(self, keys)

    def refs(self) -> list[str]:
        """Every ``id@version`` in the index, sorted.

        Raises:
            ModelNotFoundError: no registry or no index there.
            IntegrityError: the index fails its trust checks (signature, rollback).
        """
        return checks.refs(self)

    def check_index(self) -> FileCheck:
        """The index's trust checks as a FileCheck (signature, rollback, changed versions).

        Raises:
            OfflineError, RemoteError: the index could not be read at all (trust failures are
                reported in the FileCheck, not raised).
        """
        return checks.check_index(self)

    def verify(
        self, refs: Iterable[str] | None = None, *, index_check: bool = True
    ) -> list[FileCheck]:
        """Check the index, then the manifest and every file of each version; one FileCheck each.

        The index is read once. A failed index check (bad signature, rollback) is the only check
        returned: nothing reached through an untrusted index can be verified.

        Raises:
            ModelNotFoundError: with ``index_check=False``, no registry or no index there.
        """
        return checks.verify(self, refs, index_check=index_check)


def _resolve_in(index: Index, ref: str | int | ModelRef) -> tuple[str, str, str]:
    if not isinstance(ref, ModelRef):
        ref = parse_ref(ref)
    model_id = index.resolve_name(ref.name)
    version, digest = index.manifest_digest(model_id, ref.version)
    return model_id, version, digest


def default_registry(
    *,
    offline: bool | None = None,
    require_signature: bool | None = None,
    trust_code: bool = False,
) -> Registry:
    """The registry named by ``MODELSTORE_REGISTRY`` (a folder or URL), else the embedded one.

    Raises:
        ModelNotFoundError: no ``MODELSTORE_REGISTRY`` and no embedded registry.
        RemoteError: the URL's scheme is unknown, or the remote cannot be opened.
        MissingExtraError: the URL needs an extra that is not installed.
        InvalidNameError: ``MODELSTORE_OFFLINE`` or ``MODELSTORE_REQUIRE_SIGNATURE`` is not a
            boolean word.
    """
    root = os.environ.get(REGISTRY_ENV) or embedded_registry_root()
    return Registry(
        root, offline=offline, require_signature=require_signature, trust_code=trust_code
    )
