"""A registry on a real XRootD server (EOS-like, ``root://HOST:PORT//path``) on loopback.

Reading through ``--registry root://...`` (list, show, get, verify, eval, cache), pushing to a
fresh and to an existing ``root://`` destination, tampering on the server's disk refused, the
cache used offline once the server is gone, and a server that never answers timing out. The
server is the ``xrootd`` of xrootd-server (see xrootd_server.py): skipped where it is missing,
except in CI, which fails instead.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest
from click.testing import CliRunner
from sharing_helpers import LATER_REF, SMALL_REFS, Keys, copy_versions, subprocess_env
from xrootd_server import XRootDServer, remove_server, require_xrootd, start_server

from modelstore import published_model
from modelstore.cli import main
from modelstore.errors import RemoteError
from modelstore.format.index import Index
from modelstore.format.manifest import Manifest
from modelstore.registry import INDEX_PATH, SIGNATURE_PATH, Registry, blob_path, manifest_path
from modelstore.store import RemoteStore, Store, open_store
from modelstore.store.cache import Cache
from modelstore.store.hashing import bytes_digest
from modelstore.testing.store import StoreTests
from modelstore.trust.signing import sign_index

if TYPE_CHECKING:
    from collections.abc import Iterator

    from click.testing import Result

MODEL_IDS = {ref.split("@")[0] for ref in SMALL_REFS}


@pytest.fixture(scope="module")
def xrootd() -> Iterator[XRootDServer]:
    """One server for the module; each test uses folders of its own on it."""
    server = start_server()
    yield server
    remove_server(server)


@pytest.fixture
def name() -> str:
    """A folder name on the server that no other test uses."""
    return f"t-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def served(xrootd: XRootDServer, name: str, publisher_key: Keys) -> tuple[str, Path]:
    """``(root:// URL, folder on the server's disk)`` of a registry signed by the trusted key."""
    folder = xrootd.folder(name)
    copy_versions(folder, SMALL_REFS, [publisher_key.private])
    xrootd.adopt(folder)
    return xrootd.url(name), folder


def cli(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(main, list(args), env=env)


def _blob(folder: Path, ref: str, role: str) -> tuple[str, Path]:
    entry = Registry(folder).manifest(ref).file(role)
    return entry.digest, folder / blob_path(entry.digest)


# -- reading ---------------------------------------------------------------------------------


def test_list_show_get_verify_through_a_root_url(served, tmp_path: Path) -> None:
    url, folder = served
    listing = cli("--registry", url, "list")
    assert listing.exit_code == 0, listing.output
    for model_id in MODEL_IDS:
        assert model_id in listing.output
    shown = cli("--registry", url, "show", "default@1.0.0")
    assert shown.exit_code == 0, shown.output
    assert "default@1.0.0" in shown.output
    out = tmp_path / "got"
    got = cli("--registry", url, "get", "default@1.0.0", "-o", str(out))
    assert got.exit_code == 0, got.output
    manifest = Registry(folder).manifest("default@1.0.0")
    for entry in manifest.files:
        assert bytes_digest((out / entry.name).read_bytes()) == entry.digest
    assert json.loads((out / "manifest.json").read_bytes())["model_id"] == "default"
    verified = cli("--registry", url, "verify")
    assert verified.exit_code == 0, verified.output
    assert all(ref in verified.output for ref in SMALL_REFS)


def test_the_python_api_reads_a_root_url_and_fills_the_cache(
    served, isolated_env: Path, publisher_key: Keys
) -> None:
    url, folder = served
    model = published_model("default", registry=url)
    assert model.ref == "default@1.0.0"
    assert model.registry.location == url
    assert model.registry.index_status().signers == (publisher_key.key_id,)
    assert model.reference()["intensity"].size > 0
    digest, _ = _blob(folder, "default", "reference-values")
    assert Cache(isolated_env).blobs.contains(digest)


def test_eval_through_a_root_url_matches_the_same_registry_read_from_disk(
    served, tmp_path: Path
) -> None:
    url, folder = served
    events = tmp_path / "events.csv"
    events.write_text("msq_piK,msq_Kp\n1.303328,3.505217\n0.424415,4.382733\n1.694020,2.827971\n")
    outputs = {}
    for where, registry in (("remote", url), ("disk", str(folder))):
        out = tmp_path / f"{where}.npz"
        result = cli(
            "--registry", registry, "eval", "default@1.0.0", "-i", str(events), "-o", str(out),
            "--backend", "numpy",
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        outputs[where] = np.load(out)["intensity"]
    assert outputs["remote"].shape == (3,)
    assert np.all(outputs["remote"] > 0)
    np.testing.assert_array_equal(outputs["remote"], outputs["disk"])


def test_cache_fetch_and_list_name_the_root_url(served) -> None:
    url, folder = served
    fetched = cli("--registry", url, "cache", "fetch", "default")
    assert fetched.exit_code == 0, fetched.output
    files = len(Registry(folder).manifest("default").files)
    assert f"{files} fetched, 0 already cached" in fetched.output
    again = cli("--registry", url, "cache", "fetch", "default")
    assert f"0 fetched, {files} already cached" in again.output
    listed = cli("cache", "list")
    assert listed.exit_code == 0, listed.output
    assert f"{url}  index_version" in listed.output


def test_a_missing_registry_says_not_found(xrootd: XRootDServer, name: str) -> None:
    result = cli("--registry", xrootd.url(name), "list")
    assert result.exit_code == 1
    assert f"{xrootd.url(name)}/{INDEX_PATH}: not found" in result.output
    assert "download failed" not in result.output


# -- pushing ---------------------------------------------------------------------------------


def test_push_to_a_fresh_root_destination(
    xrootd: XRootDServer, name: str, tmp_path: Path, publisher_key: Keys
) -> None:
    source = tmp_path / "source"
    copy_versions(source, SMALL_REFS, [publisher_key.private])
    url = xrootd.url(f"{name}/never/written/before")
    result = cli("--registry", str(source), "push", url)
    assert result.exit_code == 0, result.output
    assert "download" not in result.output
    assert f"pushed {len(SMALL_REFS)} versions to {url}" in result.output
    assert f"index signed by {publisher_key.key_id}" in result.output
    on_disk = xrootd.folder(f"{name}/never/written/before")
    assert (on_disk / INDEX_PATH).read_bytes() == (source / INDEX_PATH).read_bytes()
    assert not [p for p in on_disk.rglob("*") if p.name.startswith(".")]  # no temporaries
    # read back through the server
    assert all(check.status == "ok" for check in Registry(url).verify())
    verified = cli("--registry", url, "verify")
    assert verified.exit_code == 0, verified.output


def test_push_to_an_existing_root_destination_and_pull_it_back(
    served, tmp_path: Path, publisher_key: Keys
) -> None:
    url, _ = served
    source = tmp_path / "source"
    copy_versions(source, [*SMALL_REFS, LATER_REF], [publisher_key.private])
    result = cli("--registry", str(source), "push", url)
    assert result.exit_code == 0, result.output
    assert f"pushed {len(SMALL_REFS) + 1} versions" in result.output
    assert "0 of them replaced a corrupt copy" in result.output
    manifests = [Registry(source).manifest(ref) for ref in [*SMALL_REFS, LATER_REF]]
    old = {f.digest for m in manifests[:-1] for f in m.files}
    new = {f.digest for f in manifests[-1].files} - old
    entries = sum(len(m.files) for m in manifests)  # "present" counts each version's files
    assert f": {len(new)} files uploaded" in result.output
    assert f"{entries - len(new)} already there (verified)" in result.output
    assert published_model("default", registry=url).version == "1.1.0"
    listing = cli("--registry", url, "list")
    assert "1.1.0" in listing.output
    # and the other way: from the server to a folder
    pulled = tmp_path / "pulled"
    result = cli("--registry", url, "push", str(pulled))
    assert result.exit_code == 0, result.output
    assert (pulled / INDEX_PATH).read_bytes() == (source / INDEX_PATH).read_bytes()
    assert all(check.status == "ok" for check in Registry(pulled).verify())


def test_push_repairs_a_corrupt_blob_on_the_root_destination(
    served, tmp_path: Path, publisher_key: Keys
) -> None:
    url, folder = served
    digest, path = _blob(folder, "default", "reference-values")
    path.write_bytes(b"corrupted")
    source = tmp_path / "source"
    copy_versions(source, SMALL_REFS, [publisher_key.private])
    result = cli("--registry", str(source), "push", url)
    assert result.exit_code == 0, result.output
    assert "1 of them replaced a corrupt copy" in result.output
    assert bytes_digest(path.read_bytes()) == digest


# -- tampering -------------------------------------------------------------------------------


def test_a_tampered_blob_on_the_server_is_refused_and_not_cached(
    served, isolated_env: Path, tmp_path: Path
) -> None:
    url, folder = served
    digest, path = _blob(folder, "default", "reference-values")
    file_name = Registry(folder).manifest("default").file("reference-values").name
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    for command in (["verify", "default@1.0.0"], ["get", "default@1.0.0", "-o", str(tmp_path)]):
        result = cli("--registry", url, *command)
        assert result.exit_code != 0, result.output
        assert f"({url}/{blob_path(digest)}): digest mismatch: expected {digest}" in result.output
        assert f"default@1.0.0 {file_name} (" in result.output
    assert not Cache(isolated_env).blobs.contains(digest)


def test_a_manifest_changed_and_rehashed_on_the_server_fails_the_signature(served) -> None:
    url, folder = served
    path = folder / manifest_path("default", "1.0.0")
    raw = json.loads(path.read_bytes())
    raw["parameters"][0]["value"] = (
        42.0 if not isinstance(raw["parameters"][0]["value"], list) else [42.0, 0.0]
    )
    tampered = Manifest.from_bytes(json.dumps(raw).encode()).to_bytes()
    path.write_bytes(tampered)
    index = Index.from_bytes((folder / INDEX_PATH).read_bytes())
    index.models["default"].versions["1.0.0"] = bytes_digest(tampered)
    (folder / INDEX_PATH).write_bytes(index.to_bytes())  # the old signature stays
    result = cli("--registry", url, "show", "default@1.0.0")
    assert result.exit_code == 1
    assert "was made for another index" in result.output


def test_an_index_signed_by_an_untrusted_key_is_refused(served, attacker_key: Keys) -> None:
    url, folder = served
    data = (folder / INDEX_PATH).read_bytes()
    (folder / SIGNATURE_PATH).write_bytes(sign_index(data, [attacker_key.private]))
    result = cli("--registry", url, "list")
    assert result.exit_code == 1
    assert f"signed by {attacker_key.key_id}, none of which this client trusts" in result.output


# -- offline ---------------------------------------------------------------------------------


def test_offline_reuses_the_cache_after_the_server_stopped(
    publisher_key: Keys, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = start_server()  # a server of its own: this test stops it
    try:
        url = server.url("offline")
        copy_versions(server.folder("offline"), SMALL_REFS, [publisher_key.private])
        server.adopt(server.folder("offline"))
        fetched = cli("--registry", url, "cache", "fetch", "default")
        assert fetched.exit_code == 0, fetched.output
    finally:
        remove_server(server)
    monkeypatch.setenv("MODELSTORE_OFFLINE", "1")
    for command in (["list"], ["show", "default"], ["verify", "default"]):
        result = cli("--registry", url, *command)
        assert result.exit_code == 0, f"{command}: {result.output}"
    got = cli("--registry", url, "get", "default", "-o", str(tmp_path / "got"))
    assert got.exit_code == 0, got.output
    model = published_model("default", registry=url)
    assert model.reference()["intensity"].size > 0
    missing = cli("--registry", url, "show", "k700-free")
    assert missing.exit_code == 1
    assert "is not in the cache" in missing.output


# -- timeouts --------------------------------------------------------------------------------


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A TCP port on loopback that accepts connections and never says a word."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield int(listener.getsockname()[1])
    stop.set()
    thread.join(timeout=5)
    for conn in accepted:
        conn.close()
    listener.close()


@pytest.mark.parametrize("kind", ["silent", "closed"])
def test_a_server_that_never_answers_times_out(kind: str, silent_server: int) -> None:
    require_xrootd(server=False)
    if kind == "silent":
        port = silent_server
    else:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])  # closed again: nothing listens there
    url = f"root://127.0.0.1:{port}//reg/nothing"
    code = "import sys; from modelstore.cli import main; sys.exit(main())"
    command = [sys.executable, "-c", code, "--registry", url, "list"]
    start = time.monotonic()
    proc = subprocess.run(
        command,
        env=subprocess_env({"MODELSTORE_TIMEOUT": "2"}),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    elapsed = time.monotonic() - start
    assert proc.returncode == 1, proc.stderr
    assert f"{url}/{INDEX_PATH}: download failed" in proc.stderr
    assert "Traceback" not in proc.stderr
    # 2 s to give up, plus the interpreter's start (imports of JAX and friends on a slow machine)
    assert elapsed < 60, f"took {elapsed:.1f} s"


def test_no_store_operation_takes_a_silent_server_for_an_empty_folder(
    silent_server: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """fsspec reports some failures as "nothing there": none of them may pass as such here."""
    require_xrootd(server=False)
    monkeypatch.setenv("MODELSTORE_TIMEOUT", "1")
    store = open_store(f"root://127.0.0.1:{silent_server}//reg/x")
    with pytest.raises(RemoteError, match=r"registry/sha256: cannot list \(OSError: .*expired"):
        store.list("registry/sha256")
    with pytest.raises(RemoteError, match=r"index\.json: cannot check whether it exists"):
        store.exists(INDEX_PATH)
    with pytest.raises(RemoteError, match=r"index\.json\.sig: cannot delete"):
        store.remove(SIGNATURE_PATH)
    with pytest.raises(RemoteError, match=r"index\.json: download failed"):
        store.read(INDEX_PATH, max_size=100)


def test_the_timeout_goes_to_the_xrootd_client(monkeypatch: pytest.MonkeyPatch) -> None:
    require_xrootd(server=False)
    monkeypatch.setenv("MODELSTORE_TIMEOUT", "2.5")
    store = open_store("root://127.0.0.1:1//reg/x")
    assert isinstance(store, RemoteStore)
    assert store.fs.timeout == 3  # whole seconds, rounded up
    monkeypatch.delenv("MODELSTORE_TIMEOUT")
    assert open_store("root://127.0.0.1:1//reg/x").fs.timeout == 30
    custom = open_store("root://127.0.0.1:1//reg/x", {"timeout": 7})
    assert custom.fs.timeout == 7  # the caller's own option wins


def test_without_the_extra_the_error_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    for module in ("XRootD", "XRootD.client", "fsspec_xrootd"):
        monkeypatch.setitem(sys.modules, module, None)  # import fails as if not installed
    result = cli("--registry", "root://eos.example//eos/lhcb/registry", "list")
    assert result.exit_code == 1
    assert "root:// registries need an extra: pip install 'modelstore[xrootd]'" in result.output


# -- the store contract ----------------------------------------------------------------------


class TestXRootDStoreConformance(StoreTests):
    """modelstore.testing.store's suite, the bytes reached on the server's disk."""

    @pytest.fixture
    def store(self, xrootd: XRootDServer, name: str) -> Store:
        self.server, self.name = xrootd, name
        return open_store(xrootd.url(name))

    def raw_set(self, store: Any, relpath: str, data: bytes) -> None:
        path = self.server.folder(self.name) / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        self.server.adopt(self.server.folder(self.name))

    def raw_get(self, store: Any, relpath: str) -> bytes | None:
        path = self.server.folder(self.name) / relpath
        return path.read_bytes() if path.is_file() else None

    def test_declares_its_abilities(self, store: Store) -> None:
        assert isinstance(store, RemoteStore)
        assert store.protocol == "root"
        assert store.supports_writes


def test_rollback_memory_knows_xrootds_default_port():
    from modelstore.trust.policy import canonical_location

    spellings = [
        "root://eos.example//eos/lhcb/registry",
        "root://EOS.example:1094//eos/lhcb/registry/",
        "root://eos.example:1094/eos/lhcb//registry/.",
    ]
    assert len({canonical_location(s) for s in spellings}) == 1
    assert canonical_location("root://eos.example:1095//eos") != canonical_location(spellings[0])
