"""eval on remote zarr stores: s3:// in and out, plain and on Dask, against moto on loopback.

The workers of a real LocalCluster (processes) open the stores themselves through the
environment's endpoint and credentials: nothing is shared through the file system but the
model cache. Every result is compared bit for bit with the plain local evaluation.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import s3_server
from click.testing import CliRunner
from event_samples import REF, write_input
from s3_server import create_bucket, s3_environment

from modelstore import PublishedModel, published_model
from modelstore.cli import main
from modelstore.errors import EventFileError, InvalidInputError
from modelstore.events import evaluate_distributed, evaluate_file
from modelstore.events.locations import EventURL, parse_location

distributed = pytest.importorskip("distributed")
pytest.importorskip("s3fs")
pytest.importorskip("moto")

s3_endpoint = s3_server.s3_endpoint  # the session's moto server, a fixture
N_EVENTS = 6000
CHUNK = 2000


@pytest.fixture(scope="module")
def s3_env(s3_endpoint: str, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The S3 variables and a trusted publisher key, set before any worker process starts."""
    from modelstore.trust.signing import generate_keypair

    folder = tmp_path_factory.mktemp("s3env")
    _, public, _ = generate_keypair(folder / "publisher.key")
    mp = pytest.MonkeyPatch()
    for name, value in s3_environment(s3_endpoint, folder).items():
        mp.setenv(name, value)
    mp.setenv("MODELSTORE_TRUSTED_KEYS", str(public))
    yield folder / "publisher.key"
    mp.undo()


@pytest.fixture(scope="module")
def bucket(s3_env: Path, s3_endpoint: str) -> str:
    return create_bucket(s3_endpoint, "events")


@pytest.fixture(scope="module")
def fs(s3_env: Path) -> Any:
    """s3fs itself (not modelstore) to put inputs and inspect what was written."""
    import s3fs

    return s3fs.S3FileSystem(skip_instance_cache=True)


@pytest.fixture(scope="module")
def cluster(s3_env: Path) -> Any:
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
    ) as cluster:
        yield cluster


@pytest.fixture(scope="module")
def local_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rng = np.random.default_rng(13)
    sigma1 = rng.uniform(0.4, 1.82, N_EVENTS)
    sigma1[[7, 4001]] = [np.nan, -1.0]  # invalid inputs
    return write_input(
        tmp_path_factory.mktemp("in"), "zarr", sigma1, rng.uniform(2.05, 4.6, N_EVENTS)
    )


@pytest.fixture(scope="module")
def source(local_source: Path, bucket: str, fs: Any) -> str:
    """The local input, copied into the bucket with s3fs."""
    url = f"s3://{bucket}/in.zarr"
    fs.put(str(local_source), url.removeprefix("s3://"), recursive=True)
    return url


def read_zarr(where: str | Path) -> dict[str, np.ndarray]:
    """Every array of a zarr group, read with zarr itself (FsspecStore for a URL)."""
    import zarr
    from zarr.storage import FsspecStore

    store: Any = (
        FsspecStore.from_url(where, read_only=True)
        if str(where).startswith("s3://")
        else str(where)
    )
    group = zarr.open_group(store, mode="r")
    return {name: group[name][:] for name in group.array_keys()}


@pytest.fixture(scope="module")
def plain(
    model: PublishedModel, local_source: Path, tmp_path_factory: pytest.TempPathFactory
) -> Any:
    """The plain local evaluation everything is compared with."""
    out = tmp_path_factory.mktemp("plain") / "plain.zarr"
    evaluate_file(model, local_source, out, chunk_size=CHUNK)
    return read_zarr(out)


def assert_bit_identical(got: dict[str, np.ndarray], expected: dict[str, np.ndarray]) -> None:
    assert sorted(got) == sorted(expected) == ["intensity", "msq_Kp", "msq_piK"]
    for name, values in expected.items():
        assert got[name].dtype == values.dtype == np.float64
        np.testing.assert_array_equal(got[name].view(np.uint64), values.view(np.uint64))


def listing(fs: Any, bucket: str) -> list[str]:
    fs.invalidate_cache()
    return sorted(p.removeprefix(f"{bucket}/") for p in fs.find(bucket))


