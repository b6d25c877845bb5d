"""Helpers for the shared-registry tests: registries copied from the embedded one, an HTTP server.

The registries are built from copies of files of the embedded registry (no model is rebuilt).
The HTTP server is Python's http.server with hooks that break it on purpose.
"""

from __future__ import annotations

import base64
import os
import socket
import threading
from dataclasses import dataclass, field
from http.server import SimpleHTTPRequestHandler
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelstore.format.index import Index
from modelstore.format.manifest import Manifest
from modelstore.registry import (
    INDEX_PATH,
    SIGNATURE_PATH,
    Registry,
    blob_path,
    embedded_registry_root,
    manifest_path,
)
from modelstore.store.hashing import check_bytes
from modelstore.trust.signing import load_private_key, sign_index

if TYPE_CHECKING:
    from collections.abc import Sequence

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

# Two small models of the embedded registry, and a later version used to grow the index.
SMALL_REFS = ("default@1.0.0", "k700-free@1.0.0")
LATER_REF = "default@1.1.0"


@dataclass
class Keys:
    private_path: Path
    public_path: Path
    key_id: str

    @property
    def private(self) -> Ed25519PrivateKey:
        return load_private_key(self.private_path)


def copy_versions(
    dest: Path, refs: Sequence[str], keys: Sequence[Ed25519PrivateKey] = ()
) -> Registry:
    """Publish copies of ``refs`` of the embedded registry into ``dest`` (copied, not rebuilt).

    The files are read straight from the embedded folder and checked against its index and
    manifests, so these tests do not depend on the embedded index signature being current
    (test_embedded_signature checks that one).
    """
    root = embedded_registry_root()
    index = Index.from_bytes((root / INDEX_PATH).read_bytes())
    target = Registry(dest)
    for ref in refs:
        model_id, _, version = ref.partition("@")
        data = (root / manifest_path(model_id, version)).read_bytes()
        check_bytes(data, name=ref, size=len(data), digest=index.models[model_id].versions[version])
        manifest = Manifest.from_bytes(data, ref)
        blobs = {
            entry.role: (root / blob_path(entry.digest)).read_bytes() for entry in manifest.files
        }
        target.publish(manifest, blobs, signing_keys=keys)
    return target


def rewrite_index(folder: Path, index: Index, keys: Sequence[Ed25519PrivateKey] = ()) -> bytes:
    """Write an index (and a signature by ``keys``, if any) straight into a registry folder."""
    data = index.to_bytes()
    (folder / INDEX_PATH).write_bytes(data)
    if keys:
        (folder / SIGNATURE_PATH).write_bytes(sign_index(data, keys))
    return data


@dataclass
class HttpServer:
    """A registry folder served over HTTP on 127.0.0.1, with fault hooks.

    ``cut_once``: paths whose next GET sends the headers and half the body, then drops the
    connection. ``rendezvous_parties``: hold each blob request until that many clients ask for
    the same blob (so concurrent downloads of the same file really are concurrent).
    """

    folder: Path
    url: str = ""
    requests: list[str] = field(default_factory=list)
    cut_once: set[str] = field(default_factory=set)
    rendezvous_parties: int = 0
    rendezvous: dict[str, threading.Barrier] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    basic_auth: str | None = None  # "user:password" the server requires (401 without it)

    def content_requests(self) -> list[str]:
        """GETs of manifests and files (everything but the index and its signature)."""
        index = {f"/{INDEX_PATH}", f"/{SIGNATURE_PATH}"}
        return [p for p in self.requests if p not in index and not p.startswith("HEAD ")]


def make_handler(state: HttpServer) -> type[SimpleHTTPRequestHandler]:
    class Handler(SimpleHTTPRequestHandler):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, directory=str(state.folder), **kwargs)

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _refused(self) -> bool:
            """Answer 401 unless the request carries the credentials the server requires."""
            if state.basic_auth is None:
                return False
            expected = "Basic " + base64.b64encode(state.basic_auth.encode()).decode()
            if self.headers.get("Authorization") == expected:
                return False
            self.send_error(401)
            return True

        def do_GET(self) -> None:
            if self._refused():
                return
            with state.lock:
                state.requests.append(self.path)
                cut = self.path in state.cut_once
                state.cut_once.discard(self.path)
                barrier = None
                if state.rendezvous_parties and self.path.startswith("/registry/"):
                    barrier = state.rendezvous.setdefault(
                        self.path, threading.Barrier(state.rendezvous_parties, timeout=30)
                    )
            if barrier is not None:
                barrier.wait()  # every client is downloading this very blob at the same time
            if cut:
                self._send_half()
                return
            super().do_GET()

        def do_HEAD(self) -> None:
            if self._refused():
                return
            with state.lock:
                state.requests.append(f"HEAD {self.path}")
            super().do_HEAD()

        def _send_half(self) -> None:
            data = Path(self.translate_path(self.path)).read_bytes()
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)

    return Handler


def subprocess_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    env.update(extra or {})
    return env
