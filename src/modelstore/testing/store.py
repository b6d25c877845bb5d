"""A conformance suite for registry stores, to subclass once per store implementation.

Modelled on zarr-python's ``zarr.testing.store.StoreTests``: a subclass provides a ``store``
fixture and two helpers, ``raw_set`` and ``raw_get``, that put and fetch bytes *without* the
store's own methods (straight on disk, through fsspec, or in the served folder), so that
``read``, ``write``, ``list`` and friends are checked from outside. Tests of an ability
(``SupportsLocking``, ``SupportsLeftovers``, writes) run only where the store declares it.

Example::

    class TestMyStore(StoreTests):
        @pytest.fixture
        def store(self, tmp_path):
            return MyStore(tmp_path)

        def raw_set(self, store, relpath, data):
            (tmp_path / relpath).write_bytes(data)
        ...

Needs pytest (``pip install 'modelstore[test]'``).
"""

from __future__ import annotations

from typing import Any

import pytest

from modelstore.errors import InvalidNameError, ModelNotFoundError, RemoteError
from modelstore.store.contract import (
    TMP_PREFIX,
    Store,
    SupportsLeftovers,
    SupportsLocking,
    check_relpath,
)

__all__ = ["StoreTests"]

BAD_PATHS = ("", "/etc/passwd", "../outside", "a/../b", "a//b", "a/./b", "a\\b", "a\x00b")


class StoreTests:
    """The store contract, checked from outside; subclass and fill in the three members."""

    @pytest.fixture
    def store(self) -> Store:  # pragma: no cover - provided by subclasses
        """The store under test, empty."""
        raise NotImplementedError

    def raw_set(self, store: Any, relpath: str, data: bytes) -> None:  # pragma: no cover
        """Put ``data`` at ``relpath`` bypassing the store's methods."""
        raise NotImplementedError

    def raw_get(self, store: Any, relpath: str) -> bytes | None:  # pragma: no cover
        """The bytes at ``relpath`` bypassing the store's methods; None if absent."""
        raise NotImplementedError

    # -- reading -----------------------------------------------------------------------------

    def test_is_a_store(self, store: Store) -> None:
        assert isinstance(store, Store)
        assert isinstance(store.location, str)
        assert store.location

    def test_read_returns_what_is_there(self, store: Store) -> None:
        self.raw_set(store, "manifests/index.json", b'{"a": 1}')
        assert store.read("manifests/index.json") == b'{"a": 1}'

    def test_read_bounded_by_max_size(self, store: Store) -> None:
        self.raw_set(store, "registry/sha256/big", b"x" * 1000)
        data = store.read("registry/sha256/big", max_size=10)
        assert data == b"x" * len(data)
        assert 10 <= len(data) <= 11  # at most max_size + 1: enough to refuse an oversized file

    def test_read_missing_is_model_not_found(self, store: Store) -> None:
        with pytest.raises(ModelNotFoundError) as info:
            store.read("manifests/absent.json")
        assert isinstance(info.value, LookupError)

    def test_exists(self, store: Store) -> None:
        assert not store.exists("manifests/index.json")
        self.raw_set(store, "manifests/index.json", b"{}")
        assert store.exists("manifests/index.json")

    def test_list_is_sorted_and_skips_temporaries(self, store: Store) -> None:
        for name in ("b", "a", "c"):
            self.raw_set(store, f"registry/sha256/{name}", name.encode())
        self.raw_set(store, f"registry/sha256/{TMP_PREFIX}partial", b"half")
        self.raw_set(store, "manifests/index.json", b"{}")
        assert store.list("registry/sha256") == [f"registry/sha256/{n}" for n in "abc"]

    def test_list_of_missing_folder_is_empty(self, store: Store) -> None:
        assert store.list("registry/sha256") == []

    def test_where_names_the_path(self, store: Store) -> None:
        assert store.where("manifests/index.json").endswith("manifests/index.json")

    @pytest.mark.parametrize("relpath", BAD_PATHS)
    def test_bad_paths_are_refused(self, store: Store, relpath: str) -> None:
        with pytest.raises(InvalidNameError):
            check_relpath(relpath)
        with pytest.raises(InvalidNameError):
            store.read(relpath)
        with pytest.raises(InvalidNameError):
            store.exists(relpath)
        with pytest.raises((InvalidNameError, RemoteError)):  # read-only stores may say so first
            store.write(relpath, b"x")

    # -- writing (where supported) -----------------------------------------------------------

    def test_write_is_visible_from_outside(self, store: Store) -> None:
        if not store.supports_writes:
            pytest.skip("read-only store")
        store.write("manifests/m/1.0.0.json", b"manifest")
        assert self.raw_get(store, "manifests/m/1.0.0.json") == b"manifest"
        store.write("manifests/m/1.0.0.json", b"replaced")
        assert self.raw_get(store, "manifests/m/1.0.0.json") == b"replaced"

    def test_write_leaves_no_temporaries(self, store: Store) -> None:
        if not store.supports_writes:
            pytest.skip("read-only store")
        store.write("registry/sha256/x", b"data")
        assert store.list("registry/sha256") == ["registry/sha256/x"]

    def test_remove(self, store: Store) -> None:
        if not store.supports_writes:
            pytest.skip("read-only store")
        self.raw_set(store, "manifests/index.json.sig", b"sig")
        store.remove("manifests/index.json.sig")
        assert self.raw_get(store, "manifests/index.json.sig") is None
        store.remove("manifests/index.json.sig")  # absent: no error

    def test_read_only_store_refuses_writes(self, store: Store) -> None:
        if store.supports_writes:
            pytest.skip("writable store")
        with pytest.raises(RemoteError):
            store.write("manifests/index.json", b"{}")
        with pytest.raises(RemoteError):
            store.remove("manifests/index.json")

    # -- optional abilities ------------------------------------------------------------------

    def test_lock_is_reentrant_free_context(self, store: Store) -> None:
        if not isinstance(store, SupportsLocking):
            pytest.skip("no locking")
        with store.lock():
            pass
        with store.lock():  # released: can be taken again
            pass

    def test_leftovers_are_listed_and_removed(self, store: Store) -> None:
        if not isinstance(store, SupportsLeftovers):
            pytest.skip("no leftovers")
        self.raw_set(store, f"manifests/{TMP_PREFIX}x", b"half")
        self.raw_set(store, "manifests/index.json", b"{}")
        assert [p.name for p in store.leftovers()] == [f"{TMP_PREFIX}x"]
        assert store.remove_leftovers(older_than=-1.0) == 1
        assert store.leftovers() == []
        assert self.raw_get(store, "manifests/index.json") == b"{}"
