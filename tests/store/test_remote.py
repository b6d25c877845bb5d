"""Registry URLs: the supported schemes open; any other is refused in one line naming them."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from modelstore.cli import main
from modelstore.errors import RemoteError
from modelstore.store import open_store
from modelstore.store.fsspec_options import REGISTRY_SCHEMES, registry_scheme_problem


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        ("ftp://host/registry", "unsupported URL scheme 'ftp'"),
        ("FTP://alice:secret@host/registry", "unsupported URL scheme 'ftp'"),
        ("sftp://host/registry", "unsupported URL scheme 'sftp'"),
        ("simplecache::ftp://host/registry", "unsupported URL scheme 'ftp'"),
        ("ftp::s3://bucket/registry", "unsupported URL scheme 'ftp'"),
        ("gopher://host/registry", "unknown URL scheme 'gopher'"),
    ],
)
def test_other_schemes_are_refused_before_connecting(url: str, kind: str) -> None:
    with pytest.raises(RemoteError) as info:
        open_store(url)
    message = str(info.value)
    assert kind in message
    assert "secret" not in message
    for scheme in ("https://", "s3://", "root://"):
        assert scheme in message  # says which schemes are supported


def test_the_supported_schemes_pass(tmp_path) -> None:
    assert all(registry_scheme_problem(s) is None for s in REGISTRY_SCHEMES)
    assert registry_scheme_problem("simplecache::s3") is None
    store = open_store(f"memory://{tmp_path.name}/registry")
    store.write("manifests/x", b"x")
    assert store.read("manifests/x") == b"x"


def test_the_command_line_refuses_ftp_in_one_line(tmp_path) -> None:
    env = {"MODELSTORE_CACHE_DIR": str(tmp_path / "cache")}
    result = CliRunner().invoke(main, ["--registry", "ftp://host/registry", "list"], env=env)
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("Error: cannot open the registry at ftp://host/registry:")
    assert "unsupported URL scheme 'ftp'" in lines[0] and "https://" in lines[0]
