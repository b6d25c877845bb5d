"""Fixtures for shared registries: small signed registries and real servers on loopback.

The HTTP server is Python's http.server in a thread; the S3 server is moto's server mode
(`s3_server`, shared with the event-store tests).
Nothing here talks to anything but 127.0.0.1.
"""

from __future__ import annotations

import threading
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from s3_server import s3_bucket, s3_endpoint  # noqa: F401 (fixtures, shared with tests/events)
from sharing_helpers import SMALL_REFS, HttpServer, Keys, copy_versions, make_handler

from modelstore.trust.signing import generate_keypair

if TYPE_CHECKING:
    from collections.abc import Iterator

ENV_VARS = (
    "MODELSTORE_REGISTRY",
    "MODELSTORE_OFFLINE",
    "MODELSTORE_REQUIRE_SIGNATURE",
    "MODELSTORE_TRUSTED_KEYS",
    "MODELSTORE_CACHE_DIR",
    "MODELSTORE_CONFIG_DIR",
)


@pytest.fixture(autouse=True)
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private cache and config folder; no trusted keys beyond the shipped one."""
    for name in ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    cache = tmp_path / "cache"
    monkeypatch.setenv("MODELSTORE_CACHE_DIR", str(cache))
    monkeypatch.setenv("MODELSTORE_CONFIG_DIR", str(tmp_path / "config"))
    return cache


@pytest.fixture
def publisher_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Keys:
    """A key pair whose public key the client trusts (MODELSTORE_TRUSTED_KEYS)."""
    private, public, kid = generate_keypair(tmp_path / "keys" / "publisher.key")
    monkeypatch.setenv("MODELSTORE_TRUSTED_KEYS", str(public))
    return Keys(private, public, kid)


@pytest.fixture
def attacker_key(tmp_path: Path) -> Keys:
    """A key pair nobody trusts."""
    private, public, kid = generate_keypair(tmp_path / "keys" / "attacker.key")
    return Keys(private, public, kid)


@pytest.fixture
def signed_registry(tmp_path: Path, publisher_key: Keys) -> Path:
    """A folder with default@1.0.0 and k700-free@1.0.0, signed by the trusted publisher key."""
    folder = tmp_path / "registry"
    copy_versions(folder, SMALL_REFS, [publisher_key.private])
    return folder


@pytest.fixture
def serve() -> Iterator[Any]:
    """``serve(folder) -> HttpServer``: serve a registry folder on 127.0.0.1 until the test ends."""
    servers: list[ThreadingHTTPServer] = []

    def start(folder: Path) -> HttpServer:
        state = HttpServer(folder)
        httpd = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(state))
        httpd.daemon_threads = True
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        servers.append(httpd)
        state.url = f"http://127.0.0.1:{httpd.server_address[1]}/"
        return state

    yield start
    for httpd in servers:
        httpd.shutdown()
        httpd.server_close()