def top_level(fs: Any, bucket: str) -> set[str]:
    return {p.split("/")[0] for p in listing(fs, bucket)}


def run_cli(*args: str) -> Any:
    return CliRunner().invoke(main, ["eval", REF, *args])


def test_plain_s3_to_s3(
    model: PublishedModel, source: str, plain: Any, bucket: str, fs: Any
) -> None:
    out = f"s3://{bucket}/plain-remote.zarr"
    result = evaluate_file(model, source, out, chunk_size=CHUNK)
    assert (result.events, result.invalid) == (N_EVENTS, 2)
    assert str(result.input) == source and str(result.output) == out
    assert_bit_identical(read_zarr(out), plain)
    import zarr
    from zarr.storage import FsspecStore

    attrs = zarr.open_group(FsspecStore.from_url(out, read_only=True), mode="r").attrs
    assert attrs["modelstore"]["input"] == source
    assert attrs["modelstore"]["invalid_inputs"] == "2"
    assert not [p for p in listing(fs, bucket) if ".partial-" in p]  # the staged prefix is gone


def test_plain_local_to_s3_cli(
    model: PublishedModel, local_source: Path, plain: Any, bucket: str
) -> None:
    out = f"s3://{bucket}/from-local.zarr"
    result = run_cli("-i", str(local_source), "-o", out, "--backend", model.backend,
                     "--chunk-size", str(CHUNK))  # fmt: skip
    assert result.exit_code == 0, result.output
    assert f"{N_EVENTS} events" in result.output and out in result.output
    assert_bit_identical(read_zarr(out), plain)


def test_dask_address_s3_to_s3(
    cluster: Any, model: PublishedModel, source: str, plain: Any, bucket: str, fs: Any
) -> None:
    out = f"s3://{bucket}/dask-address.zarr"
    result = run_cli("-i", source, "-o", out, "--dask", cluster.scheduler_address,
                     "--backend", model.backend, "--chunk-size", str(CHUNK))  # fmt: skip
    assert result.exit_code == 0, result.output
    assert f"{N_EVENTS} events" in result.output
    assert_bit_identical(read_zarr(out), plain)
    assert not [p for p in listing(fs, bucket) if ".partial-" in p]


def test_dask_local_s3_to_s3(model: PublishedModel, source: str, plain: Any, bucket: str) -> None:
    """``--dask local`` starts its own worker processes; they inherit the S3 variables."""
    out = f"s3://{bucket}/dask-local.zarr"
    result = run_cli("-i", source, "-o", out, "--dask", "local", "--dask-workers", "2",
                     "--backend", model.backend, "--chunk-size", str(CHUNK))  # fmt: skip
    assert result.exit_code == 0, result.output
    assert_bit_identical(read_zarr(out), plain)


def test_remote_registry_workers_load_and_verify(
    cluster: Any,
    model: PublishedModel,
    s3_env: Path,
    source: str,
    plain: Any,
    bucket: str,
    fs: Any,
    tmp_path: Path,
) -> None:
    """A signed registry in the bucket: each worker loads the model from it, verified."""
    from modelstore.registry import Registry, embedded_registry_root
    from modelstore.trust.signing import load_private_key

    embedded = Registry(embedded_registry_root())
    manifest = embedded.manifest(REF)
    blobs = {f.role: embedded.read_file(manifest, f.role) for f in manifest.files}
    folder = tmp_path / "registry"
    Registry(folder).publish(manifest, blobs, signing_keys=[load_private_key(s3_env)])
    fs.put(str(folder), f"{bucket}/registry", recursive=True)  # served by the S3 server
    url = f"s3://{bucket}/registry"
    remote = published_model(REF, backend=model.backend, registry=url)
    out = f"s3://{bucket}/dask-remote-registry.zarr"
    evaluate_distributed(
        remote, source, out, scheduler=cluster.scheduler_address, backend=remote.backend,
        chunk_size=CHUNK,
    )  # fmt: skip
    assert_bit_identical(read_zarr(out), plain)

    def loaded() -> list[tuple[str, ...]]:
        from modelstore.events import distributed as module

        return sorted(module._MODELS)

    digest = remote.registry.resolve(REF)[2]
    with distributed.Client(cluster.scheduler_address) as client:
        per_worker = client.run(loaded)
    assert len(per_worker) == 2
    for keys in per_worker.values():  # loaded by the registry's URL and the client's digest
        assert (url, REF, digest, remote.backend, True) in keys


