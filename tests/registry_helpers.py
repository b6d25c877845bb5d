"""Helpers shared by registry tests: copies of a registry, signed or not, and a version's files
republished under another version."""

from __future__ import annotations

import dataclasses
import json
import shutil
from typing import TYPE_CHECKING

from modelstore.format.manifest import FileEntry
from modelstore.registry import INDEX_PATH, SIGNATURE_PATH, Registry, blob_path, manifest_path
from modelstore.trust.own_key import own_signing_key

if TYPE_CHECKING:
    from pathlib import Path


def republish(registry: Registry, ref: str, version: str, **blob_changes: bytes):
    manifest = registry.manifest(ref)
    blobs = {f.role: registry.read_file(manifest, f.role, copy_only=True) for f in manifest.files}
    blobs.update(blob_changes)
    files = tuple(
        FileEntry.for_bytes(role, blobs[role]) for role in (f.role for f in manifest.files)
    )
    return dataclasses.replace(manifest, version=version, files=files), blobs


def copy_registry(
    source: Registry, destination: Path, refs: list[str], *, sign: bool = True
) -> Registry:
    """Copy the given ``id@version`` entries (manifests, blobs, an index of just them).

    The copy is signed with the test run's own key (as ``modelstore publish`` signs), so it is
    trusted to run code like the embedded registry; ``sign=False`` leaves it unsigned, as a
    folder someone handed over.
    """
    index = json.loads((source.root / INDEX_PATH).read_bytes())
    models: dict = {}
    for ref in refs:
        model_id, version, digest = source.resolve(ref)
        manifest = source.manifest(ref)
        for relpath in [manifest_path(model_id, version)] + [
            blob_path(f.digest) for f in manifest.files
        ]:
            target = destination / relpath
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source.root / relpath, target)
        entry = models.setdefault(model_id, {**index["models"][model_id], "versions": {}})
        entry["versions"][version] = digest
        entry["latest"] = max(entry["versions"], key=lambda v: tuple(map(int, v.split("."))))
    index["models"] = models
    (destination / INDEX_PATH).write_text(json.dumps(index, indent=1) + "\n")
    copy = Registry(destination)
    if sign:
        copy.sign([own_signing_key()])
    return copy


def unsign(registry: Registry) -> Registry:
    """Drop the index signature (after re-hashing files as an attacker would); a new Registry."""
    (registry.root / SIGNATURE_PATH).unlink(missing_ok=True)
    return Registry(registry.root)


def new_registry(path):
    """A fresh local registry folder for a test to publish into, and evaluate from.

    Every test that publishes into a temporary registry makes it here, so whatever such a
    registry needs to be used (trusting an unsigned folder, say) is set up in one place.
    """
    path.mkdir(parents=True, exist_ok=True)
    return Registry(path)
