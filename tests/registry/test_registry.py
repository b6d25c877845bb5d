from __future__ import annotations

import dataclasses
import os
import pickle
import time

import pytest
from registry_helpers import republish

from modelstore import published_model
from modelstore.errors import (
    IntegrityError,
    ManifestError,
    ModelNotFoundError,
    PublishConflictError,
)
from modelstore.format.manifest import FileEntry
from modelstore.registry import Registry, blob_path, manifest_path


class Canary:
    """Unpickling this creates a file: proof that a pickle ran code."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def flip_byte(path, offset=100):
    data = bytearray(path.read_bytes())
    data[offset % len(data)] ^= 0x01
    path.write_bytes(bytes(data))


def test_publish_is_visible_and_verifiable(small_registry):
    manifest, blobs = republish(small_registry, "default", "2.0.0")
    before = small_registry.index().index_version
    assert small_registry.publish(manifest, blobs) == "published"
    assert small_registry.index().index_version == before + 1
    assert small_registry.resolve("default")[1] == "2.0.0"
    assert all(c.status == "ok" for c in small_registry.verify(["default@2.0.0"]))


def test_identical_content_is_a_no_op(small_registry):
    manifest, blobs = republish(small_registry, "default", "2.0.0")
    small_registry.publish(manifest, blobs)
    index_bytes = (small_registry.root / "manifests/index.json").read_bytes()
    # pickle bytes are not stable from run to run: other pickle bytes of the same expression
    # are the same content
    again, blobs = republish(
        small_registry,
        "default@2.0.0",
        "2.0.0",
        expressions=pickle.dumps(pickle.loads(blobs["expressions"])) + b"",
    )
    assert small_registry.publish(again, blobs) == "unchanged"
    assert (small_registry.root / "manifests/index.json").read_bytes() == index_bytes


def test_published_versions_are_immutable(small_registry):
    path = small_registry.root / manifest_path("default", "1.1.0")
    original = path.read_bytes()
    manifest, blobs = republish(
        small_registry, "default@1.1.0", "1.1.0", **{"native-source": b"/* other */\n"}
    )
    with pytest.raises(PublishConflictError, match="default@1.1.0 is already published"):
        small_registry.publish(manifest, blobs)
    assert path.read_bytes() == original


def test_publish_refuses_blobs_that_do_not_match(small_registry):
    manifest, blobs = republish(small_registry, "default", "2.0.0")
    blobs["intensity-srepr"] = blobs["intensity-srepr"] + b" "
    with pytest.raises(IntegrityError):
        small_registry.publish(manifest, blobs)
    assert "2.0.0" not in small_registry.index().models["default"].versions


def test_flipped_pickle_byte_refused_before_unpickling(small_registry, tmp_path):
    manifest = small_registry.manifest("default@1.1.0")
    entry = manifest.file("expressions")
    flip_byte(small_registry.root / blob_path(entry.digest))
    model = published_model("default@1.1.0", registry=small_registry, backend="jax")
    with pytest.raises(IntegrityError) as info:
        model.load_forms()
    assert "model.pkl" in str(info.value) and entry.digest in str(info.value)
    checks = {c.name: c.status for c in small_registry.verify(["default@1.1.0"])}
    assert checks["model.pkl"] == "mismatch" and checks["intensity.srepr"] == "ok"


@pytest.mark.parametrize("same_size", [True, False])
def test_swapped_in_payload_pickle_never_runs(small_registry, tmp_path, same_size):
    canary = tmp_path / "canary"
    manifest = small_registry.manifest("default@1.1.0")
    entry = manifest.file("expressions")
    payload = pickle.dumps(Canary(str(canary)))
    if same_size:
        payload = payload.ljust(entry.size, b".")  # pickle ignores trailing bytes after STOP
    (small_registry.root / blob_path(entry.digest)).write_bytes(payload)
    for backend in ("jax", "numpy"):
        with pytest.raises(IntegrityError):
            published_model("default@1.1.0", registry=small_registry, backend=backend).intensity(
                1.0, 3.0
            )
    assert not canary.exists()


def test_tampered_manifest_is_refused(small_registry):
    path = small_registry.root / manifest_path("default", "1.1.0")
    path.write_bytes(path.read_bytes().replace(b'"value": 1.5', b'"value": 1.6'))
    with pytest.raises(IntegrityError, match="1.1.0.json"):
        small_registry.manifest("default@1.1.0")
    checks = {c.name: c.status for c in small_registry.verify(["default@1.1.0"])}
    assert checks["manifest"] == "mismatch"


def test_pinned_manifest_digest(small_registry):
    _, _, digest = small_registry.resolve("default@1.1.0")
    assert (
        published_model("default@1.1.0", registry=small_registry, digest=digest).version == "1.1.0"
    )
    with pytest.raises(IntegrityError, match="pinned"):
        published_model("default@1.1.0", registry=small_registry, digest="sha256:" + "0" * 64)
    with pytest.raises(ManifestError):
        published_model("default@1.1.0", registry=small_registry, digest="sha1:00")


def test_missing_blob_is_reported(small_registry):
    manifest = small_registry.manifest("default@1.0.0")
    (small_registry.root / blob_path(manifest.file("reference-values").digest)).unlink()
    checks = {c.name: c.status for c in small_registry.verify(["default@1.0.0"])}
    assert checks["reference.zarr.zip"] == "missing"
    with pytest.raises(ModelNotFoundError, match="reference.zarr.zip"):
        published_model("default@1.0.0", registry=small_registry).reference()


def test_interrupted_writes_leave_only_ignored_temporaries(small_registry):
    old = small_registry.root / "manifests" / "default" / ".tmp-abc123"
    old.write_bytes(b"half a manifest")
    young = small_registry.root / "registry" / "sha256" / ".tmp-def456"
    young.write_bytes(b"half a blob")
    assert small_registry.store.leftovers() == [old, young]
    assert all(c.status == "ok" for c in small_registry.verify())
    # the next publish removes leftovers old enough not to belong to a write in progress
    os.utime(old, (time.time() - 3600, time.time() - 3600))
    manifest, blobs = republish(small_registry, "default", "2.0.0")
    small_registry.publish(manifest, blobs)
    assert small_registry.store.leftovers() == [young]


def test_publish_cleans_only_its_own_temporaries_never_through_links(small_registry, tmp_path):
    root = small_registry.root
    hour_ago = (time.time() - 3600, time.time() - 3600)
    unrelated = root / "notes" / ".tmp-x"  # in a checkout the root is the whole repository
    unrelated.parent.mkdir()
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    behind_link = outside / ".tmp-x"
    (root / "manifests" / "linked").symlink_to(outside, target_is_directory=True)
    (root / "registry" / "sha256" / "more").symlink_to(outside, target_is_directory=True)
    own = root / "registry" / "sha256" / ".tmp-own"
    for path in (unrelated, behind_link, own):
        path.write_bytes(b"temporary")
        os.utime(path, hour_ago)
    assert small_registry.store.leftovers() == [own]
    manifest, blobs = republish(small_registry, "default", "2.0.0")
    small_registry.publish(manifest, blobs)
    assert unrelated.exists() and behind_link.exists()
    assert not own.exists()
