"""A registry of published model versions: resolve and read verified files, publish, sign, verify.

``core`` reads (index trust, manifests, files), ``publishing`` writes, ``checks`` verifies;
``layout`` holds the paths inside a registry and the result records; ``leftovers`` lists and
removes what killed writers left in a registry folder.
"""

from __future__ import annotations

from modelstore.registry.core import Registry, default_registry
from modelstore.registry.leftovers import registry_leftovers, remove_registry_leftovers
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

__all__ = [
    "INDEX_PATH",
    "OFFLINE_ENV",
    "REGISTRY_ENV",
    "SIGNATURE_PATH",
    "FileCheck",
    "IndexStatus",
    "Registry",
    "blob_path",
    "default_registry",
    "embedded_registry_root",
    "manifest_path",
    "registry_leftovers",
    "remove_registry_leftovers",
]
