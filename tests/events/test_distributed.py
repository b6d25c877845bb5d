"""The Dask path on a real LocalCluster with worker processes: same numbers as the plain path."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from event_samples import REF, fast_backend, write_input

from modelstore import PublishedModel, published_model
from modelstore.cli import main
from modelstore.errors import ClusterError, EventFileError, InvalidInputError
from modelstore.events import evaluate_distributed, evaluate_file

distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def cluster() -> object:
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
    ) as cluster:
        yield cluster


@pytest.fixture(scope="module")
def model() -> PublishedModel:
    return published_model(REF, backend=fast_backend())


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rng = np.random.default_rng(11)
    n = 20_000
    sigma1 = rng.uniform(0.4, 1.82, n)
    sigma1[[5, 3001, 19_999]] = [np.nan, -1.0, np.inf]  # invalid inputs, in three blocks
    return write_input(tmp_path_factory.mktemp("in"), "zarr", sigma1, rng.uniform(2.05, 4.6, n))


def read_zarr(path: Path) -> dict[str, np.ndarray]:
    import zarr

    group = zarr.open_group(str(path), mode="r")
    return {name: group[name][:] for name in group.array_keys()}


def test_same_numbers_as_the_plain_path(
    cluster: object, model: PublishedModel, source: Path, tmp_path: Path
) -> None:
    plain = evaluate_file(model, source, tmp_path / "plain.zarr", chunk_size=3000)
    reports: list[tuple[int, int | None]] = []
    spread = evaluate_distributed(
        model,
        source,
        tmp_path / "dask.zarr",
        scheduler=cluster.scheduler_address,
        backend=model.backend,
        chunk_size=3000,  # 7 tasks, the last one short
        progress=lambda *a: reports.append(a),
    )
    assert (spread.events, spread.outside, spread.invalid, spread.backend) == (
        plain.events,
        plain.outside,
        plain.invalid,
        plain.backend,
    )
    assert spread.invalid == 3
    a, b = read_zarr(tmp_path / "plain.zarr"), read_zarr(tmp_path / "dask.zarr")
    assert sorted(a) == sorted(b) == ["intensity", "msq_Kp", "msq_piK"]
    for name in a:
        np.testing.assert_array_equal(a[name], b[name])
    assert np.isnan(b["intensity"]).sum() == spread.outside + spread.invalid
    assert spread.outside > 0
    import zarr

    attrs = zarr.open_group(str(tmp_path / "dask.zarr"), mode="r").attrs["modelstore"]
    assert (attrs["invalid_inputs"], attrs["outside_dalitz"]) == ("3", str(spread.outside))
    assert max(reports) == (20_000, 20_000) and len(reports) == 7

    # each worker process loaded the model itself, by registry location, ref and pinned digest
    def loaded() -> list[tuple[str, ...]]:
        from modelstore.events import distributed as module

        return sorted(module._MODELS)

    digest = model.registry.resolve(model.ref)[2]
    with distributed.Client(cluster.scheduler_address) as client:
        per_worker = client.run(loaded)
    assert len(per_worker) == 2
    for keys in per_worker.values():
        assert keys == [(model.registry.location, model.ref, digest, model.backend, True)]


def test_failure_on_a_worker_leaves_no_output(
    cluster: object, model: PublishedModel, source: Path, tmp_path: Path
) -> None:
    with pytest.raises(InvalidInputError, match="unknown parameters"):
        evaluate_distributed(
            model,
            source,
            tmp_path / "out.zarr",
            scheduler=cluster.scheduler_address,
            backend=model.backend,
            parameters={"no such parameter": 1.0},
        )
    assert list(tmp_path.iterdir()) == []


def test_zarr_only(model: PublishedModel, source: Path, tmp_path: Path) -> None:
    with pytest.raises(EventFileError, match="Dask path reads and writes zarr stores only"):
        evaluate_distributed(model, source, tmp_path / "out.parquet")
    csv = write_input(tmp_path, "csv", np.ones(2), np.ones(2))
    with pytest.raises(EventFileError, match="Dask path reads and writes zarr stores only"):
        evaluate_distributed(model, csv, tmp_path / "out.zarr")


def test_unreachable_scheduler(
    model: PublishedModel, source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("modelstore.events.distributed.CONNECT_TIMEOUT_S", 1)
    with pytest.raises(
        ClusterError, match="cannot reach the Dask scheduler at 'tcp://127.0.0.1:9'"
    ):
        evaluate_distributed(model, source, tmp_path / "out.zarr", scheduler="tcp://127.0.0.1:9")
    assert list(tmp_path.iterdir()) == []


def test_cli_dask_address(
    cluster: object, model: PublishedModel, source: Path, tmp_path: Path
) -> None:
    out = tmp_path / "cli.zarr"
    result = CliRunner().invoke(
        main,
        ["eval", REF, "-i", str(source), "-o", str(out), "--dask", cluster.scheduler_address,
         "--backend", model.backend, "--chunk-size", "5000"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "20000 events" in result.output
    expected = model.intensity(read_zarr(source)["msq_piK"], read_zarr(source)["msq_Kp"])
    np.testing.assert_array_equal(read_zarr(out)["intensity"], expected)


def test_cli_dask_local(model: PublishedModel, source: Path, tmp_path: Path) -> None:
    """``--dask local`` starts (and stops) its own cluster of worker processes."""
    out = tmp_path / "local.zarr"
    result = CliRunner().invoke(
        main,
        ["eval", REF, "-i", str(source), "-o", str(out), "--dask", "local", "--dask-workers", "2",
         "--backend", model.backend, "--chunk-size", "10000"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    expected = model.intensity(read_zarr(source)["msq_piK"], read_zarr(source)["msq_Kp"])
    np.testing.assert_array_equal(read_zarr(out)["intensity"], expected)
