"""Shared fixtures: the embedded registry, small copies of it, and an isolated build cache."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from modelstore.registry import (
    INDEX_PATH,
    SIGNATURE_PATH,
    Registry,
    blob_path,
    embedded_registry_root,
    manifest_path,
)
from modelstore.trust.own_key import own_signing_key


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Native builds and downloads of the test run go to a private cache, not the user's; the
    user's own signing key and trust settings are a private config folder's."""
    mp = pytest.MonkeyPatch()
    mp.setenv("MODELSTORE_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
    mp.setenv("MODELSTORE_CONFIG_DIR", str(tmp_path_factory.mktemp("config")))
    mp.delenv("MODELSTORE_TRUSTED_KEYS", raising=False)
    mp.delenv("MODELSTORE_TRUSTED_REGISTRIES", raising=False)
    mp.delenv("MODELSTORE_REQUIRE_SIGNATURE", raising=False)
    mp.delenv("MODELSTORE_REGISTRY", raising=False)
    mp.delenv("MODELSTORE_OFFLINE", raising=False)
    yield
    mp.undo()


@pytest.fixture(scope="session")
def embedded() -> Registry:
    return Registry(embedded_registry_root())


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


@pytest.fixture
def small_registry(embedded: Registry, tmp_path: Path) -> Registry:
    """A private, writable registry holding every version of the default model."""
    versions = embedded.index().models["default"].versions
    return copy_registry(embedded, tmp_path / "registry", [f"default@{v}" for v in versions])
