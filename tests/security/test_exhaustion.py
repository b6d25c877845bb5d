"""Threats 16-17: files that never end, servers that never answer, sizes no buffer can hold.

Each of these must end quickly, as "could not check" (verify exit 2) or as a refused file,
never as a hang, a MemoryError or a traceback.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
import threading
import time

import pytest
from click.testing import CliRunner
from registry_helpers import unsign

from modelstore.cli import main
from modelstore.registry import INDEX_PATH, Registry, blob_path, manifest_path
from modelstore.store.cache import BlobCache

VERIFY_EXIT_UNCHECKED = 2


def run_cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    """The CLI in a child process, so that a hang fails the test instead of stalling it."""
    code = "import sys; from modelstore.cli import main; sys.exit(main())"
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
        check=False,
    )


def test_fifo_in_place_of_a_blob_is_not_checked_and_the_rest_is(small_registry):
    manifest = small_registry.manifest("default@1.0.0")
    path = small_registry.root / blob_path(manifest.file("reference-values").digest)
    path.unlink()
    os.mkfifo(path)
    start = time.perf_counter()
    proc = run_cli("--registry", str(small_registry.root), "verify", "default@1.0.0", timeout=60)
    assert time.perf_counter() - start < 30
    assert proc.returncode == VERIFY_EXIT_UNCHECKED, proc.stdout + proc.stderr
    assert "not a regular file" in proc.stderr and "reference.zarr.zip" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert (
        "OK       default@1.0.0" in proc.stdout and "model.pkl" in proc.stdout
    )  # the others were checked


def test_cached_blob_linked_to_dev_zero_is_evicted(tmp_path):
    cache = BlobCache(tmp_path / "blobs")
    data = b"hello"
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    path = cache.path(digest)
    path.parent.mkdir(parents=True)
    path.symlink_to("/dev/zero")
    start = time.perf_counter()
    assert cache.get(digest, len(data)) is None
    assert not path.is_symlink()
    assert time.perf_counter() - start < 2


def _rewrite_size(registry: Registry, ref: str, role: str, size: int) -> None:
    """Give one file of ``ref`` another recorded size, keeping the (unsigned) index consistent."""
    model_id, version = ref.split("@")
    path = registry.root / manifest_path(model_id, version)
    raw = json.loads(path.read_bytes())
    for entry in raw["files"]:
        if entry["role"] == role:
            entry["size"] = size
    data = json.dumps(raw, sort_keys=True, indent=1).encode() + b"\n"
    path.write_bytes(data)
    index = json.loads((registry.root / INDEX_PATH).read_bytes())
    index["models"][model_id]["versions"][version] = "sha256:" + hashlib.sha256(data).hexdigest()
    (registry.root / INDEX_PATH).write_text(json.dumps(index, indent=1) + "\n")
    unsign(registry)  # an attacker's edit: the signature no longer covers the index


@pytest.mark.parametrize("size", [2**63, 2**40])
def test_absurd_manifest_sizes_are_refused_and_the_rest_is_checked(small_registry, size):
    _rewrite_size(small_registry, "default@1.0.0", "reference-values", size)
    registry = Registry(small_registry.root)
    result = CliRunner().invoke(main, ["--registry", str(registry.root), "verify", "default@1.0.0"])
    assert not isinstance(result.exception, (OverflowError, MemoryError)), result.exception
    assert result.exit_code == 1, result.output
    assert f"records {size} bytes" in result.output
    assert result.output.count("OK ") >= 3  # manifest and the other files still checked


@pytest.fixture
def silent_server():
    """A TCP server on 127.0.0.1 that accepts connections and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    listener.settimeout(0.2)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set() and len(accepted) < 64:
            try:
                accepted.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}/"
    stop.set()
    thread.join(timeout=5)
    for conn in accepted:
        conn.close()
    listener.close()


def test_a_server_that_never_answers_is_not_checked(silent_server, monkeypatch, tmp_path):
    monkeypatch.setenv("MODELSTORE_TIMEOUT", "1")
    monkeypatch.setenv("MODELSTORE_CACHE_DIR", str(tmp_path / "cache"))
    start = time.perf_counter()
    proc = run_cli("--registry", silent_server, "verify", timeout=90)
    elapsed = time.perf_counter() - start
    assert proc.returncode == VERIFY_EXIT_UNCHECKED, proc.stdout + proc.stderr
    assert "could not check" in proc.stderr and "Traceback" not in proc.stderr
    assert elapsed < 30


def test_bad_timeout_variable_is_one_line(monkeypatch):
    monkeypatch.setenv("MODELSTORE_TIMEOUT", "soon")
    result = CliRunner().invoke(main, ["--registry", "http://127.0.0.1:9/", "list"])
    assert result.exit_code == 1 and "$MODELSTORE_TIMEOUT='soon'" in result.output


@pytest.mark.parametrize("url", ["ftp://x", "gopher://x/registry"])
def test_unsupported_or_unreachable_schemes_are_one_line(url, tmp_path):
    proc = run_cli("--registry", url, "list", timeout=60)
    assert proc.returncode == 1
    assert (
        proc.stderr.startswith("Error: cannot open the registry at")
        and "Traceback" not in proc.stderr
    )
    assert len(proc.stderr.strip().splitlines()) == 1
