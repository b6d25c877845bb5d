"""The blob cache: verified entry, eviction of corrupt entries, and `modelstore cache ...`."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from modelstore.cli import main
from modelstore.errors import IntegrityError, ModelstoreError
from modelstore.registry import Registry
from modelstore.store.cache import BlobCache, Cache
from modelstore.store.hashing import bytes_digest


def test_put_refuses_bytes_that_do_not_match_their_digest(tmp_path):
    cache = BlobCache(tmp_path)
    digest = bytes_digest(b"good")
    with pytest.raises(IntegrityError, match="digest mismatch"):
        cache.put(digest, b"evil")
    assert not cache.contains(digest)
    assert cache.leftovers() == []
    cache.put(digest, b"good")
    assert cache.get(digest, 4) == b"good"


def test_a_corrupt_entry_is_evicted_and_fetched_again(signed_registry, serve, isolated_env):
    server = serve(signed_registry)
    registry = Registry(server.url)
    manifest = registry.manifest("default")
    entry = manifest.file("reference-values")
    registry.read_file(manifest, "reference-values")
    cached = Cache(isolated_env).blobs.path(entry.digest)
    cached.write_bytes(cached.read_bytes()[::-1])
    before = server.requests.count(f"/registry/sha256/{entry.digest[7:]}")
    data = Registry(server.url).read_file(manifest, "reference-values")
    assert bytes_digest(data) == entry.digest
    assert server.requests.count(f"/registry/sha256/{entry.digest[7:]}") == before + 1
    assert bytes_digest(cached.read_bytes()) == entry.digest


def test_cache_cli_fetch_list_verify_clean(signed_registry, serve, isolated_env):
    server = serve(signed_registry)
    runner = CliRunner()
    result = runner.invoke(main, ["--registry", server.url, "cache", "fetch", "default"])
    assert result.exit_code == 0, result.output
    files = len(Registry(signed_registry).manifest("default").files)
    assert f"default@1.0.0                    {files} fetched, 0 already cached" in result.output
    result = runner.invoke(main, ["cache", "list"])
    assert result.exit_code == 0, result.output
    assert f"{server.url.rstrip('/')}  index_version 2" in result.output
    assert f"default@1.0.0                    {files}/{files} files" in result.output
    assert "(1 other versions not cached)" in result.output
    result = runner.invoke(main, ["cache", "verify"])
    assert result.exit_code == 0, result.output
    victim = Cache(isolated_env).blobs.entries()[0].path
    victim.write_bytes(b"corrupted")
    result = runner.invoke(main, ["cache", "verify", "--remove-bad"])
    assert result.exit_code == 1
    assert f"BAD      {victim}: digest mismatch" in result.output
    assert not victim.exists()
    result = runner.invoke(main, ["cache", "clean"])
    assert result.exit_code == 0, result.output
    assert Cache(isolated_env).blobs.entries() == []
    result = runner.invoke(main, ["--offline", "--registry", server.url, "list"])
    assert result.exit_code == 1
    assert "offline: the index of" in result.output


@pytest.mark.parametrize(
    "record",
    [
        b'{"location": "a", "location": "b", "index_digest": "x", "signature_digest": null,'
        b' "index_version": 1, "fetched": "now"}',
        b'{"location": "a", "index_digest": "x", "signature_digest": null,'
        b' "index_version": NaN, "fetched": "now"}',
        b'{"location": "a", "index_digest": "x", "signature_digest": null,'
        b' "index_version": "7", "fetched": "now"}',
        b'{"location": "a"}',
        b"[" * 100_000,
        b" " * 200_000,
    ],
    ids=["duplicate-key", "nan", "text-version", "missing-fields", "deep", "oversized"],
)
def test_malformed_registry_records_are_ignored_and_the_index_fetched_again(
    signed_registry, serve, isolated_env, record, monkeypatch
):
    server = serve(signed_registry)
    Registry(server.url).index()
    registries = Cache(isolated_env).registries
    (path,) = registries.folder.glob("*.json")
    (cached,) = registries.records()
    assert registries.record(cached.location) == cached
    path.write_bytes(record)
    assert registries.records() == []
    assert registries.record(cached.location) is None
    with monkeypatch.context() as offline:
        offline.setenv("MODELSTORE_OFFLINE", "1")
        with pytest.raises(ModelstoreError, match="offline"):
            Registry(server.url).index()
    assert Registry(server.url).index().models
    assert registries.record(cached.location) is not None
