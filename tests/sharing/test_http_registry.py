"""A registry served over HTTP on loopback: download, cache, offline, every tampering refused."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from sharing_helpers import LATER_REF, Keys, copy_versions, rewrite_index, subprocess_env

from modelstore import published_model
from modelstore.errors import (
    IntegrityError,
    OfflineError,
    RemoteError,
    RollbackError,
    SignatureError,
    VersionChangedError,
)
from modelstore.format.index import Index
from modelstore.format.manifest import Manifest
from modelstore.registry import INDEX_PATH, SIGNATURE_PATH, Registry, blob_path, manifest_path
from modelstore.store.cache import Cache
from modelstore.store.hashing import bytes_digest


def _blob_of(registry: Registry, ref: str, role: str) -> tuple[str, int]:
    entry = registry.manifest(ref).file(role)
    return entry.digest, entry.size


def test_first_download_verifies_and_fills_the_cache(
    signed_registry, serve, isolated_env, publisher_key
):
    server = serve(signed_registry)
    model = published_model("default", registry=server.url)
    assert model.ref == "default@1.0.0"
    reference = model.reference()
    assert reference["intensity"].shape == reference["sigma1"].shape
    assert model.registry.index_status().signers == (publisher_key.key_id,)
    digest, size = _blob_of(model.registry, "default", "reference-values")
    cached = Cache(isolated_env).blobs.path(digest)
    assert cached.stat().st_size == size
    assert bytes_digest(cached.read_bytes()) == digest
    assert f"/{blob_path(digest)}" in server.requests


def test_second_use_reads_only_the_index_from_the_server(signed_registry, serve):
    server = serve(signed_registry)
    published_model("default", registry=server.url).reference()
    before = len(server.content_requests())
    assert before >= 2  # the manifest and the reference file
    again = published_model("default", registry=server.url)
    again.reference()
    again.registry.fetch(["default"])
    fetched = server.content_requests()[before:]
    # the reference file and manifest come from the cache; only the two files not read before
    manifest = again.manifest
    missing = {f"/{blob_path(f.digest)}" for f in manifest.files if f.role != "reference-values"}
    assert set(fetched) == missing
    third = Registry(server.url)
    assert third.fetch(["default"]) == [("default@1.0.0", 0, len(manifest.files))]


def test_offline_uses_only_the_cache_and_names_what_is_missing(signed_registry, serve):
    server = serve(signed_registry)
    Registry(server.url).fetch(["default"])
    count = len(server.requests)
    offline = Registry(server.url, offline=True)
    model = published_model("default", registry=offline)
    assert model.reference()["intensity"].size > 0
    assert offline.verify(["default"])[-1].status == "ok"
    with pytest.raises(
        OfflineError,
        match=r"offline: .*k700-free/1\.0\.0\.json \(sha256:[0-9a-f]{64}\) is not in the cache",
    ):
        offline.manifest("k700-free")
    assert len(server.requests) == count  # offline never touched the server


def test_offline_without_a_cached_index_says_so(signed_registry, serve, monkeypatch):
    server = serve(signed_registry)
    monkeypatch.setenv("MODELSTORE_OFFLINE", "1")
    with pytest.raises(
        OfflineError, match=r"offline: the index of http://127\.0\.0\.1:\d+ is not in the cache"
    ):
        published_model("default", registry=server.url)
    assert server.requests == []


def test_tampered_blob_on_the_server_is_refused_and_not_cached(
    signed_registry, serve, isolated_env
):
    server = serve(signed_registry)
    digest, _ = _blob_of(Registry(signed_registry), "default", "reference-values")
    path = signed_registry / blob_path(digest)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    model = published_model("default", registry=server.url)
    with pytest.raises(
        IntegrityError,
        match=rf"{server.url}{blob_path(digest)}.*digest mismatch: expected {digest}",
    ):
        model.reference()
    assert not Cache(isolated_env).blobs.contains(digest)


def test_truncated_blob_on_the_server_is_refused(signed_registry, serve):
    server = serve(signed_registry)
    digest, size = _blob_of(Registry(signed_registry), "default", "reference-values")
    path = signed_registry / blob_path(digest)
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(
        IntegrityError, match=rf"size {size - 10} bytes, but the manifest records {size} bytes"
    ):
        published_model("default", registry=server.url).reference()


def _tamper_manifest(folder: Path, model_id: str = "default", version: str = "1.0.0") -> bytes:
    """Change a parameter value in a manifest, and re-hash it into the index (attacker's move)."""
    path = folder / manifest_path(model_id, version)
    raw = json.loads(path.read_bytes())
    raw["parameters"][0]["value"] = (
        42.0 if not isinstance(raw["parameters"][0]["value"], list) else [42.0, 0.0]
    )
    tampered = Manifest.from_bytes(json.dumps(raw).encode()).to_bytes()
    path.write_bytes(tampered)
    index = Index.from_bytes((folder / INDEX_PATH).read_bytes())
    entry = index.models[model_id]
    entry.versions[version] = bytes_digest(tampered)
    return rewrite_index(folder, index)


def test_tampered_and_rehashed_manifest_is_refused_by_the_signature(signed_registry, serve):
    server = serve(signed_registry)
    _tamper_manifest(signed_registry)
    with pytest.raises(
        SignatureError,
        match=r"index\.json: the signature by ed25519:[0-9a-f]{32} was made for another index",
    ):
        published_model("default", registry=server.url)


def test_tampered_index_with_a_copied_signature_digest_is_refused(signed_registry, serve):
    server = serve(signed_registry)
    index_bytes = _tamper_manifest(signed_registry)
    sig = json.loads((signed_registry / SIGNATURE_PATH).read_bytes())
    sig["index_digest"] = bytes_digest(index_bytes)  # the attacker edits the unsigned hint too
    (signed_registry / SIGNATURE_PATH).write_text(json.dumps(sig))
    with pytest.raises(
        SignatureError,
        match=r"does not verify: the index \(sha256:[0-9a-f]{64}\) or its signature was tampered",
    ):
        Registry(server.url).index()


def test_manifest_resigned_by_an_untrusted_key_is_refused(
    signed_registry, serve, attacker_key: Keys
):
    server = serve(signed_registry)
    index = Index.from_bytes((signed_registry / INDEX_PATH).read_bytes())
    _tamper_manifest(signed_registry)
    index = Index.from_bytes((signed_registry / INDEX_PATH).read_bytes())
    rewrite_index(signed_registry, index, [attacker_key.private])
    with pytest.raises(
        SignatureError, match=rf"signed by {attacker_key.key_id}, none of which this client trusts"
    ):
        published_model("default", registry=server.url)


def test_unsigned_remote_registry_is_refused(signed_registry, serve):
    server = serve(signed_registry)
    (signed_registry / SIGNATURE_PATH).unlink()
    with pytest.raises(
        SignatureError, match=r"the index is not signed \(.*index\.json\.sig is missing\)"
    ):
        published_model("default", registry=server.url)


def test_rolled_back_index_is_refused(signed_registry, serve, publisher_key):
    server = serve(signed_registry)
    old_index = (signed_registry / INDEX_PATH).read_bytes()
    old_sig = (signed_registry / SIGNATURE_PATH).read_bytes()
    assert Registry(server.url).index().index_version == 2
    copy_versions(signed_registry, [LATER_REF], [publisher_key.private])
    assert published_model("default", registry=server.url).version == "1.1.0"
    # the server (a stale mirror, or an attacker replaying an old signed index) goes back
    (signed_registry / INDEX_PATH).write_bytes(old_index)
    (signed_registry / SIGNATURE_PATH).write_bytes(old_sig)
    with pytest.raises(
        RollbackError, match=r"index_version 2 is older than index_version 3, which this client saw"
    ):
        published_model("default", registry=server.url)


def test_changed_published_version_is_refused_even_when_signed(
    signed_registry, serve, publisher_key
):
    server = serve(signed_registry)
    first = Registry(server.url).resolve("default@1.0.0")[2]
    _tamper_manifest(signed_registry)
    index = Index.from_bytes((signed_registry / INDEX_PATH).read_bytes())
    grown = Index(index.models, index.index_version + 1)
    rewrite_index(signed_registry, grown, [publisher_key.private])
    with pytest.raises(
        VersionChangedError,
        match=(
            rf"default@1\.0\.0 now has manifest sha256:[0-9a-f]{{64}},"
            rf" but this client saw it with {first}"
        ),
    ):
        Registry(server.url).index()


def test_interrupted_download_leaves_nothing_behind_and_the_retry_works(
    signed_registry, serve, isolated_env
):
    server = serve(signed_registry)
    digest, _ = _blob_of(Registry(signed_registry), "default", "reference-values")
    server.cut_once.add(f"/{blob_path(digest)}")
    model = published_model("default", registry=server.url)
    with pytest.raises(RemoteError, match=rf"{server.url}{blob_path(digest)}: download failed"):
        model.reference()
    blobs = Cache(isolated_env).blobs
    assert not blobs.contains(digest)
    assert blobs.leftovers() == []
    assert model.reference()["intensity"].size > 0
    assert blobs.contains(digest)


def test_two_processes_download_the_same_model_at_once(signed_registry, serve, isolated_env):
    server = serve(signed_registry)
    server.rendezvous_parties = 2  # each blob is held until both processes are downloading it
    code = "import sys; from modelstore.cli import main; sys.exit(main())"
    command = [sys.executable, "-c", code, "--registry", server.url, "cache", "fetch", "default"]
    procs = [
        subprocess.Popen(
            command, env=subprocess_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=60) for p in procs]
    for proc, (out, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err
        assert "default@1.0.0" in out
    manifest = Registry(signed_registry).manifest("default")
    for entry in manifest.files:
        assert (
            server.requests.count(f"/{blob_path(entry.digest)}") == 2
        )  # both really downloaded it
    cache = Cache(isolated_env)
    assert all(problem == "" for _, problem in cache.blobs.verify())
    assert cache.blobs.leftovers() == []
    assert Registry(server.url, offline=True).verify(["default"])[-1].status == "ok"


def test_done_when_a_served_copy_of_the_embedded_registry_loads_with_the_shipped_key(
    tmp_path, serve
):
    """The issue's acceptance line: published_model("default", registry="http://127.0.0.1:PORT/")."""
    from modelstore.registry import embedded_registry_root

    root = embedded_registry_root()
    served = tmp_path / "embedded-copy"
    (served / "manifests").mkdir(parents=True)
    for rel in (INDEX_PATH, SIGNATURE_PATH):
        shutil.copy(root / rel, served / rel)
    source = Registry(root)
    model_id, version, _ = source.resolve("default")
    (served / manifest_path(model_id, version)).parent.mkdir(parents=True)
    shutil.copy(root / manifest_path(model_id, version), served / manifest_path(model_id, version))
    for entry in source.manifest("default").files:
        (served / blob_path(entry.digest)).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(root / blob_path(entry.digest), served / blob_path(entry.digest))
    server = serve(served)
    model = published_model("default", registry=server.url)
    assert model.version == version
    assert model.reference()["intensity"].size > 0


@pytest.mark.parametrize(
    "respell",
    [
        lambda url: url.replace("127.0.0.1", "localhost"),
        lambda url: url.replace("/registry", "//registry"),
        lambda url: url.replace("/registry", "/./registry"),
        lambda url: url + "/.",
        lambda url: url.replace("http://", "HTTP://"),
    ],
    ids=["localhost", "double-slash", "dot-segment", "trailing-dot", "scheme-case"],
)
def test_rollback_memory_survives_another_spelling_of_the_url(
    signed_registry, serve, publisher_key, respell
):
    server = serve(signed_registry.parent)
    url = server.url + signed_registry.name  # http://127.0.0.1:PORT/registry
    old_index = (signed_registry / INDEX_PATH).read_bytes()
    old_sig = (signed_registry / SIGNATURE_PATH).read_bytes()
    copy_versions(signed_registry, [LATER_REF], [publisher_key.private])
    assert published_model("default", registry=url).version == "1.1.0"
    (signed_registry / INDEX_PATH).write_bytes(old_index)
    (signed_registry / SIGNATURE_PATH).write_bytes(old_sig)
    other = respell(url)
    assert other != url
    with pytest.raises(RollbackError, match=r"index_version 2 is older than index_version 3"):
        published_model("default", registry=other)