def test_failed_dask_run_leaves_nothing(
    cluster: Any, model: PublishedModel, source: str, bucket: str, fs: Any
) -> None:
    before = listing(fs, bucket)
    with pytest.raises(InvalidInputError, match="unknown parameters"):
        evaluate_distributed(
            model, source, f"s3://{bucket}/failed.zarr", scheduler=cluster.scheduler_address,
            backend=model.backend, parameters={"no such parameter": 1.0},
        )  # fmt: skip
    assert listing(fs, bucket) == before


@pytest.mark.parametrize(
    ("make_args", "message"),
    [
        (lambda b, s: ["-i", "nosuch://x/in.zarr", "-o", f"s3://{b}/o.zarr"], "unknown URL scheme"),
        (lambda b, s: ["-i", "s3://no-such-bucket-4f1e/in.zarr", "-o", f"s3://{b}/o.zarr"],
         "s3://no-such-bucket-4f1e/in.zarr: no such zarr store"),
        (lambda b, s: ["-i", f"s3://{b}/missing.zarr", "-o", f"s3://{b}/o.zarr"],
         "/missing.zarr: no such zarr store"),
        (lambda b, s: ["-i", s, "-o", "s3://no-such-bucket-4f1e/o.zarr"],
         "no bucket 'no-such-bucket-4f1e'"),
        (lambda b, s: ["-i", s, "-o", f"s3://{b}/o.parquet"], "only zarr stores"),
        (lambda b, s: ["-i", s, "-o", f"{s}/inside.zarr"], "sit inside the input"),
        (lambda b, s: ["-i", s, "-o", s], "would overwrite the input"),
        (lambda b, s: ["-i", s, "-o", "s3://"], "names no bucket"),
        (lambda b, s: ["-i", s, "-o", f"s3://{b}", "--output-format", "zarr"],
         "name a store inside the bucket"),
    ],
)  # fmt: skip
@pytest.mark.parametrize("dask", [False, True])
def test_bad_locations_are_one_line(
    make_args: Any, message: str, dask: bool, source: str, bucket: str, fs: Any
) -> None:
    before = listing(fs, bucket)
    extra = ["--dask", "tcp://127.0.0.1:9"] if dask else []  # refused before any connection
    result = run_cli(*make_args(bucket, source), *extra)
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and message in lines[0], lines
    assert listing(fs, bucket) == before


def test_overwrite_only_what_modelstore_wrote(
    model: PublishedModel, source: str, plain: Any, bucket: str, fs: Any
) -> None:
    import zarr
    from zarr.storage import FsspecStore

    foreign = f"s3://{bucket}/foreign.zarr"
    group = zarr.open_group(FsspecStore.from_url(foreign), mode="w")
    group.create_array("intensity", data=np.ones(3))
    group.attrs["owner"] = "someone else"
    before = listing(fs, bucket)
    common = ("-i", source, "--backend", model.backend, "--chunk-size", str(CHUNK))
    result = run_cli(*common, "-o", foreign, "--overwrite")
    assert result.exit_code == 1 and "modelstore did not write" in result.output
    assert listing(fs, bucket) == before
    assert read_zarr(foreign)["intensity"].tolist() == [1.0, 1.0, 1.0]

    ours = f"s3://{bucket}/ours.zarr"
    assert run_cli(*common, "-o", ours).exit_code == 0
    again = run_cli(*common, "-o", ours)
    assert again.exit_code == 1 and "exists already" in again.output
    fs.pipe(f"{bucket}/ours.zarr/intensity/c/0", b"garbage")  # replaced wholesale below
    replaced = run_cli(*common, "-o", ours, "--overwrite")
    assert replaced.exit_code == 0, replaced.output
    assert_bit_identical(read_zarr(ours), plain)
    assert not [p for p in listing(fs, bucket) if ".partial-" in p]


