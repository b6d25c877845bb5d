"""Copy a registry to another place (folder to bucket, URL to folder), verified, index last.

Every manifest and file is read through the source registry's checks (index signature,
manifest digest, file size and digest) before it is written; files already present at the
destination are checked (size and digest) and replaced when corrupt, otherwise not uploaded
again (names are digests). The index goes last, then its
signature, so a client of the destination never sees an index whose files are missing.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

from modelstore.errors import (
    IntegrityError,
    ModelNotFoundError,
    PublishConflictError,
    RollbackError,
)
from modelstore.format.index import MAX_INDEX_BYTES, Index
from modelstore.format.manifest import Manifest
from modelstore.progress import progress
from modelstore.registry import INDEX_PATH, SIGNATURE_PATH, blob_path, manifest_path
from modelstore.store.contract import SupportsLocking
from modelstore.store.hashing import check_bytes

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from modelstore.registry import Registry

__all__ = ["PushReport", "push_registry"]


@dataclass(frozen=True)
class PushReport:
    """What a push did."""

    versions: int
    uploaded: int
    uploaded_bytes: int
    present: int
    manifests_written: int
    index_version: int
    signed_by: tuple[str, ...]
    repaired: int = 0  # files that were at the destination but corrupt, and were replaced


def _check_destination(dest: Registry, index: Index, source: str) -> None:
    """Refuse to roll back the destination or to change what it already publishes."""
    try:
        data = dest.store.read(INDEX_PATH, max_size=MAX_INDEX_BYTES)
    except ModelNotFoundError:
        return
    current = Index.from_bytes(data, dest.where(INDEX_PATH))
    if current.index_version > index.index_version:
        msg = (
            f"{dest.where(INDEX_PATH)} has index_version {current.index_version}, newer than"
            f" {index.index_version} at {source}: pushing would roll it back"
        )
        raise RollbackError(msg)
    for model_id, entry in current.models.items():
        for version, digest in entry.versions.items():
            ref = f"{model_id}@{version}"
            theirs = index.models.get(model_id)
            ours = None if theirs is None else theirs.versions.get(version)
            if ours is None:
                msg = (
                    f"{dest.location} publishes {ref}, which {source} lacks: pushing would drop it"
                )
                raise PublishConflictError(msg)
            if ours != digest:
                msg = (
                    f"{ref} has manifest {digest} at {dest.location} but {ours} at {source}:"
                    " published versions are immutable, refusing to overwrite"
                )
                raise PublishConflictError(msg)


def push_registry(
    source: Registry,
    dest: Registry,
    *,
    signing_keys: Sequence[Ed25519PrivateKey] = (),
    on_file: Callable[[str, str, int], None] | None = None,
) -> PushReport:
    """Copy every version of ``source`` to ``dest``; return what was done.

    ``on_file(status, name, size)`` is called for each file (status ``uploaded``,
    ``present`` (already there and verified) or ``repaired`` (there but corrupt: replaced)).
    A progress bar over the versions shows on a terminal (`modelstore.progress`).
    With ``signing_keys`` the destination index is signed with them; otherwise
    the source's signature (if any) is copied.

    Raises:
        ModelNotFoundError: the source has no index.
        IntegrityError: a source file fails verification, or the destination index is newer.
        RemoteError: a store could not be read or written.
        SigningKeyError: a signing key is unusable.
    """
    from modelstore.trust.signing import key_id, sign_index

    status = source.index_status()
    index = status.index
    if status.digest is None:
        msg = f"{source.location} has no index: nothing to push"
        raise ModelNotFoundError(msg)
    lock = (
        dest.store.lock() if isinstance(dest.store, SupportsLocking) else contextlib.nullcontext()
    )
    with lock:
        _check_destination(dest, index, source.location)
        present = set(dest.store.list("registry/sha256"))
        uploaded = uploaded_bytes = skipped = manifests = versions = repaired = 0
        verified: set[str] = set()
        pairs = [(m, v) for m, entry in index.models.items() for v in entry.versions]
        for model_id, version in progress(pairs, desc="pushing", unit=" versions"):
            ref = f"{model_id}@{version}"
            manifest_data = source.manifest_bytes(ref)
            manifest = Manifest.from_bytes(
                manifest_data, source.where(manifest_path(model_id, version))
            )
            versions += 1
            for file in manifest.files:
                path = blob_path(file.digest)
                if path in verified or (
                    path in present and _intact(dest, path, file.size, file.digest)
                ):
                    verified.add(path)
                    skipped += 1
                    if on_file:
                        on_file("present", f"{ref} {file.name}", file.size)
                    continue
                data = source.read_file(manifest, file.role, copy_only=True)
                dest.store.write(path, data)
                status_word = "repaired" if path in present else "uploaded"
                present.add(path)
                verified.add(path)
                if status_word == "repaired":
                    repaired += 1
                uploaded += 1
                uploaded_bytes += len(data)
                if on_file:
                    on_file(status_word, f"{ref} {file.name}", len(data))
            mpath = manifest_path(model_id, version)
            try:
                same = dest.store.read(mpath, max_size=len(manifest_data)) == manifest_data
            except ModelNotFoundError:
                same = False
            if not same:
                dest.store.write(mpath, manifest_data)
                manifests += 1
        signed_by: tuple[str, ...] = ()
        if signing_keys:
            signature: bytes | None = sign_index(status.data, signing_keys)
            signed_by = tuple(key_id(k.public_key()) for k in signing_keys)
        else:
            signature = status.signature
            signed_by = status.signers
        dest.store.write(INDEX_PATH, status.data)
        if signature is not None:
            dest.store.write(SIGNATURE_PATH, signature)
        else:
            dest.store.remove(SIGNATURE_PATH)
    dest.refresh()
    return PushReport(
        versions,
        uploaded,
        uploaded_bytes,
        skipped,
        manifests,
        index.index_version,
        signed_by,
        repaired,
    )


def _intact(dest: Registry, path: str, size: int, digest: str) -> bool:
    """Whether the destination's copy of a blob has the right size and digest."""
    try:
        check_bytes(
            dest.store.read(path, max_size=size), name=dest.where(path), size=size, digest=digest
        )
    except (IntegrityError, ModelNotFoundError, OSError):
        return False
    return True
