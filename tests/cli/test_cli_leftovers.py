"""``modelstore leftovers`` and ``modelstore cache leftovers``: list; remove only when asked."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from registry_helpers import copy_registry

from modelstore.cli import main
from modelstore.registry import Registry

HOLD = """
import sys
from filelock import FileLock
lock = FileLock(sys.argv[1])
lock.acquire()
print("held", flush=True)
sys.stdin.read()
"""


def run(*args: str, env: dict[str, str] | None = None) -> object:
    return CliRunner().invoke(main, list(args), env=env)


@pytest.fixture
def registry(embedded: Registry, tmp_path: Path) -> Registry:
    return copy_registry(embedded, tmp_path / "registry", ["default@1.0.0"])


def test_registry_leftovers_are_listed_then_removed_on_request(registry: Registry) -> None:
    left = registry.root / "manifests" / "default" / ".tmp-killed"
    left.write_bytes(b"half a manifest")
    manifest = registry.root / "manifests" / "default" / "1.0.0.json"
    kept = manifest.read_bytes()
    listed = run("--registry", str(registry.root), "leftovers")
    assert listed.exit_code == 0, listed.output
    assert str(left) in listed.output and "1 leftovers (15 bytes)" in listed.output
    assert "--remove" in listed.output and left.exists()  # listing removes nothing
    removed = run("--registry", str(registry.root), "leftovers", "--remove")
    assert removed.exit_code == 0, removed.output
    assert "removed 1 leftovers (15 bytes)" in removed.output
    assert not left.exists() and manifest.read_bytes() == kept


def test_a_held_lock_is_one_line_and_removes_nothing(registry: Registry) -> None:
    left = registry.root / "registry" / "sha256" / ".tmp-uploading"
    left.write_bytes(b"x")
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(registry.root / "manifests" / ".publish.lock")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        listed = run("--registry", str(registry.root), "leftovers")
        assert "kept (may be in progress)" in listed.output
        result = run("--registry", str(registry.root), "leftovers", "--yes", "--wait", "0")
        assert result.exit_code == 1
        assert result.output.startswith("Error: ") and len(result.output.splitlines()) == 1
        assert "another process is writing the registry" in result.output
        assert left.exists()
    finally:
        holder.communicate("")


def test_cache_leftovers(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    folder = cache / "blobs" / "sha256"
    folder.mkdir(parents=True)
    left = folder / ".tmp-download"
    left.write_bytes(b"half")
    then = time.time() - 3600
    os.utime(left, (then, then))
    blob = folder / ("ab" * 32)
    blob.write_bytes(b"kept")
    env = {"MODELSTORE_CACHE_DIR": str(cache)}
    listed = run("cache", "leftovers", env=env)
    assert listed.exit_code == 0, listed.output
    assert str(left) in listed.output and left.exists()
    removed = run("cache", "leftovers", "--remove", env=env)
    assert removed.exit_code == 0, removed.output
    assert "removed 1 leftovers (4 bytes)" in removed.output
    assert not left.exists() and blob.read_bytes() == b"kept"


def test_partial_outputs_of_killed_runs_are_listed_then_removed(tmp_path: Path) -> None:
    """`leftovers --outputs DIR`: only `.NAME.partial-*` entries, never a link or a recent one."""
    old = time.time() - 3600
    killed_file = tmp_path / ".out.parquet.partial-abc123"
    killed_file.write_bytes(b"half a parquet")
    killed_store = tmp_path / ".out.zarr.partial-def456"
    (killed_store / "sigma1" / "c").mkdir(parents=True)
    (killed_store / "sigma1" / "c" / "0").write_bytes(b"chunk")
    running = tmp_path / ".big.zarr.partial-0a1b2c"
    running.mkdir()
    (running / "zarr.json").write_text("{}")  # written just now: a run may still be writing
    output = tmp_path / "out.parquet"
    output.write_bytes(b"a finished output")
    outside = tmp_path.parent / f"{tmp_path.name}-elsewhere"
    outside.mkdir()
    (outside / "keep").write_bytes(b"not a leftover")
    (tmp_path / ".link.partial-999").symlink_to(outside, target_is_directory=True)
    for path in (killed_file, killed_store, killed_store / "sigma1", killed_store / "sigma1" / "c",
                 killed_store / "sigma1" / "c" / "0"):  # fmt: skip
        os.utime(path, (old, old), follow_symlinks=False)
    listed = run("leftovers", "--outputs", str(tmp_path))
    assert listed.exit_code == 0, listed.output
    assert "3 leftovers" in listed.output and "1 kept (may be in progress)" in listed.output
    assert ".link.partial" not in listed.output and killed_store.exists()
    removed = run("leftovers", "--outputs", str(tmp_path), "--remove")
    assert removed.exit_code == 0, removed.output
    assert "removed 2 leftovers" in removed.output
    assert not killed_file.exists() and not killed_store.exists()
    assert running.exists() and output.exists() and (outside / "keep").exists()
    missing = run("leftovers", "--outputs", str(tmp_path / "nowhere"))
    assert missing.exit_code != 0 and "not a folder" in missing.output
