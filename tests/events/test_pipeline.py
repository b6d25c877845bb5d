"""The streaming pipeline: reading, evaluating and writing overlap, the output does not change,
errors of the background threads surface as before, and the chunks in flight stay bounded."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest
from event_samples import read_table

from modelstore import PublishedModel
from modelstore.errors import EventFileError, InvalidInputError
from modelstore.events import evaluate_file, pipeline, writers
from modelstore.events.pipeline import DEFAULT_DEPTH, Drain, Prefetch

if TYPE_CHECKING:
    from collections.abc import Iterator

N_EVENTS = 1000


def write_zarr(path: Path, sigma1: np.ndarray, sigma2: np.ndarray, chunks: int = 128) -> Path:
    """A zarr input with σ1, σ2 and two carried columns, in zarr's default codec."""
    import zarr

    group = zarr.open_group(str(path), mode="w")
    columns = {
        "event": np.arange(len(sigma1), dtype=np.int64) * 7,
        "msq_piK": sigma1,
        "msq_Kp": sigma2,
        "weight": np.linspace(0, 1, len(sigma1), dtype=np.float32),
    }
    for name, values in columns.items():
        group.create_array(name, data=values, chunks=(chunks,))
    return path


def write_parquet(path: Path, sigma1: np.ndarray, sigma2: np.ndarray) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table(
        {"event": np.arange(len(sigma1), dtype=np.int64), "msq_piK": sigma1, "msq_Kp": sigma2}
    )
    pq.write_table(table, path, row_group_size=300)
    return path


def listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


# -- the output does not change ----------------------------------------------------------------


@pytest.mark.parametrize("chunk_size", [1, 7, 128, 333, 1000, 4096])
@pytest.mark.parametrize("fmt", ["zarr", "parquet"])
def test_output_is_the_in_memory_evaluation_for_any_chunk_size(
    fmt: str, chunk_size: int, tmp_path: Path, model: PublishedModel, sample: tuple
) -> None:
    sigma1, sigma2 = sample
    if fmt == "zarr":
        source = write_zarr(tmp_path / "in.zarr", sigma1, sigma2)
        expected_names = {"event", "msq_piK", "msq_Kp", "weight", "intensity"}
    else:
        source = write_parquet(tmp_path / "in.parquet", sigma1, sigma2)
        expected_names = {"event", "msq_piK", "msq_Kp", "intensity"}
    target = tmp_path / f"out.{fmt}"
    result = evaluate_file(model, source, target, chunk_size=chunk_size)
    out = read_table(target, fmt)
    assert set(out) == expected_names
    assert result.events == N_EVENTS
    expected = np.asarray(model.intensity(sigma1, sigma2))
    np.testing.assert_array_equal(out["intensity"], expected)  # NaN where NaN, bit for bit
    assert out["intensity"].dtype == np.float64
    np.testing.assert_array_equal(out["msq_piK"], sigma1)
    np.testing.assert_array_equal(out["msq_Kp"], sigma2)
    assert out["event"].dtype == np.int64
    np.testing.assert_array_equal(out["event"], read_table(source, fmt)["event"])
    if fmt == "zarr":
        assert out["weight"].dtype == np.float32
        np.testing.assert_array_equal(out["weight"], read_table(source, fmt)["weight"])
    assert result.outside == int(np.count_nonzero(np.isnan(expected)))


def test_zarr_output_chunks_follow_the_evaluation_and_compress(
    tmp_path: Path, model: PublishedModel, sample: tuple
) -> None:
    import zarr

    source = write_zarr(tmp_path / "in.zarr", *sample)
    evaluate_file(model, source, tmp_path / "out.zarr", chunk_size=300)
    array = zarr.open_group(str(tmp_path / "out.zarr"), mode="r")["intensity"]
    assert array.chunks == (300,)
    (codec,) = array.compressors
    assert (codec.cname.value, codec.clevel, codec.shuffle.value) == ("lz4", 1, "shuffle")


# -- errors in the background threads ----------------------------------------------------------


def test_a_reader_error_surfaces_and_leaves_no_output(
    tmp_path: Path, model: PublishedModel, sample: tuple
) -> None:
    source = write_zarr(tmp_path / "in.zarr", *sample, chunks=100)
    (source / "msq_Kp" / "c" / "6").write_bytes(b"not a compressed chunk")  # events 600-699
    with pytest.raises(EventFileError, match=r"cannot read events after event 600"):
        evaluate_file(model, source, tmp_path / "out.zarr", chunk_size=100)
    assert listing(tmp_path) == ["in.zarr"]


