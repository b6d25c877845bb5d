"""eval on zarr stores on a real XRootD server (``root://127.0.0.1:PORT//reg/...``) on loopback.

root → root plain and with ``--dask local`` (worker processes that open the stores themselves),
local → root, bad locations refused in one line with nothing written, and ``--overwrite`` that
replaces only a store modelstore wrote. Outputs are read from the server's disk with zarr itself
(not through modelstore) and compared bit for bit with the plain local evaluation. The server is
the ``xrootd`` of xrootd-server (tests/sharing/xrootd_server.py): skipped where it is missing,
except in CI, which fails instead.
"""

from __future__ import annotations

import shutil
import sys
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest
from click.testing import CliRunner
from event_samples import REF, write_input

from modelstore import PublishedModel
from modelstore.cli import main
from modelstore.errors import EventFileError
from modelstore.events import evaluate_file

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "sharing"))
from xrootd_server import XRootDServer, remove_server, start_server

if TYPE_CHECKING:
    from collections.abc import Iterator

N_EVENTS = 10_000
CHUNK = 2500


@pytest.fixture(scope="module")
def xrootd() -> Iterator[XRootDServer]:
    """One server for the module; each test writes names of its own on it."""
    server = start_server()
    yield server
    remove_server(server)


@pytest.fixture
def name() -> str:
    return f"t-{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="module")
def local_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rng = np.random.default_rng(29)
    sigma1 = rng.uniform(0.4, 1.82, N_EVENTS)
    sigma1[[3, 7001]] = [np.nan, -1.0]  # invalid inputs
    return write_input(
        tmp_path_factory.mktemp("in"), "zarr", sigma1, rng.uniform(2.05, 4.6, N_EVENTS)
    )


@pytest.fixture(scope="module")
def source(xrootd: XRootDServer, local_source: Path) -> str:
    """The local input, put on the server's disk (owned by the server's user)."""
    shutil.copytree(local_source, xrootd.folder("in.zarr"))
    xrootd.adopt(xrootd.folder("in.zarr"))
    return xrootd.url("in.zarr")


@pytest.fixture(scope="module")
def plain(
    model: PublishedModel, local_source: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, np.ndarray]:
    """The plain local → local evaluation everything is compared with."""
    out = tmp_path_factory.mktemp("plain") / "plain.zarr"
    evaluate_file(model, local_source, out, chunk_size=CHUNK)
    return read_zarr(out)


def read_zarr(where: Path) -> dict[str, np.ndarray]:
    import zarr

    group = zarr.open_group(str(where), mode="r")
    return {name: group[name][:] for name in group.array_keys()}


def assert_bit_identical(got: dict[str, np.ndarray], expected: dict[str, np.ndarray]) -> None:
    assert sorted(got) == sorted(expected) == ["intensity", "msq_Kp", "msq_piK"]
    for column, values in expected.items():
        assert got[column].dtype == values.dtype == np.float64
        np.testing.assert_array_equal(got[column].view(np.uint64), values.view(np.uint64))


def on_disk(xrootd: XRootDServer) -> list[str]:
    """Every file and folder the server holds, relative to its export."""
    top = xrootd.folder("")
    return sorted(str(p.relative_to(top)) for p in top.rglob("*"))


def run_cli(model: PublishedModel, *args: str) -> Any:
    common = ("--backend", model.backend, "--chunk-size", str(CHUNK))
    return CliRunner().invoke(main, ["eval", REF, *args, *common])


def test_root_to_root_plain(
    model: PublishedModel, xrootd: XRootDServer, source: str, plain: Any, name: str
) -> None:
    import zarr

    out = xrootd.url(f"{name}/out.zarr")
    result = run_cli(model, "-i", source, "-o", out)
    assert result.exit_code == 0, result.output
    assert f"{N_EVENTS} events" in result.output and out in result.output
    assert_bit_identical(read_zarr(xrootd.folder(f"{name}/out.zarr")), plain)
    attrs = zarr.open_group(str(xrootd.folder(f"{name}/out.zarr")), mode="r").attrs
    assert attrs["modelstore"]["input"] == source
    assert attrs["modelstore"]["invalid_inputs"] == "2"
    assert not [p for p in on_disk(xrootd) if ".partial-" in p]  # the staged folder is gone


def test_root_to_root_dask_local(
    model: PublishedModel, xrootd: XRootDServer, source: str, plain: Any, name: str
) -> None:
    """``--dask local``: two worker processes open the stores on the server themselves."""
    out = xrootd.url(f"{name}/dask.zarr")
    result = run_cli(model, "-i", source, "-o", out, "--dask", "local", "--dask-workers", "2")
    assert result.exit_code == 0, result.output
    assert f"{N_EVENTS} events" in result.output
    assert_bit_identical(read_zarr(xrootd.folder(f"{name}/dask.zarr")), plain)
    assert not [p for p in on_disk(xrootd) if ".partial-" in p]


