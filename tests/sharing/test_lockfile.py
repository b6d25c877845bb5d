"""Lock files: `modelstore lock` pins manifests; `verify --lock` fails when a pinned one changes."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from sharing_helpers import LATER_REF, copy_versions, rewrite_index

from modelstore.cli import main
from modelstore.errors import ManifestError
from modelstore.format.index import Index
from modelstore.format.manifest import Manifest
from modelstore.registry import INDEX_PATH, Registry, manifest_path
from modelstore.store.hashing import bytes_digest
from modelstore.trust.lockfile import LockEntry, lock_entries, parse_lock, verify_lock


def _lock(runner: CliRunner, registry, *refs: str) -> str:
    result = runner.invoke(main, ["--registry", str(registry), "lock", *refs])
    assert result.exit_code == 0, result.output
    return result.output


def test_lock_pins_latest_by_id_title_or_index(signed_registry):
    registry = Registry(signed_registry)
    entries = lock_entries(registry, ["k700-free", "Default amplitude model", "0"])
    assert [e.ref for e in entries] == ["default@1.0.0", "k700-free@1.0.0"]
    assert entries[0].digest == registry.resolve("default")[2]


def test_cli_lock_then_verify_passes_and_later_publishes_do_not_matter(
    signed_registry, tmp_path, publisher_key
):
    runner = CliRunner()
    text = _lock(runner, signed_registry, "default", "k700-free@1.0.0")
    lines = [line for line in text.splitlines() if not line.startswith("#")]
    assert lines == [
        f"{ref} {Registry(signed_registry).resolve(ref)[2]}"
        for ref in ("default@1.0.0", "k700-free@1.0.0")
    ]
    lock = tmp_path / "models.lock"
    lock.write_text(text)
    copy_versions(signed_registry, [LATER_REF], [publisher_key.private])  # a new latest version
    result = runner.invoke(
        main, ["--registry", str(signed_registry), "verify", "--lock", str(lock)]
    )
    assert result.exit_code == 0, result.output
    assert "OK       default@1.0.0" in result.output


def test_verify_lock_fails_when_a_pinned_manifest_changed(signed_registry, tmp_path):
    runner = CliRunner()
    lock = tmp_path / "models.lock"
    lock.write_text(_lock(runner, signed_registry, "default"))
    # someone rewrites default@1.0.0 in place (a local, unsigned copy: no signature to stop it)
    path = signed_registry / manifest_path("default", "1.0.0")
    raw = json.loads(path.read_bytes())
    raw["title"] = "Default amplitude model (edited)"
    data = Manifest.from_bytes(json.dumps(raw).encode()).to_bytes()
    path.write_bytes(data)
    index = Index.from_bytes((signed_registry / INDEX_PATH).read_bytes())
    index.models["default"].versions["1.0.0"] = bytes_digest(data)
    rewrite_index(signed_registry, index)
    (signed_registry / "manifests" / "index.json.sig").unlink()
    result = runner.invoke(
        main, ["--registry", str(signed_registry), "verify", "--lock", str(lock)]
    )
    assert result.exit_code == 1, result.output
    assert "MISMATCH default@1.0.0" in result.output
    assert "the caller pinned sha256:" in result.output


def test_verify_lock_reports_a_missing_version(signed_registry, tmp_path):
    entry = LockEntry("default", "9.9.9", "sha256:" + "0" * 64)
    checks = verify_lock(Registry(signed_registry), [entry])
    assert [c.status for c in checks] == ["ok", "missing"]
    assert "default has no version 9.9.9" in checks[1].detail


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("default@1.0.0\n", r"models\.lock:1: expected 'ID@VERSION sha256:<hex>'"),
        ("# c\ndefault@1.0 sha256:" + "0" * 64 + "\n", r"models\.lock:2: invalid version '1\.0'"),
        ("default@1.0.0 md5:abc\n", r"models\.lock:1: malformed digest 'md5:abc'"),
        ("../x@1.0.0 sha256:" + "0" * 64 + "\n", r"models\.lock:1: invalid model id '\.\./x'"),
        (
            "a@1.0.0 sha256:" + "0" * 64 + "\na@1.0.0 sha256:" + "1" * 64 + "\n",
            r"models\.lock:2: a@1\.0\.0 is pinned twice",
        ),
        ("# nothing\n", r"models\.lock: pins no model version"),
    ],
)
def test_malformed_lock_lines_are_reported_with_their_number(text, message):
    with pytest.raises(ManifestError, match=message):
        parse_lock(text, "models.lock")


def test_verify_with_an_unreadable_lock_file_could_not_check(signed_registry, tmp_path):
    result = CliRunner().invoke(
        main, ["--registry", str(signed_registry), "verify", "--lock", str(tmp_path / "nope.lock")]
    )
    assert result.exit_code == 2
    assert "cannot read the lock file" in result.output
