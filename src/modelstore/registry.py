"""A registry of published model versions: resolve, read verified files, publish, verify."""

from __future__ import annotations

import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from modelstore.errors import (
    IntegrityError,
    ManifestError,
    ModelNotFoundError,
    ModelstoreError,
    PublishConflictError,
)
from modelstore.hashing import bytes_digest, check_bytes, parse_digest
from modelstore.index import Index
from modelstore.manifest import FileEntry, Manifest
from modelstore.names import ModelRef, check_model_id, check_version, parse_ref, version_key
from modelstore.storage import LocalStore

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

__all__ = ["FileCheck", "Registry", "default_registry", "embedded_registry_root"]

INDEX_PATH = "manifests/index.json"
REGISTRY_ENV = "MODELSTORE_REGISTRY"


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


class Registry:
    """Published model versions stored in a folder (see docs/format.md for the layout)."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.store = LocalStore(root)

    def __repr__(self) -> str:
        return f"Registry({str(self.store.root)!r})"

    @property
    def root(self) -> Path:
        return self.store.root

    # -- reading -----------------------------------------------------------------------------

    def index(self) -> Index:
        if not self.store.exists(INDEX_PATH):
            return Index()
        return Index.from_bytes(self.store.read(INDEX_PATH), f"{self.root / INDEX_PATH}")

    def resolve(self, ref: str | int | ModelRef) -> tuple[str, str, str]:
        """Return ``(model id, version, manifest digest)`` for ``ID[@VERSION]``, title or index."""
        if not isinstance(ref, ModelRef):
            ref = parse_ref(ref)
        index = self.index()
        model_id = index.resolve_name(ref.name)
        version, digest = index.manifest_digest(model_id, ref.version)
        return model_id, version, digest

    def manifest(self, ref: str | int | ModelRef, digest: str | None = None) -> Manifest:
        """Read and verify the manifest of ``ref`` against the index (and ``digest`` if given)."""
        model_id, version, indexed = self.resolve(ref)
        path = manifest_path(model_id, version)
        if digest is not None and digest != indexed:
            parse_digest(digest)
            msg = (
                f"{path}: the index records {indexed}, but the caller pinned {digest}"
                " (the published version is not the one you expect)"
            )
            raise IntegrityError(msg)
        data = self.store.read(path)
        check_bytes(data, name=str(self.root / path), size=len(data), digest=indexed)
        manifest = Manifest.from_bytes(data, str(self.root / path))
        if (manifest.model_id, manifest.version) != (model_id, version):
            msg = f"{path}: describes {manifest.model_id}@{manifest.version}, not {model_id}@{version}"
            raise ManifestError(msg)
        return manifest

    def read_file(self, manifest: Manifest, role: str) -> bytes:
        """Return the bytes of one artifact file, verified against the manifest.

        The returned object is the one that was hashed: callers deserialise exactly these bytes.
        """
        entry = manifest.file(role)
        return self._read_entry(manifest, entry)

    def _read_entry(self, manifest: Manifest, entry: FileEntry) -> bytes:
        path = blob_path(entry.digest)
        where = f"{manifest.model_id}@{manifest.version} {entry.name} ({self.root / path})"
        try:
            data = self.store.read(path)
        except ModelNotFoundError:
            msg = f"{where}: missing from the registry"
            raise ModelNotFoundError(msg) from None
        return check_bytes(data, name=where, size=entry.size, digest=entry.digest)

    # -- publishing --------------------------------------------------------------------------

    def publish(self, manifest: Manifest, blobs: Mapping[str, bytes]) -> Literal["published", "unchanged"]:
        """Store the blobs, then the manifest, then the index (the index is what makes it visible).

        Publishing an existing ``id@version`` with the same content is a no-op; with other content
        it raises PublishConflictError. Published versions are never rewritten.
        """
        roles = {f.role for f in manifest.files}
        if roles != set(blobs):
            msg = f"the manifest lists {sorted(roles)}, but blobs were given for {sorted(blobs)}"
            raise ManifestError(msg)
        for entry in manifest.files:
            check_bytes(blobs[entry.role], name=entry.name, size=entry.size, digest=entry.digest)
        manifest_bytes = manifest.to_bytes()
        Manifest.from_bytes(manifest_bytes)  # never publish what we would refuse to read
        with self.store.lock():
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
            self.store.write(INDEX_PATH, new_index.to_bytes())
        return "published"

    def _blob_intact(self, path: str, entry: FileEntry) -> bool:
        if not self.store.exists(path):
            return False
        try:
            data = self.store.read(path)
            check_bytes(data, name=path, size=entry.size, digest=entry.digest)
        except IntegrityError:
            return False
        return True

    # -- verification ------------------------------------------------------------------------

    def refs(self) -> list[str]:
        """Every ``id@version`` in the index, sorted."""
        index = self.index()
        return [
            f"{model_id}@{version}"
            for model_id, entry in sorted(index.models.items())
            for version in sorted(entry.versions, key=version_key)
        ]

    def verify(self, refs: Iterable[str] | None = None) -> list[FileCheck]:
        """Check the manifest and every file of each version; one FileCheck per file."""
        checks: list[FileCheck] = []
        for ref in self.refs() if refs is None else refs:
            try:
                manifest = self.manifest(ref)
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
                except IntegrityError as exc:
                    checks.append(FileCheck(name, entry.name, "mismatch", str(exc)))
                except ModelNotFoundError as exc:
                    checks.append(FileCheck(name, entry.name, "missing", str(exc)))
                except (OSError, ModelstoreError) as exc:
                    checks.append(FileCheck(name, entry.name, "error", str(exc)))
                else:
                    checks.append(FileCheck(name, entry.name, "ok", entry.digest))
        return checks


def default_registry() -> Registry:
    """The registry named by ``MODELSTORE_REGISTRY``, else the embedded one."""
    root = os.environ.get(REGISTRY_ENV)
    return Registry(root) if root else Registry(embedded_registry_root())
