"""`push`: folder to folder, folder to S3 (moto on loopback) and back; verified, index last."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from sharing_helpers import LATER_REF, SMALL_REFS, copy_versions

from modelstore import published_model
from modelstore.cli import main
from modelstore.errors import IntegrityError, PublishConflictError, RollbackError
from modelstore.publish.push import push_registry
from modelstore.registry import INDEX_PATH, SIGNATURE_PATH, Registry, blob_path
from modelstore.store.local import LocalStore


class RecordingStore(LocalStore):
    """A real folder store that also records the order of writes."""

    def __init__(self, root) -> None:
        super().__init__(root)
        self.writes: list[str] = []

    def write(self, relpath: str, data: bytes) -> None:
        self.writes.append(relpath)
        super().write(relpath, data)


def _files(registry: Registry) -> int:
    return sum(len(registry.manifest(ref).files) for ref in registry.refs())


def test_push_to_a_folder_copies_everything_and_writes_the_index_last(
    signed_registry, tmp_path, publisher_key
):
    dest_store = RecordingStore(tmp_path / "mirror")
    report = push_registry(Registry(signed_registry), Registry(dest_store))
    assert report.versions == 2
    assert report.signed_by == (publisher_key.key_id,)
    assert dest_store.writes[-2:] == [INDEX_PATH, SIGNATURE_PATH]
    mirror = Registry(tmp_path / "mirror", require_signature=True)
    assert all(c.status == "ok" for c in mirror.verify())
    assert (tmp_path / "mirror" / INDEX_PATH).read_bytes() == (
        signed_registry / INDEX_PATH
    ).read_bytes()
    # a second push uploads nothing: every file is already there
    again = push_registry(Registry(signed_registry), Registry(tmp_path / "mirror"))
    assert (again.uploaded, again.manifests_written) == (0, 0)
    assert again.present == report.uploaded + report.present


def test_push_uploads_only_what_is_missing(signed_registry, tmp_path, publisher_key):
    push_registry(Registry(signed_registry), Registry(tmp_path / "mirror"))
    before = set((tmp_path / "mirror" / "registry" / "sha256").iterdir())
    copy_versions(signed_registry, [LATER_REF], [publisher_key.private])
    report = push_registry(Registry(signed_registry), Registry(tmp_path / "mirror"))
    later = Registry(signed_registry).manifest(LATER_REF)
    new = {f.digest for f in later.files} - {f"sha256:{p.name}" for p in before}
    assert new  # 1.1.0 shares some files with 1.0.0, and adds at least its C source
    assert report.uploaded == len(new)
    assert report.manifests_written == 1
    assert Registry(tmp_path / "mirror").index().index_version == 3


def test_push_never_copies_a_corrupt_file(signed_registry, tmp_path):
    manifest = Registry(signed_registry).manifest("default")
    path = signed_registry / blob_path(manifest.file("expressions").digest)
    path.write_bytes(path.read_bytes() + b"x")
    with pytest.raises(IntegrityError, match="padded or replaced"):
        push_registry(Registry(signed_registry), Registry(tmp_path / "mirror"))
    assert not (tmp_path / "mirror" / INDEX_PATH).exists()


def test_push_refuses_to_roll_back_or_rewrite_the_destination(
    signed_registry, tmp_path, publisher_key
):
    newer = tmp_path / "newer"
    copy_versions(newer, [*SMALL_REFS, LATER_REF], [publisher_key.private])
    push_registry(Registry(newer), Registry(tmp_path / "mirror"))
    with pytest.raises(RollbackError, match="has index_version 3, newer than 2"):
        push_registry(Registry(signed_registry), Registry(tmp_path / "mirror"))
    other = tmp_path / "other"
    copy_versions(
        other, ["k700-free@1.0.0", "default@1.0.0", "k892-free@1.0.0"], [publisher_key.private]
    )
    with pytest.raises(PublishConflictError, match=r"publishes default@1\.1\.0, which .* lacks"):
        push_registry(Registry(other), Registry(tmp_path / "mirror"))


def test_push_to_s3_then_load_and_pull_back(signed_registry, s3_bucket, tmp_path, publisher_key):
    url = f"s3://{s3_bucket}/lhcb"
    report = push_registry(Registry(signed_registry), Registry(url))
    source = Registry(signed_registry)
    distinct = {f.digest for ref in source.refs() for f in source.manifest(ref).files}
    assert report.uploaded == len(distinct)
    remote = Registry(url)
    assert remote.index_status().signers == (publisher_key.key_id,)
    model = published_model("k700-free", registry=url)
    assert model.reference()["intensity"].size > 0
    assert all(c.status == "ok" for c in remote.verify())
    # pull: push the other way, into a folder that then verifies on its own
    pulled = push_registry(Registry(url), Registry(tmp_path / "pulled"))
    assert pulled.versions == 2
    assert all(
        c.status == "ok" for c in Registry(tmp_path / "pulled", require_signature=True).verify()
    )
    again = push_registry(Registry(signed_registry), Registry(url))
    assert again.uploaded == 0


def test_cli_push_to_s3_with_signing_and_pull(tmp_path, s3_bucket, publisher_key):
    unsigned = tmp_path / "unsigned"
    copy_versions(unsigned, SMALL_REFS)
    assert not (unsigned / SIGNATURE_PATH).exists()
    url = f"s3://{s3_bucket}/reg"
    runner = CliRunner()
    result = runner.invoke(
        main, ["--registry", str(unsigned), "push", url, "--sign", str(publisher_key.private_path)]
    )
    assert result.exit_code == 0, result.output
    assert f"index signed by {publisher_key.key_id}" in result.output
    result = runner.invoke(main, ["--registry", url, "verify", "-q"])
    assert result.exit_code == 0, result.output
    assert f"signed by {publisher_key.key_id}" not in result.output  # quiet: only the summary
    assert "0 failed, 0 not checked" in result.output
    result = runner.invoke(main, ["--registry", url, "push", str(tmp_path / "pulled")])
    assert result.exit_code == 0, result.output
    index = json.loads((tmp_path / "pulled" / INDEX_PATH).read_bytes())
    assert set(index["models"]) == {"default", "k700-free"}


def test_cli_sign_an_unsigned_bucket_in_place(tmp_path, s3_bucket, publisher_key):
    unsigned = tmp_path / "unsigned"
    copy_versions(unsigned, SMALL_REFS)
    url = f"s3://{s3_bucket}/reg"
    runner = CliRunner()
    assert runner.invoke(main, ["--registry", str(unsigned), "push", url]).exit_code == 0
    result = runner.invoke(main, ["--registry", url, "verify", "-q"])
    assert result.exit_code == 1
    assert "the index is not signed" in result.output
    result = runner.invoke(
        main, ["--registry", url, "sign", "--key", str(publisher_key.private_path)]
    )
    assert result.exit_code == 0, result.output
    result = runner.invoke(main, ["--registry", url, "verify", "-q"])
    assert result.exit_code == 0, result.output


def test_cli_push_of_an_unsigned_registry_warns(tmp_path, monkeypatch):
    monkeypatch.delenv("MODELSTORE_PROGRESS", raising=False)
    unsigned = tmp_path / "unsigned"
    copy_versions(unsigned, SMALL_REFS[:1])
    result = CliRunner().invoke(main, ["--registry", str(unsigned), "push", str(tmp_path / "copy")])
    assert result.exit_code == 0, result.output
    assert "warning: the index is unsigned" in result.output
    assert result.stderr.startswith("warning:")  # the one line: no progress off a terminal
    assert "pushing" not in result.stderr


def test_cli_push_shows_progress_when_asked(signed_registry, tmp_path, monkeypatch):
    monkeypatch.setenv("MODELSTORE_PROGRESS", "1")
    args = ["--registry", str(signed_registry), "push", str(tmp_path / "copy")]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "pushing" in result.stderr and "/2 [" in result.stderr  # two versions


def test_push_to_http_is_refused_clearly(signed_registry, serve, tmp_path):
    server = serve(tmp_path)
    result = CliRunner().invoke(main, ["--registry", str(signed_registry), "push", server.url])
    assert result.exit_code == 1
    assert "registries served over http are read-only" in result.output


@pytest.mark.parametrize("damage", ["flip", "truncate"])
def test_push_repairs_a_corrupt_file_at_the_destination(
    signed_registry, tmp_path, publisher_key, damage
):
    push_registry(Registry(signed_registry), Registry(tmp_path / "mirror"))
    manifest = Registry(signed_registry).manifest(SMALL_REFS[0])
    victim = tmp_path / "mirror" / blob_path(manifest.file("intensity-srepr").digest)
    data = victim.read_bytes()
    victim.write_bytes(data[:-1] + bytes([data[-1] ^ 1]) if damage == "flip" else data[:10])
    assert any(c.status == "mismatch" for c in Registry(tmp_path / "mirror").verify())
    result = CliRunner().invoke(
        main, ["--registry", str(signed_registry), "push", "-v", str(tmp_path / "mirror")]
    )
    assert result.exit_code == 0, result.output
    assert "repaired  default@1.0.0 intensity.srepr" in result.output
    assert "1 of them replaced a corrupt copy" in result.output
    assert victim.read_bytes() == data
    mirror = Registry(tmp_path / "mirror", require_signature=True)
    assert all(c.status == "ok" for c in mirror.verify())
