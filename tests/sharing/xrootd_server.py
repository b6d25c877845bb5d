"""A real XRootD server for the tests: the ``xrootd`` of xrootd-server, on loopback, writable.

The server runs as an unprivileged user when the tests run as root (``xrootd`` refuses to run
as root): uid and gid 65534 (nobody) through ``setpriv``. It exports ``/reg`` from a fresh
folder that user owns, listens on a free port and accepts connections from this machine only
(``xrd.allow``), without authentication, so clients may write (``modelstore push``).

Without the ``xrootd`` program or the Python packages (``pip install 'modelstore[xrootd]'``),
the tests skip with the reason, except in CI (``$CI`` set), where they fail: CI installs both.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

EXPORT = "reg"  # the exported path: root://127.0.0.1:PORT//reg/...
UNPRIVILEGED = 65534  # nobody / nogroup on Debian
READY = "initialization completed"
START_SECONDS = 30.0

CONFIG = """\
# modelstore tests: one exported folder, writable, from loopback only, no authentication
all.export /{export}
oss.localroot {data}
all.adminpath {admin}
all.pidpath {admin}
xrd.allow host localhost
xrd.allow host 127.0.0.1
"""


def missing_requirement(server: bool = True) -> str | None:
    """Why the XRootD client (and with ``server``, a server) cannot be run here; None if it can."""
    for module in ("XRootD", "fsspec_xrootd"):
        if importlib.util.find_spec(module) is None:
            return f"the Python module {module} is missing (pip install 'modelstore[xrootd]')"
    if not server:
        return None
    if shutil.which("xrootd") is None:
        return "the xrootd program is not installed (apt-get install xrootd-server)"
    if os.geteuid() == 0 and shutil.which("setpriv") is None:
        return "running as root, and setpriv (util-linux) is missing to drop privileges"
    return None


def require_xrootd(server: bool = True) -> None:
    """Skip the test when the XRootD client (or server) cannot run here; in CI (``$CI``), fail."""
    reason = missing_requirement(server)
    if reason is None:
        return
    if os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no"):
        pytest.fail(f"XRootD tests cannot run in CI: {reason}", pytrace=False)
    pytest.skip(f"XRootD tests skipped: {reason}")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class XRootDServer:
    """A running ``xrootd``; ``url(name)`` and ``folder(name)`` name one registry on it."""

    base: Path
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def data(self) -> Path:
        """What the server serves as ``/``: ``data / EXPORT`` is the exported folder."""
        return self.base / "data"

    def url(self, name: str) -> str:
        return f"root://127.0.0.1:{self.port}//{EXPORT}/{name}"

    def folder(self, name: str) -> Path:
        """Where ``url(name)`` is on this machine's disk."""
        return self.data / EXPORT / name

    def adopt(self, path: Path) -> None:
        """Give the server's user what the tests wrote on its disk, so the server may change it."""
        if os.geteuid() != 0:
            return
        for folder, dirs, files in os.walk(path):
            for name in [folder, *(os.path.join(folder, n) for n in dirs + files)]:
                os.chown(name, UNPRIVILEGED, UNPRIVILEGED)

    def log_text(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError as exc:
            return f"(no log: {exc})"

    def stop(self) -> None:
        """Stop the server (and wait for it); safe to call twice."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def _accepts(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(1.0)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _launch(base: Path) -> XRootDServer:
    port = free_port()
    data, admin = base / "data", base / "admin"
    config = base / "xrootd.cfg"
    config.write_text(CONFIG.format(export=EXPORT, data=data, admin=admin))
    log = base / "xrootd.log"
    if os.geteuid() == 0:  # the server's user writes its admin files and the exported folder
        for path in (base, data, data / EXPORT, admin):
            os.chown(path, UNPRIVILEGED, UNPRIVILEGED)
    command = ["xrootd", "-p", str(port), "-c", str(config), "-n", "modelstore-tests"]
    if os.geteuid() == 0:
        ids = [f"--reuid={UNPRIVILEGED}", f"--regid={UNPRIVILEGED}", "--clear-groups"]
        command = ["setpriv", *ids, *command]
    with log.open("wb") as out:  # the server writes its log to stderr
        process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, cwd=base
        )
    return XRootDServer(base, port, process, log)


def start_server(attempts: int = 3) -> XRootDServer:
    """Start an ``xrootd`` on a free loopback port with an empty exported folder.

    Waits until it accepts connections and has logged that it is ready; fails the test with
    the server's log if it does not within START_SECONDS.
    """
    require_xrootd()
    base = Path(tempfile.mkdtemp(prefix="modelstore-xrootd-"))
    (base / "data" / EXPORT).mkdir(parents=True)
    (base / "admin").mkdir()
    server = None
    for _ in range(attempts):
        server = _launch(base)
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline and server.process.poll() is None:
            if READY in server.log_text() and _accepts(server.port):
                return server
            time.sleep(0.05)
        server.stop()
        if "already in use" not in server.log_text():  # another process took the port: retry
            break
    assert server is not None
    status = server.process.returncode
    what = "was not ready" if status in (None, -15) else f"exited with status {status}"
    log = server.log_text()
    shutil.rmtree(base, ignore_errors=True)
    pytest.fail(
        f"xrootd {what} within {START_SECONDS:.0f} s of its start; its log:\n{log}",
        pytrace=False,
    )


def remove_server(server: XRootDServer) -> None:
    server.stop()
    with contextlib.suppress(OSError):
        shutil.rmtree(server.base)
