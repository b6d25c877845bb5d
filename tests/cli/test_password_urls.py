"""Passwords in URLs are never shown: errors, printed locations and provenance say ``***``.

The servers named here are loopback ports nobody listens on (refused at once) or URLs with an
unknown scheme; ``$MODELSTORE_TIMEOUT`` bounds the rest.
"""

from __future__ import annotations

import pickle
import socket
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from event_samples import REF, fast_backend, write_input

from modelstore import published_model
from modelstore.cli import main
from modelstore.errors import RemoteError
from modelstore.events import evaluate_file
from modelstore.events.locations import address_of, parse_location, shown_location
from modelstore.redaction import redact
from modelstore.store import open_store

PASSWORD = "S3cretPW"  # noqa: S105 (a test password)


@pytest.fixture(scope="module")
def closed_port() -> int:
    """A loopback port with nothing listening (connections are refused at once)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(autouse=True)
def short_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELSTORE_TIMEOUT", "2")


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("https://alice:PW@host/reg", "https://alice:***@host/reg"),
        ("root://alice:PW@host:1094//out.zarr", "root://alice:***@host:1094//out.zarr"),
        ("https://alice:p@ss@host/x", "https://alice:***@host/x"),  # a raw "@" in it
        ("simplecache::s3://key:secret@bucket/x", "simplecache::s3://key:***@bucket/x"),
        ("https://:PW@host/", "https://:***@host/"),
        ('a (bucket "alice:PW@host:9" is bad)', 'a (bucket "alice:***@host:9" is bad)'),
        ("x https://a:1@h/p and http://b:2@g/q", "x https://a:***@h/p and http://b:***@g/q"),
        # nothing to hide: no password, a port, a user alone, local paths, plain text
        ("https://host:8080/a@b", "https://host:8080/a@b"),
        ("https://token@host/x", "https://token@host/x"),
        ("git@github.com:org/repo", "git@github.com:org/repo"),
        ("/data/run:1/file.csv", "/data/run:1/file.csv"),
        ("{'a': 'b@c'}", "{'a': 'b@c'}"),
    ],
)
def test_redact(text: str, shown: str) -> None:
    assert redact(text) == shown
    assert redact(shown) == shown


def test_errors_hide_passwords_in_message_repr_and_pickle() -> None:
    exc = RemoteError(f"https://alice:{PASSWORD}@h/x: failed (bucket 'alice:{PASSWORD}@h')")
    for text in (str(exc), repr(exc), str(pickle.loads(pickle.dumps(exc))), *exc.args):
        assert PASSWORD not in text and "alice:***@h" in text
    assert isinstance(exc, OSError)


def test_a_store_shows_its_url_without_the_password_and_connects_with_it() -> None:
    store = open_store(f"memory://alice:{PASSWORD}@host/reg")
    assert store.location == "memory://alice:***@host/reg"
    assert store.where("a/b") == "memory://alice:***@host/reg/a/b"
    assert PASSWORD not in repr(store)
    assert store.address == f"memory://alice:{PASSWORD}@host/reg"
    store.write("a/b", b"x")
    assert open_store(store.address).read("a/b") == b"x"


def test_an_event_url_shows_no_password_but_keeps_it() -> None:
    location = parse_location(f"s3://alice:{PASSWORD}@bucket/out.zarr")
    assert str(location) == shown_location(location) == "s3://alice:***@bucket/out.zarr"
    assert PASSWORD not in repr(location)
    assert address_of(location) == location.url == f"s3://alice:{PASSWORD}@bucket/out.zarr"


def one_error(args: list[str]) -> str:
    result = CliRunner().invoke(main, args)
    assert result.exit_code != 0, result.output
    assert "Traceback" not in result.output
    assert PASSWORD not in result.output, result.output
    return result.output


@pytest.mark.parametrize(
    "args",
    [
        ["list"],
        ["verify"],
        ["verify", "default"],
        ["get", "default", "-o", "unused"],
        ["show", "default"],
        ["eval", "default", "-i", "in.csv", "-o", "out.csv"],
    ],
)
@pytest.mark.parametrize("scheme", ["https", "ftpx"])
def test_registry_errors_hide_the_password(
    args: list[str], scheme: str, closed_port: int, tmp_path: Path
) -> None:
    url = f"{scheme}://alice:{PASSWORD}@127.0.0.1:{closed_port}/reg"
    args = [a if a not in ("unused", "in.csv", "out.csv") else str(tmp_path / a) for a in args]
    output = one_error(["--registry", url, *args])
    assert f"{scheme}://alice:***@127.0.0.1:{closed_port}/reg" in output
    assert ("unknown URL scheme" if scheme == "ftpx" else "ClientConnectorError") in output


@pytest.mark.parametrize(
    ("option", "url", "needs", "problem"),
    [
        ("-o", "root://alice:{pw}@127.0.0.1:{port}//out.zarr", "XRootD", "cannot inspect"),
        ("-i", "s3://alice:{pw}@127.0.0.1:{port}/in.zarr", "s3fs", 'bucket name "alice:***@'),
        ("-o", "ftpx://alice:{pw}@host/out.zarr", None, "unknown URL scheme"),
        ("-o", "memory://alice:{pw}@host/out.csv", None, "only zarr stores"),
    ],
)
def test_event_store_errors_hide_the_password(
    option: str, url: str, needs: str | None, problem: str, closed_port: int, tmp_path: Path
) -> None:
    if needs:
        pytest.importorskip(needs)
    url = url.format(pw=PASSWORD, port=closed_port)
    source = write_input(tmp_path, "csv", np.array([1.0]), np.array([3.0]))
    other = "-o" if option == "-i" else "-i"
    other_path = str(tmp_path / "out.csv") if other == "-o" else str(source)
    output = one_error(["eval", REF, option, url, other, other_path, "--backend", "numpy"])
    assert redact(url) in output and problem in output


def test_provenance_records_an_input_url_without_its_password(tmp_path: Path) -> None:
    import zarr

    model = published_model(REF, backend=fast_backend())
    source = write_input(tmp_path, "zarr", np.array([1.0, 1.2]), np.array([3.0, 3.1]))
    url = f"memory://alice:{PASSWORD}@host/events/in.zarr"
    evaluate_file(model, source, url)  # the input, written through its real URL
    out = tmp_path / "out.zarr"
    result = CliRunner().invoke(main, ["eval", REF, "-i", url, "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert PASSWORD not in result.output
    provenance = zarr.open_group(str(out), mode="r").attrs["modelstore"]
    assert provenance["input"] == "memory://alice:***@host/events/in.zarr"
    found = b"".join(p.read_bytes() for p in out.rglob("*") if p.is_file())
    assert PASSWORD.encode() not in found
    table = tmp_path / "out.parquet"  # provenance in the file's metadata
    assert CliRunner().invoke(main, ["eval", REF, "-i", url, "-o", str(table)]).exit_code == 0
    assert b"alice:***@host" in table.read_bytes()
    assert PASSWORD.encode() not in table.read_bytes()