def test_zarr_v2_input_without_suffix(
    model: PublishedModel, local_source: Path, plain: Any, bucket: str
) -> None:
    """A v2 group written by zarr itself, under a name without .zarr: found by its .zgroup."""
    import zarr
    from zarr.storage import FsspecStore

    url = f"s3://{bucket}/v2-events"
    group = zarr.open_group(FsspecStore.from_url(url), mode="w", zarr_format=2)
    source = zarr.open_group(str(local_source), mode="r")
    for name in ("msq_piK", "msq_Kp"):
        group.create_array(name, data=source[name][:], chunks=(CHUNK,))
    out = f"s3://{bucket}/from-v2.zarr"
    evaluate_file(model, url, out, chunk_size=CHUNK)
    assert_bit_identical(read_zarr(out), plain)


def test_output_without_its_group_is_not_read(
    model: PublishedModel, source: str, bucket: str, fs: Any
) -> None:
    """A commit cut short leaves arrays without the group zarr.json: never read as complete."""
    out = f"s3://{bucket}/cut.zarr"
    evaluate_file(model, source, out, chunk_size=CHUNK)
    fs.rm(f"{bucket}/cut.zarr/zarr.json")
    with pytest.raises(EventFileError, match="no zarr.json or .zgroup: .* did not complete"):
        evaluate_file(model, out, f"s3://{bucket}/from-cut.zarr")
    with pytest.raises(EventFileError, match="did not write"):  # nor replaced by --overwrite
        evaluate_file(model, source, out, overwrite=True)


def test_any_fsspec_url_memory(model: PublishedModel, local_source: Path, plain: Any) -> None:
    """The same code path for any fsspec URL: an in-memory filesystem, plain eval."""
    import zarr

    evaluate_file(model, local_source, "memory://events/in.zarr", chunk_size=CHUNK)
    result = evaluate_file(
        model, "memory://events/in.zarr", "memory://runs/out.zarr", chunk_size=CHUNK
    )
    assert str(result.output) == "memory://runs/out.zarr"
    group = zarr.open_group("memory://runs/out.zarr", mode="r")
    assert_bit_identical({name: group[name][:] for name in group.array_keys()}, plain)
    with pytest.raises(EventFileError, match="sit inside the input"):
        evaluate_file(model, "memory://events/in.zarr", "memory://events/in.zarr/x.zarr")


def test_parse_location() -> None:
    assert parse_location("s3://Bucket/a.zarr/") == EventURL("s3://Bucket/a.zarr")
    assert parse_location("S3://b/a.zarr").protocol == "s3"
    assert parse_location("root://eos.example//data/a.zarr").protocol == "root"
    assert parse_location("file:///tmp/a.zarr") == Path("/tmp/a.zarr")
    assert parse_location("runs/a.zarr") == Path("runs/a.zarr")
    for bad, message in [("s3://b/a\x00.zarr", "NUL byte"), ("nope://b/a.zarr", "unknown URL"),
                         ("", "empty path"), ("s3:///", "names no bucket")]:  # fmt: skip
        with pytest.raises(EventFileError, match=message):
            parse_location(bad)


def test_a_long_lived_worker_keeps_the_groups_of_a_few_runs_only(
    model: PublishedModel, local_source: Path
) -> None:
    """Groups are reused within one run, never across runs, and only the last few are kept."""
    from modelstore.events import distributed

    evaluate_file(model, local_source, "memory://kept/in.zarr", chunk_size=CHUNK)
    distributed._GROUPS.clear()
    first = distributed._worker_group("run-0", "memory://kept/in.zarr", writable=False)
    assert distributed._worker_group("run-0", "memory://kept/in.zarr", writable=False) is first
    assert distributed._worker_group("run-1", "memory://kept/in.zarr", writable=False) is not first
    for run in range(50):
        distributed._worker_group(f"run-{run}", "memory://kept/in.zarr", writable=False)
    assert len(distributed._GROUPS) == distributed._GROUPS_KEPT
    assert ("run-49", "memory://kept/in.zarr", False) in distributed._GROUPS
    assert ("run-0", "memory://kept/in.zarr", False) not in distributed._GROUPS