def test_local_to_root_and_back(
    model: PublishedModel,
    xrootd: XRootDServer,
    local_source: Path,
    plain: Any,
    name: str,
    tmp_path: Path,
) -> None:
    out = xrootd.url(f"{name}/from-local.zarr")
    result = run_cli(model, "-i", str(local_source), "-o", out)
    assert result.exit_code == 0, result.output
    assert_bit_identical(read_zarr(xrootd.folder(f"{name}/from-local.zarr")), plain)
    # root → local reads the store through modelstore's XRootD store: the same numbers again
    back = tmp_path / "back.zarr"
    evaluate_file(model, out, back, chunk_size=CHUNK)
    assert_bit_identical(read_zarr(back), plain)


def test_failed_run_leaves_nothing(
    model: PublishedModel, xrootd: XRootDServer, local_source: Path, name: str
) -> None:
    """An input whose last chunk is garbage: the run fails after writing the first blocks."""
    broken = xrootd.folder(f"{name}/broken.zarr")
    shutil.copytree(local_source, broken)
    (broken / "msq_piK" / "c" / "2").write_bytes(b"garbage")
    xrootd.adopt(xrootd.folder(name))
    before = on_disk(xrootd)
    out = xrootd.url(f"{name}/failed.zarr")
    result = run_cli(model, "-i", xrootd.url(f"{name}/broken.zarr"), "-o", out)
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1
    assert on_disk(xrootd) == before  # neither the output nor its staged folder


@pytest.mark.parametrize(
    ("make_args", "message"),
    [
        (lambda x, s: ["-i", x.url("missing.zarr"), "-o", x.url("o.zarr")],
         "/reg/missing.zarr: no such zarr store"),
        (lambda x, s: ["-i", x.url("not-a-group"), "-o", x.url("o.zarr"),
                       "--input-format", "zarr"], "not a zarr group"),
        (lambda x, s: ["-i", s, "-o", s], "would overwrite the input"),
        (lambda x, s: ["-i", s, "-o", f"{s}/inside.zarr"], "sit inside the input"),
        (lambda x, s: ["-i", s, "-o", x.url("o.parquet")], "only zarr stores"),
    ],
)  # fmt: skip
@pytest.mark.parametrize("dask", [False, True])
def test_bad_locations_are_one_line(
    make_args: Any, message: str, dask: bool, xrootd: XRootDServer, source: str
) -> None:
    xrootd.folder("not-a-group").mkdir(exist_ok=True)
    (xrootd.folder("not-a-group") / "data.bin").write_bytes(b"x")
    xrootd.adopt(xrootd.folder("not-a-group"))
    before = on_disk(xrootd)
    extra = ["--dask", "tcp://127.0.0.1:9"] if dask else []  # refused before any connection
    result = CliRunner().invoke(main, ["eval", REF, *make_args(xrootd, source), *extra])
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and message in lines[0], lines
    assert on_disk(xrootd) == before