@pytest.mark.parametrize("fmt", ["zarr", "parquet", "npz"])
def test_a_writer_error_surfaces_and_leaves_no_output(
    fmt: str, tmp_path: Path, model: PublishedModel, sample: tuple, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = write_zarr(tmp_path / "in.zarr", *sample)
    cls = writers.WRITERS[fmt]
    original = cls._write
    calls = []

    def failing(self: writers.EventWriter, arrays: tuple[np.ndarray, ...]) -> None:
        calls.append(len(arrays[0]))
        if len(calls) == 3:
            raise OSError(28, "No space left on device")
        original(self, arrays)

    monkeypatch.setattr(cls, "_write", failing)
    with pytest.raises(EventFileError, match=r"out\.\w+: cannot write \(No space left on device\)"):
        evaluate_file(model, source, tmp_path / f"out.{fmt}", chunk_size=100)
    assert len(calls) == 3  # nothing is written after the failure
    assert listing(tmp_path) == ["in.zarr"]


def test_an_evaluation_error_stops_both_threads(
    tmp_path: Path, model: PublishedModel, sample: tuple, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = write_zarr(tmp_path / "in.zarr", *sample)
    seen = []

    def failing(sigma1: np.ndarray, sigma2: np.ndarray, **_: object) -> np.ndarray:
        seen.append(len(sigma1))
        if len(seen) == 4:
            msg = "evaluator failed"
            raise InvalidInputError(msg)
        return np.zeros_like(sigma1)

    monkeypatch.setattr(model, "intensity", failing)
    before = set(threading.enumerate())
    with pytest.raises(InvalidInputError, match="evaluator failed"):
        evaluate_file(model, source, tmp_path / "out.zarr", chunk_size=100)
    assert listing(tmp_path) == ["in.zarr"]
    assert not [t for t in set(threading.enumerate()) - before if t.name.startswith("modelstore")]


# -- bounded memory ----------------------------------------------------------------------------


def _wait_until(condition: object, limit: float = 10.0) -> None:
    deadline = time.monotonic() + limit
    while not condition() and time.monotonic() < deadline:  # type: ignore[operator]
        time.sleep(0.005)


def test_prefetch_reads_at_most_depth_items_ahead_and_closes_its_source() -> None:
    produced: list[int] = []
    closed = threading.Event()

    def source() -> Iterator[int]:
        try:
            for i in range(100):
                produced.append(i)
                yield i
        finally:
            closed.set()

    consumed = 0
    with Prefetch(source(), depth=3) as items:
        for _ in items:
            consumed += 1
            if consumed == 5:
                _wait_until(lambda: items.in_flight == 3)
                time.sleep(0.05)  # room for a producer that would not stop
                # three queued, and at most one more held by the blocked producer
                assert consumed + 3 <= len(produced) <= consumed + 4
                break
    assert closed.is_set()  # leaving early closed the generator
    assert len(produced) <= consumed + 4  # and nothing more was read


def test_prefetch_raises_the_source_error_after_the_items_before_it() -> None:
    def source() -> Iterator[int]:
        yield 1
        yield 2
        msg = "bad chunk"
        raise EventFileError(msg)

    got = []
    with Prefetch(source()) as items, pytest.raises(EventFileError, match="bad chunk"):
        got.extend(items)
    assert got == [1, 2]


def test_prefetch_raises_an_error_of_the_source_s_first_step() -> None:
    class Broken:
        def __iter__(self) -> Iterator[int]:
            msg = "cannot open"
            raise EventFileError(msg)

    with Prefetch(Broken()) as items, pytest.raises(EventFileError, match="cannot open"):
        list(items)


def test_drain_writes_in_order_and_bounds_the_queue() -> None:
    written: list[int] = []
    gate = threading.Event()

    def write(item: int) -> None:
        gate.wait()
        written.append(item)

    with Drain(write, depth=2) as drain:
        for i in range(3):  # one held by the blocked writer, two queued
            drain.put(i)
        _wait_until(lambda: drain.in_flight == 2)
        assert drain.in_flight == 2
        blocked = threading.Thread(target=drain.put, args=(3,), daemon=True)
        blocked.start()
        blocked.join(0.05)
        assert blocked.is_alive()  # a fourth waits for room
        gate.set()
        blocked.join(10)
        for i in range(4, 10):
            drain.put(i)
        drain.finish()
    assert written == list(range(10))


def test_drain_raises_the_write_error_and_writes_nothing_more() -> None:
    written: list[int] = []

    def write(item: int) -> None:
        if item == 2:
            raise EventFileError("disk full")
        written.append(item)

    def run() -> None:
        with Drain(write) as drain:
            for i in range(50):
                drain.put(i)
            drain.finish()

    with pytest.raises(EventFileError, match="disk full"):
        run()
    assert written == [0, 1]


def test_depth_must_be_positive() -> None:
    with pytest.raises(InvalidInputError, match="depth must be positive"):
        Drain(lambda _: None, depth=0)


def test_chunks_in_flight_are_bounded_in_evaluate_file(
    tmp_path: Path, model: PublishedModel, sample: tuple, monkeypatch: pytest.MonkeyPatch
) -> None:
    """However fast the reader, at most a fixed number of chunks are read but not yet written."""
    source = write_zarr(tmp_path / "in.zarr", *sample)
    read = written = 0
    most = 0
    original_write = writers.ZarrWriter._write
    original_chunks = Prefetch.__init__

    def counting_write(self: writers.EventWriter, arrays: tuple[np.ndarray, ...]) -> None:
        nonlocal written, most
        time.sleep(0.002)  # a slow writer, so that the reader runs ahead
        original_write(self, arrays)
        most = max(most, read - written)
        written += 1

    def counting_init(self: Prefetch, source: object, *args: object, **kwargs: object) -> None:
        def counted() -> Iterator[object]:
            nonlocal read
            for item in source:  # type: ignore[attr-defined]
                read += 1
                yield item

        original_chunks(self, counted(), *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(writers.ZarrWriter, "_write", counting_write)
    monkeypatch.setattr(pipeline.Prefetch, "__init__", counting_init)
    evaluate_file(model, source, tmp_path / "out.zarr", chunk_size=10)
    assert read == written == N_EVENTS // 10
    # queued for evaluation, being evaluated, queued for writing, being written, one read ahead
    assert 1 <= most <= 2 * DEFAULT_DEPTH + 3


@pytest.mark.parametrize("pre_buffer", [False, True])
def test_parquet_reading_holds_a_few_row_groups_whatever_the_file_size(
    tmp_path: Path, pre_buffer: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Arrow memory while reading stays near one row group (not the file read so far)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from modelstore.events import open_reader

    rows, groups = 20_000, 50
    path = tmp_path / "big.parquet"
    values = np.random.default_rng(3).random(rows)
    schema = pa.schema([("msq_piK", pa.float64()), ("msq_Kp", pa.float64())])
    with pq.ParquetWriter(path, schema, use_dictionary=False, compression="none") as writer:
        for _ in range(groups):
            writer.write_table(pa.Table.from_arrays([values, values], schema=schema))
    if pre_buffer:  # the reader's choice matters: pre-buffering keeps everything read
        original = pq.ParquetFile.__init__
        monkeypatch.setattr(
            pq.ParquetFile,
            "__init__",
            lambda self, *a, **k: original(self, *a, **{**k, "pre_buffer": True}),
        )
    row_group = rows * 2 * 8
    most = 0
    with open_reader(path) as reader:
        base = pa.total_allocated_bytes()
        for _ in reader.chunks(rows):
            most = max(most, pa.total_allocated_bytes() - base)
    if pre_buffer:
        assert most > 10 * row_group
    else:
        assert most <= 4 * row_group


def test_background_fsync_ends_before_the_staged_output_is_moved_or_deleted(
    tmp_path: Path,
) -> None:
    from modelstore.events.staging import Staged

    for finish in ("commit", "abort"):
        staged = Staged(tmp_path / f"out-{finish}.zarr", directory=True)
        files = []
        for i in range(20):
            path = staged.path / f"{i}"
            path.write_bytes(b"x" * 1000)
            files.append(path)
            staged.sync_soon([path, staged.path / "missing"])  # a missing file is skipped
        getattr(staged, finish)()
        assert not [t for t in threading.enumerate() if t.name.startswith("modelstore-fsync")]
        staged.sync_soon(files)  # after the end: nothing happens
        assert not [t for t in threading.enumerate() if t.name.startswith("modelstore-fsync")]
    assert listing(tmp_path) == ["out-commit.zarr"]
    assert len(listing(tmp_path / "out-commit.zarr")) == 20
