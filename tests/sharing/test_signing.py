"""Keys, index signatures, and the trust policy for local folders."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner
from sharing_helpers import LATER_REF, SMALL_REFS, copy_versions

from modelstore.cli import main
from modelstore.errors import RollbackError, SignatureError, SigningKeyError
from modelstore.registry import INDEX_PATH, SIGNATURE_PATH, Registry, embedded_registry_root
from modelstore.store.local import LocalStore
from modelstore.trust.policy import TrustPolicy, shipped_key_paths
from modelstore.trust.signing import (
    generate_keypair,
    key_id,
    load_private_key,
    load_public_key,
    sign_index,
    verify_index_signature,
)


def test_keygen_writes_a_private_key_only_the_owner_reads_and_refuses_to_overwrite(tmp_path):
    runner = CliRunner()
    result = runner.invoke(main, ["keygen", str(tmp_path / "k" / "team.key")])
    assert result.exit_code == 0, result.output
    private, public = tmp_path / "k" / "team.key", tmp_path / "k" / "team.pub"
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert key_id(load_public_key(public)) in result.output
    assert key_id(load_private_key(private).public_key()) == key_id(load_public_key(public))
    again = runner.invoke(main, ["keygen", str(private)])
    assert again.exit_code == 1
    assert "already exists; refusing to overwrite a key" in again.output


def test_a_public_key_is_not_a_signing_key(tmp_path):
    _, public, _ = generate_keypair(tmp_path / "a.key")
    with pytest.raises(SigningKeyError, match="not an unencrypted PEM private key"):
        load_private_key(public)
    (tmp_path / "junk.pub").write_text("hello")
    with pytest.raises(SigningKeyError, match=r"junk\.pub: not a PEM public key"):
        load_public_key(tmp_path / "junk.pub")


def test_signature_covers_the_exact_index_bytes(tmp_path):
    private, public, kid = generate_keypair(tmp_path / "a.key")
    key = load_private_key(private)
    index = b'{"schema_version": 1}\n'
    sig = sign_index(index, [key])
    trusted = {kid: load_public_key(public)}
    assert verify_index_signature(index, sig, trusted, "index.json") == [kid]
    with pytest.raises(SignatureError, match="was made for another index"):
        verify_index_signature(index + b" ", sig, trusted, "index.json")
    raw = json.loads(sig)
    raw["signatures"][0]["signature"] = raw["signatures"][0]["signature"][:-4] + "AAA="
    with pytest.raises(SignatureError, match="does not verify"):
        verify_index_signature(index, json.dumps(raw).encode(), trusted, "index.json")
    with pytest.raises(SignatureError, match=r"index\.json\.sig: not valid JSON"):
        verify_index_signature(index, b"{", trusted, "index.json")


def test_publish_with_a_key_signs_and_without_removes_the_stale_signature(tmp_path, publisher_key):
    folder = tmp_path / "reg"
    copy_versions(folder, SMALL_REFS[:1], [publisher_key.private])
    assert Registry(folder, require_signature=True).index_status().signers == (
        publisher_key.key_id,
    )
    copy_versions(folder, SMALL_REFS[1:])
    assert not (folder / SIGNATURE_PATH).exists()
    assert (
        Registry(folder).check_index().detail
        == "index_version 2, unsigned (accepted for a local folder; its C, pickles and array"
        " programs are not run: data-only)"
    )
    assert (
        Registry(folder, trust_code=True)
        .check_index()
        .detail.endswith("named trusted to run code)")
    )
    with pytest.raises(SignatureError, match="the index is not signed"):
        Registry(folder, require_signature=True).index()


def test_cli_sign_resigns_after_a_publish_and_verify_requires_it(tmp_path, publisher_key):
    folder = tmp_path / "reg"
    copy_versions(folder, SMALL_REFS)
    runner = CliRunner()
    result = runner.invoke(main, ["--registry", str(folder), "--require-signature", "verify", "-q"])
    assert result.exit_code == 1
    assert "the index is not signed" in result.output
    result = runner.invoke(
        main, ["--registry", str(folder), "sign", "--key", str(publisher_key.private_path)]
    )
    assert result.exit_code == 0, result.output
    assert f"with {publisher_key.key_id}" in result.output
    result = runner.invoke(main, ["--registry", str(folder), "--require-signature", "verify"])
    assert result.exit_code == 0, result.output
    assert f"index_version 2, signed by {publisher_key.key_id}" in result.output


def test_sign_refuses_a_registry_whose_files_do_not_verify(signed_registry, publisher_key):
    manifest = Registry(signed_registry).manifest("default")
    from modelstore.registry import blob_path

    path = signed_registry / blob_path(manifest.file("reference-values").digest)
    path.write_bytes(path.read_bytes()[:-1])
    before = (signed_registry / SIGNATURE_PATH).read_bytes()
    result = CliRunner().invoke(
        main, ["--registry", str(signed_registry), "sign", "--key", str(publisher_key.private_path)]
    )
    assert result.exit_code == 1
    assert "refusing to sign" in result.output
    assert (signed_registry / SIGNATURE_PATH).read_bytes() == before


def test_sign_with_an_untrusted_key_says_clients_need_its_public_key(tmp_path, attacker_key):
    folder = tmp_path / "reg"
    copy_versions(folder, SMALL_REFS[:1])
    result = CliRunner().invoke(
        main, ["--registry", str(folder), "sign", "--key", str(attacker_key.private_path)]
    )
    assert result.exit_code == 0, result.output
    assert f"this client does not trust {attacker_key.key_id}" in result.output
    # a present signature must verify, even where none is required
    with pytest.raises(SignatureError, match="none of which this client trusts"):
        Registry(folder).index()


def test_a_local_folder_with_a_bad_signature_is_refused_even_when_unsigned_is_allowed(
    signed_registry,
):
    (signed_registry / INDEX_PATH).write_bytes(
        (signed_registry / INDEX_PATH).read_bytes().replace(b'"title"', b'"title" ', 1)
    )
    result = CliRunner().invoke(main, ["--registry", str(signed_registry), "verify"])
    assert result.exit_code == 1
    assert "MISMATCH index" in result.output
    assert "was made for another index" in result.output


def test_trusted_keys_come_from_the_config_folder_too(tmp_path, monkeypatch, attacker_key):
    folder = tmp_path / "reg"
    copy_versions(folder, SMALL_REFS[:1], [attacker_key.private])
    with pytest.raises(SignatureError):
        Registry(folder).index()
    trusted = tmp_path / "config" / "trusted-keys"
    trusted.mkdir(parents=True)
    (trusted / "team.pub").write_bytes(attacker_key.public_path.read_bytes())
    assert Registry(folder).index_status().signers == (attacker_key.key_id,)


def test_rollback_is_tracked_for_local_folders_that_require_signatures(
    signed_registry, publisher_key
):
    old = (
        (signed_registry / INDEX_PATH).read_bytes(),
        (signed_registry / SIGNATURE_PATH).read_bytes(),
    )
    copy_versions(signed_registry, [LATER_REF], [publisher_key.private])
    assert Registry(signed_registry, require_signature=True).index().index_version == 3
    (signed_registry / INDEX_PATH).write_bytes(old[0])
    (signed_registry / SIGNATURE_PATH).write_bytes(old[1])
    with pytest.raises(RollbackError, match="index_version 2 is older than index_version 3"):
        Registry(signed_registry, require_signature=True).index()
    assert Registry(signed_registry).index().index_version == 2  # not required: not tracked
    result = CliRunner().invoke(main, ["cache", "clean", "--forget-trust"])
    assert result.exit_code == 0, result.output
    assert Registry(signed_registry, require_signature=True).index().index_version == 2


def test_embedded_index_is_signed_by_the_shipped_key():
    """Fails when the embedded index changed after signing: re-sign it (docs/sharing.md)."""
    shipped = {key_id(load_public_key(path)): load_public_key(path) for path in shipped_key_paths()}
    assert shipped, "no public key is shipped in modelstore/keys/"
    registry = Registry(
        embedded_registry_root(), policy=TrustPolicy(shipped, require_signature=True)
    )
    assert set(registry.index_status().signers) <= set(shipped)
    assert registry.index_status().signers


def test_publish_checks_its_signing_key_before_building_anything(tmp_path, publisher_key):
    folder = tmp_path / "reg"
    result = CliRunner().invoke(
        main,
        [
            "--registry",
            str(folder),
            "publish",
            "default",
            "--version",
            "9.9.9",
            "--sign",
            str(publisher_key.public_path),
        ],
    )
    assert result.exit_code == 1
    assert "not an unencrypted PEM private key" in result.output
    assert not folder.exists()


class PublisherMidwayStore(LocalStore):
    """A folder caught between a publisher's index write and its signature write."""

    def __init__(self, root: Path, final_signature: bytes) -> None:
        super().__init__(root)
        self.final_signature = final_signature
        self.signature_reads = 0

    def read(self, relpath: str, max_size: int | None = None) -> bytes:
        data = super().read(relpath, max_size)
        if relpath == SIGNATURE_PATH:
            self.signature_reads += 1
            super().write(SIGNATURE_PATH, self.final_signature)  # the publisher finishes
        return data


