"""The shipped store conformance suite (modelstore.testing.store) against every store we have.

Each subclass reaches the bytes without the store: on disk, through fsspec's own memory
filesystem, through boto3 for S3 (moto on loopback), and in the folder an HTTP server serves.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from modelstore.store import (
    LocalStore,
    RemoteStore,
    Store,
    SupportsLeftovers,
    SupportsLocalPath,
    SupportsLocking,
    open_store,
)
from modelstore.testing.store import StoreTests


class TestLocalStoreConformance(StoreTests):
    @pytest.fixture
    def store(self, tmp_path: Path) -> Store:
        return LocalStore(tmp_path / "reg")

    def raw_set(self, store: Any, relpath: str, data: bytes) -> None:
        path = Path(store.root, relpath)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)

    def raw_get(self, store: Any, relpath: str) -> bytes | None:
        path = Path(store.root, relpath)
        return path.read_bytes() if path.is_file() else None

    def test_declares_its_abilities(self, store: Store) -> None:
        assert isinstance(store, SupportsLocking)
        assert isinstance(store, SupportsLeftovers)
        assert isinstance(store, SupportsLocalPath)
        assert store.supports_writes


class TestMemoryStoreConformance(StoreTests):
    @pytest.fixture
    def store(self, tmp_path: Path) -> Store:
        return open_store(f"memory://{tmp_path.name}/reg")

    @staticmethod
    def _path(store: Any, relpath: str) -> str:
        return f"{store.url.removeprefix('memory://')}/{relpath}"

    def raw_set(self, store: Any, relpath: str, data: bytes) -> None:
        import fsspec

        fsspec.filesystem("memory").pipe(self._path(store, relpath), data)

    def raw_get(self, store: Any, relpath: str) -> bytes | None:
        import fsspec

        fs = fsspec.filesystem("memory")
        path = self._path(store, relpath)
        return fs.cat(path) if fs.exists(path) else None

    def test_declares_its_abilities(self, store: Store) -> None:
        assert store.supports_writes
        assert not isinstance(store, (SupportsLocking, SupportsLeftovers, SupportsLocalPath))


class TestS3StoreConformance(StoreTests):
    @pytest.fixture
    def store(self, s3_bucket: str, s3_endpoint: str) -> Store:
        self.bucket, self.endpoint = s3_bucket, s3_endpoint
        return open_store(f"s3://{s3_bucket}/reg")

    def _client(self) -> Any:
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint)

    def raw_set(self, store: Any, relpath: str, data: bytes) -> None:
        self._client().put_object(Bucket=self.bucket, Key=f"reg/{relpath}", Body=data)

    def raw_get(self, store: Any, relpath: str) -> bytes | None:
        client = self._client()
        try:
            return client.get_object(Bucket=self.bucket, Key=f"reg/{relpath}")["Body"].read()
        except client.exceptions.NoSuchKey:
            return None


class TestHttpStoreConformance(StoreTests):
    @pytest.fixture
    def store(self, serve: Any, tmp_path: Path) -> Store:
        self.folder = tmp_path / "served"
        self.folder.mkdir()
        return open_store(serve(self.folder).url)

    def raw_set(self, store: Any, relpath: str, data: bytes) -> None:
        path = self.folder / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)

    def raw_get(self, store: Any, relpath: str) -> bytes | None:
        path = self.folder / relpath
        return path.read_bytes() if path.is_file() else None

    def test_declares_its_abilities(self, store: Store) -> None:
        assert isinstance(store, RemoteStore)
        assert not store.supports_writes
