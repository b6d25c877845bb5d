"""``registry_leftovers`` and ``remove_registry_leftovers``: what killed writers left, and only that."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from registry_helpers import copy_registry, republish

from modelstore.errors import BusyError, ModelNotFoundError, RemoteError
from modelstore.registry import Registry, registry_leftovers, remove_registry_leftovers
from modelstore.store.contract import TMP_PREFIX


def killed_write(root: Path, relpath: str) -> Path:
    """Run the real atomic write in another process and kill it just before its rename."""
    code = textwrap.dedent(
        f"""
        import os
        from modelstore.store.local import LocalStore
        os.replace = lambda *args: os._exit(9)  # killed between the write and the rename
        LocalStore({str(root)!r}).write({relpath!r}, b"half of a file")
        """
    )
    target = root / relpath
    before = target.read_bytes() if target.exists() else None
    proc = subprocess.run([sys.executable, "-c", code], check=False)
    assert proc.returncode == 9
    (left,) = target.parent.glob(f"{TMP_PREFIX}*")
    assert (target.read_bytes() if target.exists() else None) == before  # never renamed
    return left


def snapshot(root: Path, leave_out: set[Path]) -> dict[str, bytes | str]:
    """Every entry under ``root`` but ``leave_out``: a file's bytes, a link's target."""
    found: dict[str, bytes | str] = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(folder) / name
            if path in leave_out or path.name == ".publish.lock":
                continue
            if path.is_symlink():
                found[str(path)] = f"-> {os.readlink(path)}"
            elif path.is_file():
                found[str(path)] = path.read_bytes()
            else:
                found[str(path)] = "folder"
    return found


@pytest.fixture
def registry(embedded: Registry, tmp_path: Path) -> Registry:
    copy = copy_registry(embedded, tmp_path / "registry", ["default@1.0.0"])
    # a real model whose id looks like a temporary's name
    manifest, blobs = republish(copy, "default@1.0.0", "1.0.0")
    import dataclasses

    copy.publish(dataclasses.replace(manifest, model_id="tmp-default"), blobs)
    return Registry(copy.root)


def test_killed_writes_are_found_and_removed_and_nothing_else(registry: Registry) -> None:
    root = registry.root
    blob = next((root / "registry" / "sha256").iterdir())
    leftovers = {
        killed_write(root, f"registry/sha256/{'ab' * 32}"),
        killed_write(root, "manifests/default/2.0.0.json"),
        killed_write(root, "manifests/index.json"),
    }
    # confusingly named things that are not leftovers
    (root / "registry" / "sha256" / f"{TMP_PREFIX}link").symlink_to(blob)
    (root / "manifests" / f"{TMP_PREFIX}folder").mkdir()
    (root / "manifests" / f"{TMP_PREFIX}folder" / "1.0.0.json").write_bytes(b"{}")
    (root / "manifests" / "default" / f"1.0.0.json{TMP_PREFIX}x").write_bytes(b"kept")
    (root / "notes").mkdir()
    (root / "notes" / f"{TMP_PREFIX}mine").write_bytes(b"not the registry's")
    before = snapshot(root, leftovers)

    found = registry_leftovers(registry)
    assert {leftover.path for leftover in found} == leftovers
    assert not any(leftover.busy for leftover in found)
    assert all(leftover.size == len(b"half of a file") for leftover in found)

    removed = remove_registry_leftovers(registry)
    assert {leftover.path for leftover in removed} == leftovers
    assert not any(path.exists() for path in leftovers)
    assert snapshot(root, set()) == before  # blobs, manifests, index, signature, the rest
    assert registry_leftovers(registry) == []
    checks = Registry(root).verify()
    assert checks and all(check.status == "ok" for check in checks)


HOLD = """
import sys
from filelock import FileLock
lock = FileLock(sys.argv[1])
lock.acquire()
print("held", flush=True)
sys.stdin.read()
"""


def test_a_write_in_progress_holding_the_lock_is_not_removed(registry: Registry) -> None:
    root = registry.root
    in_progress = root / "registry" / "sha256" / f"{TMP_PREFIX}uploading"
    in_progress.write_bytes(b"being written")
    lock = root / "manifests" / ".publish.lock"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(lock)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        (found,) = registry_leftovers(registry)
        assert found.path == in_progress and found.busy
        with pytest.raises(BusyError, match="another process is writing the registry"):
            remove_registry_leftovers(registry, wait=0.2)
        assert in_progress.read_bytes() == b"being written"
    finally:
        holder.communicate("")
    # the writer is gone: what it left is a leftover now
    assert [leftover.path for leftover in remove_registry_leftovers(registry)] == [in_progress]


def test_only_registry_folders(tmp_path: Path) -> None:
    with pytest.raises(RemoteError, match="registry folders only"):
        registry_leftovers(Registry("https://example.org/registry"))
    with pytest.raises(ModelNotFoundError, match="not a registry folder"):
        remove_registry_leftovers(Registry(tmp_path))
    assert list(tmp_path.iterdir()) == []  # nothing created there
