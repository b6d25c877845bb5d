"""Helpers shared by registry tests: a version's files republished under another version."""

from __future__ import annotations

import dataclasses

from modelstore.format.manifest import FileEntry
from modelstore.registry import Registry


def republish(registry: Registry, ref: str, version: str, **blob_changes: bytes):
    manifest = registry.manifest(ref)
    blobs = {f.role: registry.read_file(manifest, f.role) for f in manifest.files}
    blobs.update(blob_changes)
    files = tuple(
        FileEntry.for_bytes(role, blobs[role]) for role in (f.role for f in manifest.files)
    )
    return dataclasses.replace(manifest, version=version, files=files), blobs


def new_registry(path):
    """A fresh local registry folder for a test to publish into, and evaluate from.

    Every test that publishes into a temporary registry makes it here, so whatever such a
    registry needs to be used (trusting an unsigned folder, say) is set up in one place.
    """
    path.mkdir(parents=True, exist_ok=True)
    return Registry(path)
