"""The cache's leftovers: killed downloads' temporaries and killed builds' folders, nothing else."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from modelstore.store.cache import Cache
from modelstore.store.hashing import bytes_digest

DATA = b"a cached blob"
HOLD = """
import sys
from filelock import FileLock
lock = FileLock(sys.argv[1])
lock.acquire()
print("held", flush=True)
sys.stdin.read()
"""


def killed_put(root: Path, data: bytes) -> Path:
    """The real cache write in another process, killed just before its rename."""
    code = textwrap.dedent(
        f"""
        import os
        from modelstore.store.cache import Cache
        os.replace = lambda *args: os._exit(9)  # killed between the write and the rename
        Cache({str(root)!r}).blobs.put({bytes_digest(data)!r}, {data!r})
        """
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 9
    (left,) = (root / "blobs" / "sha256").glob(".tmp-*")
    return left


def age(path: Path, seconds: float = 3600) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


def test_killed_downloads_and_builds_are_found_and_removed(tmp_path: Path) -> None:
    cache = Cache(tmp_path / "cache")
    blob = cache.blobs.put(bytes_digest(DATA), DATA)
    left = killed_put(cache.root, b"another blob")
    age(left)
    fresh = cache.blobs.root / "sha256" / ".tmp-fresh"  # another process may be writing it
    fresh.write_bytes(b"x")
    native = cache.root / "native"
    key = "0123456789ab" + "c" * 52
    built = native / key  # a finished build: never a leftover
    built.mkdir(parents=True)
    (built / "build.json").write_text("{}")
    (native / f"{key}.lock").write_text("")
    half = native / f".build-{key[:12]}-x1"
    half.mkdir()
    (half / "model.c").write_text("int x;")
    (native / ".build-link").symlink_to(built)
    found = {leftover.path: leftover.busy for leftover in cache.leftovers()}
    assert found == {left: False, fresh: True, half: False}
    removed = cache.remove_leftovers()
    assert {leftover.path for leftover in removed} == {left, half}
    assert fresh.exists() and blob.read_bytes() == DATA
    assert (built / "build.json").exists() and (native / ".build-link").is_symlink()
    assert (native / f"{key}.lock").exists()
    assert cache.blobs.get(bytes_digest(DATA)) == DATA


def test_a_build_in_progress_is_kept(tmp_path: Path) -> None:
    cache = Cache(tmp_path / "cache")
    native = cache.root / "native"
    key = "feedfacecafe" + "0" * 52
    half = native / f".build-{key[:12]}-x2"
    half.mkdir(parents=True)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(native / f"{key}.lock")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        (found,) = cache.leftovers()
        assert found.path == half and found.busy
        assert cache.remove_leftovers() == []
        assert half.is_dir()
    finally:
        holder.communicate("")
    assert [leftover.path for leftover in cache.remove_leftovers()] == [half]
