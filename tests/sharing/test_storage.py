"""The storage contract against every store: a folder, S3 on loopback, memory, HTTP (read-only)."""

from __future__ import annotations

import pytest

from modelstore.errors import InvalidNameError, ModelNotFoundError, RemoteError
from modelstore.store import LocalStore, Store, open_store


class StoreTests:
    """Conformance suite: each subclass provides a fresh writable ``store`` fixture."""

    def test_write_read_exists_list_remove(self, store: Store):
        assert not store.exists("manifests/a/1.0.0.json")
        store.write("manifests/a/1.0.0.json", b"one")
        store.write("registry/sha256/ab", b"blob")
        assert store.read("manifests/a/1.0.0.json") == b"one"
        assert store.exists("registry/sha256/ab")
        assert store.list("registry") == ["registry/sha256/ab"]
        assert store.list("nothing-here") == []
        store.write("manifests/a/1.0.0.json", b"two")  # replaced whole
        assert store.read("manifests/a/1.0.0.json") == b"two"
        store.remove("manifests/a/1.0.0.json")
        store.remove("manifests/a/1.0.0.json")  # absent: no error
        assert not store.exists("manifests/a/1.0.0.json")

    def test_bounded_read_stops_after_one_byte_too_many(self, store: Store):
        store.write("registry/sha256/big", b"x" * 5000)
        assert store.read("registry/sha256/big", max_size=100) == b"x" * 101

    def test_missing_file_is_not_found(self, store: Store):
        with pytest.raises(ModelNotFoundError, match="missing from the registry"):
            store.read("manifests/nope.json")

    @pytest.mark.parametrize(
        "path", ["../x", "/etc/passwd", "a/../../b", "a//b", "a/\x00", "", "a\\..\\b"]
    )
    def test_paths_that_could_escape_are_refused(self, store: Store, path: str):
        with pytest.raises(InvalidNameError, match="refusing registry path"):
            store.read(path)


class TestLocalStore(StoreTests):
    @pytest.fixture
    def store(self, tmp_path) -> Store:
        return LocalStore(tmp_path / "reg")

    def test_file_url_is_a_local_folder(self, tmp_path):
        assert isinstance(open_store(f"file://{tmp_path}"), LocalStore)


class TestS3Store(StoreTests):
    @pytest.fixture
    def store(self, s3_bucket) -> Store:
        return open_store(f"s3://{s3_bucket}/reg")


class TestMemoryStore(StoreTests):
    @pytest.fixture
    def store(self, tmp_path) -> Store:
        return open_store(f"memory://{tmp_path.name}/reg")


def test_http_store_reads_and_refuses_writes(serve, tmp_path):
    (tmp_path / "manifests").mkdir()
    (tmp_path / "manifests" / "index.json").write_bytes(b"{}")
    server = serve(tmp_path)
    store = open_store(server.url)
    assert store.read("manifests/index.json") == b"{}"
    assert store.exists("manifests/index.json")
    assert not store.exists("manifests/other.json")
    with pytest.raises(ModelNotFoundError):
        store.read("manifests/other.json")
    with pytest.raises(RemoteError, match="read-only"):
        store.write("manifests/index.json", b"[]")


def test_unreachable_server_is_a_clear_remote_error():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    store = open_store(f"http://127.0.0.1:{port}/")
    with pytest.raises(
        RemoteError, match=rf"http://127\.0\.0\.1:{port}/manifests/index\.json: download failed"
    ):
        store.read("manifests/index.json", max_size=10)
    with pytest.raises(RemoteError, match="cannot check whether it exists"):
        store.exists("manifests/index.json")
