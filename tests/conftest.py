"""Shared fixtures: the embedded registry, small copies of it, and an isolated build cache."""

from __future__ import annotations

from pathlib import Path

import pytest
from registry_helpers import copy_registry

from modelstore.registry import Registry, embedded_registry_root


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The tests that build upstream models (the longest, 10-50 s each) first, so that with
    pytest-xdist the others fill the workers around them instead of waiting behind them."""
    items.sort(key=lambda item: item.get_closest_marker("upstream") is None)


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


@pytest.fixture
def small_registry(embedded: Registry, tmp_path: Path) -> Registry:
    """A private, writable registry holding every version of the default model."""
    versions = embedded.index().models["default"].versions
    return copy_registry(embedded, tmp_path / "registry", [f"default@{v}" for v in versions])
