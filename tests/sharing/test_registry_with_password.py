"""A registry URL with a password: the password connects, and shows up nowhere.

The server requires HTTP basic authentication, so a request that reached it without the
password would fail: every success here used the real URL.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from event_samples import write_input

from modelstore import published_model
from modelstore.cli import main
from modelstore.errors import RemoteError
from modelstore.registry import Registry

PASSWORD = "Pw-4-the-registry"  # noqa: S105 (a test password)


def password_url(plain: str) -> str:
    return plain.replace("http://", f"http://alice:{PASSWORD}@", 1).rstrip("/")


@pytest.fixture
def served(signed_registry: Path, serve: object) -> tuple[str, str]:
    """(URL with the password, URL without it) of a registry that requires the password."""
    server = serve(signed_registry)
    server.basic_auth = f"alice:{PASSWORD}"
    return password_url(server.url), server.url.rstrip("/")


def everything_under(folder: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file())


def test_the_server_refuses_a_request_without_the_password(served: tuple[str, str]) -> None:
    _, plain = served
    with pytest.raises(RemoteError, match="401"):
        Registry(plain).index()


def test_the_registry_connects_with_the_password_and_shows_it_nowhere(
    served: tuple[str, str], isolated_env: Path, tmp_path: Path
) -> None:
    url, plain = served
    registry = Registry(url)
    assert registry.index().models["default"].versions  # through the password
    shown = plain.replace("http://", "http://alice:***@")
    assert registry.location == shown
    assert registry.where("manifests/index.json") == f"{shown}/manifests/index.json"
    assert PASSWORD not in repr(registry) and PASSWORD not in repr(registry.store)
    assert registry.store.address == url  # what opens it again
    model = published_model("default", registry=registry, backend="numpy")
    assert model.reference()["intensity"].size > 0
    # the cache records the registry under its shown location only
    assert everything_under(isolated_env)
    assert PASSWORD.encode() not in everything_under(isolated_env)


@pytest.mark.parametrize(
    "args",
    [["list"], ["verify", "default"], ["lock", "default"], ["cache", "list"], ["show", "default"]],
)
def test_commands_print_no_password(served: tuple[str, str], args: list[str]) -> None:
    url, plain = served
    CliRunner().invoke(main, ["--registry", url, "cache", "fetch"])  # something for cache list
    result = CliRunner().invoke(main, ["--registry", url, *args])
    assert result.exit_code == 0, result.output
    assert PASSWORD not in result.output
    if args[0] in ("lock", "cache"):
        assert plain.replace("http://", "http://alice:***@") in result.output


def test_eval_output_carries_no_password(served: tuple[str, str], tmp_path: Path) -> None:
    import zarr

    url, _ = served
    source = write_input(tmp_path, "zarr", np.array([1.0, 1.2]), np.array([3.0, 3.1]))
    out = tmp_path / "out.zarr"
    result = CliRunner().invoke(
        main, ["--registry", url, "eval", "default", "-i", str(source), "-o", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert PASSWORD not in result.output
    assert zarr.open_group(str(out), mode="r").attrs["modelstore"]["model"] == "default@1.0.0"
    assert PASSWORD.encode() not in everything_under(out)


def test_dask_workers_connect_with_the_password(
    served: tuple[str, str], tmp_path: Path, publisher_key: object
) -> None:
    """Workers load the model by the registry's address (with the password), not its location."""
    distributed = pytest.importorskip("distributed")
    from modelstore.events import evaluate_distributed

    url, _ = served
    model = published_model("default", registry=url, backend="numpy")
    source = write_input(tmp_path, "zarr", np.array([1.0, 1.2]), np.array([3.0, 3.1]))
    with distributed.LocalCluster(
        n_workers=1, threads_per_worker=1, processes=False, dashboard_address=":0"
    ) as cluster:
        result = evaluate_distributed(
            model, source, tmp_path / "out.zarr", scheduler=cluster.scheduler_address
        )
    assert result.events == 2
