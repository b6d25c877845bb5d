"""Writing a registry: publishing a version, and signing the index as it stands."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Literal

from modelstore.errors import IntegrityError, ManifestError, PublishConflictError, RemoteError
from modelstore.format.index import MAX_INDEX_BYTES, Index
from modelstore.format.manifest import MAX_BLOB_SIZE, FileEntry, Manifest
from modelstore.registry.checks import check_versions
from modelstore.registry.layout import (
    INDEX_PATH,
    SIGNATURE_PATH,
    IndexStatus,
    blob_path,
    manifest_path,
)
from modelstore.store.contract import SupportsLeftovers, SupportsLocking
from modelstore.store.hashing import bytes_digest, check_bytes

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from modelstore.registry.core import Registry

__all__ = ["publish", "sign"]


def publish(
    registry: Registry,
    manifest: Manifest,
    blobs: Mapping[str, bytes],
    signing_keys: Sequence[Ed25519PrivateKey] = (),
) -> Literal["published", "unchanged"]:
    """Store the blobs, then the manifest, then the index (the index is what makes it visible).

    Publishing an existing ``id@version`` with the same content is a no-op; with other content
    it raises PublishConflictError. Published versions are never rewritten. With
    ``signing_keys`` the new index is signed; without, a signature of the previous index is
    removed (it no longer covers the index): sign later with ``sign()``.

    Raises:
        RemoteError: the registry is not a local folder (publish there, then push).
        ManifestError: the blobs do not match the manifest's roles, or it would not read back.
        IntegrityError: a blob does not match its manifest entry.
        PublishConflictError: ``id@version`` is already published with other content, or the
            id names a model of another title (or upstream index) in this registry.
    """
    store = registry.store
    # publishing needs the lock and the leftover cleanup, besides the contract: a folder
    if not (isinstance(store, SupportsLocking) and isinstance(store, SupportsLeftovers)):
        msg = (
            f"publishing writes into a local folder, and {registry.location} is remote: do it in"
            " a folder, then copy that with `modelstore push`"
        )
        raise RemoteError(msg)
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
        index = registry.index()
        ref = f"{manifest.model_id}@{manifest.version}"
        existing = index.models.get(manifest.model_id)
        if existing is not None and (existing.title, existing.upstream_index) != (
            manifest.title,
            manifest.upstream_index,
        ):
            msg = (
                f"the id {manifest.model_id!r} already names another model in this registry"
                f" ({existing.title!r}): ids are unique per registry; choose another id, or give"
                " the same title to publish a new version of that model"
            )
            raise PublishConflictError(msg)
        if existing is not None and manifest.version in existing.versions:
            old = registry.manifest(ref)
            if old.content_key() == manifest.content_key():
                return "unchanged"
            msg = (
                f"{ref} is already published with other content; published versions are"
                " immutable: publish a new version instead"
            )
            raise PublishConflictError(msg)
        for entry in manifest.files:
            path = blob_path(entry.digest)
            if not _blob_intact(registry, path, entry):
                registry.store.write(path, blobs[entry.role])
        path = manifest_path(manifest.model_id, manifest.version)
        registry.store.write(path, manifest_bytes)
        new_index = index.with_version(
            manifest.model_id,
            manifest.version,
            bytes_digest(manifest_bytes),
            manifest.title,
            manifest.upstream_index,
        )
        index_bytes = new_index.to_bytes()
        store.write(INDEX_PATH, index_bytes)
        if signing_keys:
            from modelstore.trust.signing import sign_index

            store.write(SIGNATURE_PATH, sign_index(index_bytes, signing_keys))
        else:
            store.remove(SIGNATURE_PATH)
    return "published"


def sign(registry: Registry, keys: Sequence[Ed25519PrivateKey]) -> IndexStatus:
    """Verify every version against the index, then sign the index as it is.

    The old signature is not checked (it may be stale after a publish); every manifest and
    file is, against the index read here, so a signature never vouches for content that
    does not match the index.

    Raises:
        IntegrityError: a manifest or file does not match the index (nothing is signed).
        ModelNotFoundError: the registry has no index.
        RemoteError: a remote registry could not be read or written.
    """
    from modelstore.trust.signing import key_id, sign_index

    store = registry.store
    lock = store.lock() if isinstance(store, SupportsLocking) else contextlib.nullcontext()
    with lock:
        data = store.read(INDEX_PATH, max_size=MAX_INDEX_BYTES)
        index = Index.from_bytes(data, registry.where(INDEX_PATH))
        problems = [c for c in check_versions(registry, index) if c.status != "ok"]
        if problems:
            first = problems[0]
            msg = (
                f"refusing to sign {registry.where(INDEX_PATH)}: {len(problems)} problem(s), first"
                f" {first.model} {first.name}: {first.detail}"
            )
            raise IntegrityError(msg)
        signature = sign_index(data, keys)
        store.write(SIGNATURE_PATH, signature)
    registry.refresh()
    signers = tuple(key_id(k.public_key()) for k in keys)
    return IndexStatus(index, bytes_digest(data), signers, data, signature)


def _blob_intact(registry: Registry, path: str, entry: FileEntry) -> bool:
    if not registry.store.exists(path):
        return False
    if entry.size > MAX_BLOB_SIZE:
        return False
    try:
        data = registry.store.read(path, max_size=entry.size)
        check_bytes(data, name=path, size=entry.size, digest=entry.digest)
    except (IntegrityError, OSError):
        return False
    return True
