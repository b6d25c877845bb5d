"""Where things are in a registry: file paths, the embedded registry, and the result records."""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Literal

from modelstore.errors import ModelNotFoundError
from modelstore.format.index import Index
from modelstore.format.names import check_model_id, check_version
from modelstore.store.hashing import parse_digest

__all__ = [
    "INDEX_PATH",
    "OFFLINE_ENV",
    "REGISTRY_ENV",
    "SIGNATURE_PATH",
    "FileCheck",
    "IndexStatus",
    "blob_path",
    "embedded_registry_root",
    "manifest_path",
]

INDEX_PATH = "manifests/index.json"
SIGNATURE_PATH = "manifests/index.json.sig"
REGISTRY_ENV = "MODELSTORE_REGISTRY"
OFFLINE_ENV = "MODELSTORE_OFFLINE"


def blob_path(digest: str) -> str:
    """Where the blob of ``digest`` lives in a registry.

    Raises:
        ManifestError: ``digest`` is not ``sha256:`` and 64 lower-case hex digits.
    """
    return f"registry/sha256/{parse_digest(digest)}"


def manifest_path(model_id: str, version: str) -> str:
    """Where the manifest of ``model_id@version`` lives in a registry.

    Raises:
        InvalidNameError: the id or version does not follow the grammar.
    """
    return f"manifests/{check_model_id(model_id)}/{check_version(version)}.json"


def embedded_registry_root() -> Path:
    """The registry shipped with the package.

    A wheel carries it as ``modelstore/_embedded``; a source checkout (editable install) uses
    the repository's own ``registry/`` and ``manifests/``.

    Raises:
        ModelNotFoundError: the installation carries no embedded registry.
    """
    packaged = Path(str(resources.files("modelstore"))) / "_embedded"
    if (packaged / INDEX_PATH).is_file():
        return packaged
    checkout = Path(__file__).resolve().parents[3]
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
