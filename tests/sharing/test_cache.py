"""The blob cache: verified entry, eviction of corrupt entries, and `modelstore cache ...`."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from modelstore.cli import main
from modelstore.errors import IntegrityError
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