def test_a_reader_between_index_and_signature_writes_reads_again(signed_registry, publisher_key):
    old_signature = (signed_registry / SIGNATURE_PATH).read_bytes()
    copy_versions(signed_registry, [LATER_REF], [publisher_key.private])
    new_signature = (signed_registry / SIGNATURE_PATH).read_bytes()
    (signed_registry / SIGNATURE_PATH).write_bytes(old_signature)
    store = PublisherMidwayStore(signed_registry, new_signature)
    registry = Registry(store, require_signature=True)
    assert registry.index().index_version == 3
    assert store.signature_reads == 2


def test_a_bad_or_fifo_key_file_is_skipped_with_a_warning(tmp_path, attacker_key):
    import os
    import subprocess
    import sys

    folder = tmp_path / "reg"
    copy_versions(folder, SMALL_REFS[:1], [attacker_key.private])
    trusted = tmp_path / "config" / "trusted-keys"
    trusted.mkdir(parents=True)
    (trusted / "team.pub").write_bytes(attacker_key.public_path.read_bytes())
    (trusted / "broken.pub").write_text("not a key\n")
    os.mkfifo(trusted / "pipe.pub")
    code = "import sys; from modelstore.cli import main; sys.exit(main())"
    proc = subprocess.run(
        [sys.executable, "-c", code, "--registry", str(folder), "--require-signature", "verify"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert f"signed by {attacker_key.key_id}" in proc.stdout  # the good key still counts
    assert "broken.pub: not a PEM public key" in proc.stderr
    assert "pipe.pub" in proc.stderr and "not a regular file" in proc.stderr