def test_unreachable_server_is_one_line(
    model: PublishedModel, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Nothing listens on the port: one error line naming the URL, within the timeout."""
    from xrootd_server import free_port

    monkeypatch.setenv("MODELSTORE_TIMEOUT", "2")
    url = f"root://127.0.0.1:{free_port()}//reg/in.zarr"
    result = run_cli(model, "-i", url, "-o", str(tmp_path / "o.zarr"))
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"Error: {url}"), lines
    assert not (tmp_path / "o.zarr").exists()


def test_overwrite_only_what_modelstore_wrote(
    model: PublishedModel, xrootd: XRootDServer, source: str, plain: Any, name: str
) -> None:
    import zarr

    foreign = xrootd.folder(f"{name}/foreign.zarr")
    group = zarr.open_group(str(foreign), mode="w")
    group.create_array("intensity", data=np.ones(3))
    group.attrs["owner"] = "someone else"
    xrootd.adopt(xrootd.folder(name))
    before = on_disk(xrootd)
    result = run_cli(model, "-i", source, "-o", xrootd.url(f"{name}/foreign.zarr"), "--overwrite")
    assert result.exit_code == 1 and "modelstore did not write" in result.output
    assert on_disk(xrootd) == before
    assert read_zarr(foreign)["intensity"].tolist() == [1.0, 1.0, 1.0]

    ours = xrootd.url(f"{name}/ours.zarr")
    assert run_cli(model, "-i", source, "-o", ours).exit_code == 0
    again = run_cli(model, "-i", source, "-o", ours)
    assert again.exit_code == 1 and "exists already" in again.output
    chunk = xrootd.folder(f"{name}/ours.zarr") / "intensity" / "c" / "0"
    chunk.write_bytes(b"garbage")  # replaced wholesale below
    replaced = run_cli(model, "-i", source, "-o", ours, "--overwrite")
    assert replaced.exit_code == 0, replaced.output
    assert_bit_identical(read_zarr(xrootd.folder(f"{name}/ours.zarr")), plain)
    assert not [p for p in on_disk(xrootd) if ".partial-" in p]


def test_output_without_its_group_is_not_read(
    model: PublishedModel, xrootd: XRootDServer, source: str, name: str
) -> None:
    """A store whose group zarr.json is missing is neither read nor replaced."""
    out = xrootd.url(f"{name}/cut.zarr")
    evaluate_file(model, source, out, chunk_size=CHUNK)
    (xrootd.folder(f"{name}/cut.zarr") / "zarr.json").unlink()
    with pytest.raises(EventFileError, match="no zarr.json or .zgroup: .* did not complete"):
        evaluate_file(model, out, xrootd.url(f"{name}/from-cut.zarr"))
    with pytest.raises(EventFileError, match="did not write"):
        evaluate_file(model, source, out, overwrite=True)


def test_store_contract(xrootd: XRootDServer, name: str) -> None:
    """XRootDStore alone: byte ranges, listings, deletes, read-only, pickling, tree helpers."""
    import asyncio
    import pickle

    from zarr.abc.store import OffsetByteRequest, RangeByteRequest, SuffixByteRequest
    from zarr.core.buffer import default_buffer_prototype

    from modelstore.events.xrootd_store import XRootDStore
    from modelstore.events.xrootd_tree import move_tree, remove_tree

    url = xrootd.url(f"{name}/s.zarr")
    store = XRootDStore(url)
    proto = default_buffer_prototype()
    buf = proto.buffer.from_bytes

    async def scenario() -> None:
        await store.set("a/c/0", buf(b"0123456789"))
        await store.set("a/zarr.json", buf(b"{}"))
        await store.set("zarr.json", buf(b"{}"))
        assert (await store.get("a/c/0")).to_bytes() == b"0123456789"  # type: ignore[union-attr]
        parts = await store.get_partial_values(
            proto,
            [("a/c/0", RangeByteRequest(2, 5)), ("a/c/0", OffsetByteRequest(7)),
             ("a/c/0", SuffixByteRequest(3)), ("missing", None), ("a", None)],
        )  # fmt: skip
        assert [p.to_bytes() if p else None for p in parts] == [
            b"234", b"789", b"789", None, None,
        ]  # fmt: skip
        assert [k async for k in store.list()] == ["a/c/0", "a/zarr.json", "zarr.json"]
        assert [k async for k in store.list_prefix("a/")] == ["a/c/0", "a/zarr.json"]
        assert [k async for k in store.list_dir("")] == ["a", "zarr.json"]
        assert [k async for k in store.list_dir("nowhere")] == []
        assert await store.exists("a/c/0") and not await store.exists("a")
        await store.delete("a/c/0")
        await store.delete("a/c/0")  # missing: nothing happens
        assert await store.get("a/c/0") is None
        reader = store.with_read_only(True)
        with pytest.raises(ValueError, match="read-only"):
            await reader.set("x", buf(b"x"))
        copy = pickle.loads(pickle.dumps(reader))
        assert copy == reader != store and (await copy.get("zarr.json")) is not None

    asyncio.run(scenario())
    assert (xrootd.folder(f"{name}/s.zarr") / "a" / "zarr.json").read_bytes() == b"{}"
    move_tree(url, xrootd.url(f"{name}/moved.zarr"))
    assert not xrootd.folder(f"{name}/s.zarr").exists()
    remove_tree(xrootd.url(f"{name}/moved.zarr"))
    remove_tree(xrootd.url(f"{name}/moved.zarr"))  # missing: nothing happens
    assert xrootd.folder(name).is_dir() and not xrootd.folder(f"{name}/moved.zarr").exists()
    with pytest.raises(EventFileError, match="not a valid root://HOST//path URL"):
        XRootDStore(f"root://127.0.0.1:{xrootd.port}//")


def _files_under(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def _link_inside(xrootd: XRootDServer, name: str) -> str:
    """ours.zarr/intensity becomes a link to the other store's intensity array (a folder)."""
    shutil.rmtree(xrootd.folder(f"{name}/ours.zarr/intensity"))
    link = xrootd.folder(f"{name}/ours.zarr/intensity")
    link.symlink_to(xrootd.folder(f"{name}/other.zarr/intensity"))
    return xrootd.url(f"{name}/ours.zarr")


def _relative_link_inside(xrootd: XRootDServer, name: str) -> str:
    shutil.rmtree(xrootd.folder(f"{name}/ours.zarr/intensity"))
    xrootd.folder(f"{name}/ours.zarr/intensity").symlink_to("../other.zarr/intensity")
    return xrootd.url(f"{name}/ours.zarr")


def _output_is_a_link_beside(xrootd: XRootDServer, name: str) -> str:
    """The output named is itself a link to the other store, in the same folder."""
    xrootd.folder(f"{name}/linked.zarr").symlink_to(xrootd.folder(f"{name}/other.zarr"))
    return xrootd.url(f"{name}/linked.zarr")


def _output_is_a_link_elsewhere(xrootd: XRootDServer, name: str) -> str:
    xrootd.folder(f"{name}-b").mkdir()
    xrootd.adopt(xrootd.folder(f"{name}-b"))
    xrootd.folder(f"{name}-b/linked.zarr").symlink_to(xrootd.folder(f"{name}/other.zarr"))
    return xrootd.url(f"{name}-b/linked.zarr")


def _dangling_link_inside(xrootd: XRootDServer, name: str) -> str:
    xrootd.folder(f"{name}/ours.zarr/stray").symlink_to(xrootd.folder(f"{name}/nowhere"))
    return xrootd.url(f"{name}/ours.zarr")


@pytest.mark.parametrize(
    "make_link",
    [
        _link_inside,
        _relative_link_inside,
        _output_is_a_link_beside,
        _output_is_a_link_elsewhere,
        _dangling_link_inside,
    ],
    ids=lambda f: f.__name__.strip("_"),
)
def test_overwrite_never_deletes_through_a_link(
    model: PublishedModel, xrootd: XRootDServer, source: str, plain: Any, name: str, make_link: Any
) -> None:
    """Issue 18, finding 4: ``--overwrite`` onto a root:// output that is, or holds, a symbolic
    link (made on the server's disk) deleted the files of the store the link pointed to.

    The other store and the old output survive: the command refuses in one line (or, were it
    to succeed, it replaced only the output, with a real folder)."""
    other = xrootd.url(f"{name}/other.zarr")
    ours = xrootd.url(f"{name}/ours.zarr")
    for out in (other, ours):
        assert run_cli(model, "-i", source, "-o", out).exit_code == 0
    target = make_link(xrootd, name)
    other_files = _files_under(xrootd.folder(f"{name}/other.zarr"))
    assert "intensity/c/0" in other_files
    before = on_disk(xrootd)
    result = run_cli(model, "-i", source, "-o", target, "--overwrite")
    assert _files_under(xrootd.folder(f"{name}/other.zarr")) == other_files
    assert "Traceback" not in result.output
    if result.exit_code == 0:  # replaced: a real folder, the new output
        written = xrootd.folder(target.rpartition("//reg/")[2])
        assert written.is_dir() and not written.is_symlink()
        assert_bit_identical(read_zarr(written), plain)
    else:
        lines = result.output.strip().splitlines()
        assert result.exit_code == 1 and len(lines) == 1, lines
        assert "refusing to replace" in lines[0], lines
        assert on_disk(xrootd) == before  # the old output as it was; nothing staged left


def test_a_failed_replacement_keeps_the_old_output(
    model: PublishedModel,
    xrootd: XRootDServer,
    source: str,
    name: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The old output is deleted only once the new one is in place: when the server refuses
    to rename the new output into place, the old one is still there, whole."""
    from XRootD import client

    ours = xrootd.url(f"{name}/ours.zarr")
    assert run_cli(model, "-i", source, "-o", ours).exit_code == 0
    old = _files_under(xrootd.folder(f"{name}/ours.zarr"))
    real_mv = client.FileSystem.mv

    def mv(self: Any, source: str, target: str, *args: Any, **kwargs: Any) -> Any:
        if ".partial-" in source:  # the new output's rename into place
            return real_mv(self, f"{source}-missing", target, *args, **kwargs)
        return real_mv(self, source, target, *args, **kwargs)

    monkeypatch.setattr(client.FileSystem, "mv", mv)
    result = run_cli(model, "-i", source, "-o", ours, "--overwrite")
    assert result.exit_code == 1, result.output
    assert len(result.output.strip().splitlines()) == 1, result.output
    assert _files_under(xrootd.folder(f"{name}/ours.zarr")) == old
    assert not [p for p in on_disk(xrootd) if ".partial-" in p or ".old-" in p]
