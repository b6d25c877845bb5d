"""Event-file formats, readers and writers: detection, round trips, and clear errors."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest
from event_samples import write_input, write_root

from modelstore.errors import EventFileError, ModelstoreError
from modelstore.events import (
    DEFAULT_COLUMNS,
    INPUT_FORMATS,
    OUTPUT_FORMATS,
    Columns,
    detect_format,
    open_reader,
    open_writer,
)


def read_all(
    path: Path, columns: Columns = DEFAULT_COLUMNS, fmt: str | None = None, chunk: int = 7
) -> tuple:
    with open_reader(path, fmt, columns) as reader:
        chunks = list(reader.chunks(chunk))
        n_events = reader.n_events
    sigma1 = np.concatenate([c[0] for c in chunks]) if chunks else np.empty(0)
    sigma2 = np.concatenate([c[1] for c in chunks]) if chunks else np.empty(0)
    assert all(len(c[0]) == chunk for c in chunks[:-1])
    return sigma1, sigma2, n_events


# -- format detection ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        ("a.root", "root"), ("A.ROOT", "root"), ("x/y.zarr", "zarr"), ("b.npz", "npz"),
        ("c.npy", "npy"), ("d.csv", "csv"), ("d.csv.gz", "csv"), ("e.parquet", "parquet"),
        ("e.pq", "parquet"),
    ],
)  # fmt: skip
def test_format_from_name(name: str, fmt: str) -> None:
    assert detect_format(name) == fmt


def test_format_given_overrides_name() -> None:
    assert detect_format("events.dat", "csv") == "csv"
    assert detect_format("events.csv", "parquet") == "parquet"


def test_zarr_folder_recognised_by_content(tmp_path: Path) -> None:
    import zarr

    zarr.open_group(str(tmp_path / "store"), mode="w")
    assert detect_format(tmp_path / "store") == "zarr"


@pytest.mark.parametrize(
    ("name", "given", "role", "fragment"),
    [
        ("events.dat", None, "input", "cannot tell the input format"),
        ("events.dat", None, "output", "cannot tell the output format"),
        ("events.npy", None, "output", "npy is not supported as an output format"),
        ("events.csv", "hdf5", "input", "'hdf5' is not an input format"),
    ],
)
def test_format_errors_name_the_file(
    name: str, given: str | None, role: str, fragment: str
) -> None:
    with pytest.raises(EventFileError, match=fragment) as info:
        detect_format(name, given, role)
    assert name in str(info.value)
    assert isinstance(info.value, ModelstoreError) and isinstance(info.value, ValueError)


# -- readers: every input format gives the same events ----------------------------------------


@pytest.mark.parametrize("fmt", INPUT_FORMATS)
def test_every_input_format_reads_the_same_events(
    fmt: str, tmp_path: Path, sample: tuple[np.ndarray, np.ndarray]
) -> None:
    sigma1, sigma2 = sample
    path = write_input(tmp_path, fmt, sigma1, sigma2)
    got1, got2, n_events = read_all(path)
    np.testing.assert_array_equal(got1, sigma1)
    np.testing.assert_array_equal(got2, sigma2)
    assert n_events in (len(sigma1), None)  # csv does not announce its length
    assert got1.dtype == np.float64


def test_root_rntuple_is_read_too(tmp_path: Path, sample: tuple[np.ndarray, np.ndarray]) -> None:
    import uproot

    sigma1, sigma2 = sample
    with uproot.recreate(tmp_path / "n.root") as file:
        file["Lc2ppiK"] = {"msq_piK": sigma1, "msq_Kp": sigma2}  # uproot 5.7 writes an RNTuple
    got1, got2, _ = read_all(tmp_path / "n.root")
    np.testing.assert_array_equal(got1, sigma1)
    np.testing.assert_array_equal(got2, sigma2)


def test_configurable_tree_and_branches(tmp_path: Path) -> None:
    import uproot

    with uproot.recreate(tmp_path / "e.root") as file:
        file.mktree("Events", {"m2_kpi": np.float32, "m2_pk": np.int32})
        file["Events"].extend(
            {"m2_kpi": np.array([1.5, 0.5], np.float32), "m2_pk": np.array([3, 4], np.int32)}
        )
    got1, got2, _ = read_all(
        tmp_path / "e.root", Columns(sigma1="m2_kpi", sigma2="m2_pk", tree="Events")
    )
    np.testing.assert_array_equal(got1, [1.5, 0.5])
    np.testing.assert_array_equal(got2, [3.0, 4.0])


def test_structured_npy_uses_field_names(tmp_path: Path) -> None:
    data = np.zeros(3, dtype=[("msq_Kp", "f8"), ("msq_piK", "f4")])
    data["msq_piK"] = [1.0, 1.25, 1.5]
    data["msq_Kp"] = [3.0, 3.5, 4.0]
    np.save(tmp_path / "s.npy", data)
    got1, got2, _ = read_all(tmp_path / "s.npy")
    np.testing.assert_array_equal(got1, [1.0, 1.25, 1.5])
    np.testing.assert_array_equal(got2, [3.0, 3.5, 4.0])


def test_chunks_are_bounded(tmp_path: Path, sample: tuple[np.ndarray, np.ndarray]) -> None:
    path = write_input(tmp_path, "parquet", *sample)
    with open_reader(path) as reader:
        sizes = [len(s1) for s1, _ in reader.chunks(64)]
    assert max(sizes) == 64 and sum(sizes) == len(sample[0])


# -- writers: every output format round-trips --------------------------------------------------


def _read_with_format_library(
    path: Path, fmt: str, names: tuple[str, ...]
) -> dict[str, np.ndarray]:
    if fmt == "zarr":
        import zarr

        group = zarr.open_group(str(path), mode="r")
        return {n: group[n][:] for n in names}
    if fmt == "npz":
        with np.load(path) as archive:
            return {n: archive[n] for n in names}
    if fmt == "csv":
        import pandas as pd

        frame = pd.read_csv(path)
        return {n: frame[n].to_numpy() for n in names}
    if fmt == "root":
        import uproot

        with uproot.open(path) as file:
            return file["events"].arrays(list(names), library="np")
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    return {n: table[n].to_numpy() for n in names}


@pytest.mark.parametrize("fmt", OUTPUT_FORMATS)
def test_every_output_format_round_trips(fmt: str, tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    # exact round trip of arbitrary doubles, NaN and extreme magnitudes included
    arrays = [rng.normal(size=50) * 10.0 ** rng.integers(-300, 300, 50) for _ in range(3)]
    arrays[2][::5] = np.nan
    columns = Columns()
    path = tmp_path / f"out.{fmt}"
    with open_writer(path, columns=columns, chunk_size=16) as writer:
        for start in range(0, 50, 16):
            writer.write(*(a[start : start + 16] for a in arrays))
    stored = _read_with_format_library(path, fmt, columns.outputs)
    for name, expected in zip(columns.outputs, arrays, strict=False):
        np.testing.assert_array_equal(stored[name], expected)
    # and modelstore reads its own output back as an input, intensity column included
    got1, got2, _ = read_all(path, Columns(tree="events"))
    np.testing.assert_array_equal(got1, arrays[0])
    np.testing.assert_array_equal(got2, arrays[1])
    as_input = Columns(sigma1="intensity", sigma2="msq_Kp", intensity="unused", tree="events")
    np.testing.assert_array_equal(read_all(path, as_input)[0], arrays[2])


def test_compressed_csv_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "out.csv.gz"
    with open_writer(path) as writer:
        writer.write(np.array([1.0, 2.0]), np.array([3.0, 4.0]), np.array([np.nan, 5.5]))
    assert path.read_bytes()[:2] == b"\x1f\x8b"
    got1, _, _ = read_all(path)
    np.testing.assert_array_equal(got1, [1.0, 2.0])
    np.testing.assert_array_equal(
        read_all(path, Columns(sigma1="intensity", sigma2="msq_Kp", intensity="x"))[0],
        [np.nan, 5.5],
    )


def test_writer_with_announced_length_refuses_a_short_output(tmp_path: Path) -> None:
    path = tmp_path / "out.zarr"
    with (
        pytest.raises(EventFileError, match="1 events written, 2 announced"),
        open_writer(path, n_events=2) as writer,
    ):
        writer.write(np.array([1.0]), np.array([3.0]), np.array([9.0]))
    assert not path.exists()
    assert list(tmp_path.iterdir()) == []


def test_writer_aborts_on_exception_and_leaves_nothing(tmp_path: Path) -> None:
    for fmt in OUTPUT_FORMATS:
        path = tmp_path / f"out.{fmt}"
        with pytest.raises(RuntimeError), open_writer(path) as writer:  # noqa: PT012
            writer.write(np.array([1.0]), np.array([3.0]), np.array([9.0]))
            raise RuntimeError
        assert not path.exists()
    assert list(tmp_path.iterdir()) == []


# -- bad input: one clear error naming the file and the problem -------------------------------


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(EventFileError, match="no such file") as info:
        open_reader(tmp_path / "absent.root")
    assert "absent.root" in str(info.value)


@pytest.mark.parametrize("fmt", ["root", "npz", "npy", "csv", "parquet", "zarr"])
def test_unreadable_file(fmt: str, tmp_path: Path) -> None:
    path = tmp_path / f"junk.{fmt}"
    if fmt == "zarr":
        path.mkdir()
        (path / "zarr.json").write_text("{not json")
    else:
        path.write_bytes(b"\x00\x01garbage\xff" * 10)
    with pytest.raises(EventFileError) as info:
        open_reader(path)
    assert str(path) in str(info.value)


def test_root_missing_tree_lists_the_trees(tmp_path: Path) -> None:
    write_root(tmp_path / "e.root", np.ones(2), np.ones(2), tree="Other")
    with pytest.raises(EventFileError, match=r"no tree 'Lc2ppiK' \(available: 'Other'\)"):
        open_reader(tmp_path / "e.root")


def test_root_missing_branch_lists_the_branches(tmp_path: Path) -> None:
    write_root(tmp_path / "e.root", np.ones(2), np.ones(2))
    with pytest.raises(EventFileError, match="'msq_pK'.*available: 'msq_Kp', 'msq_piK'"):
        open_reader(tmp_path / "e.root", columns=Columns(sigma2="msq_pK"))


def test_root_jagged_branch_is_refused(tmp_path: Path) -> None:
    import awkward as ak
    import uproot

    with uproot.recreate(tmp_path / "j.root") as file:
        file.mktree("Lc2ppiK", {"msq_piK": np.float64, "msq_Kp": "var * float64"})
        file["Lc2ppiK"].extend({"msq_piK": np.ones(2), "msq_Kp": ak.Array([[1.0], [2.0, 3.0]])})
    with pytest.raises(EventFileError, match="'msq_Kp' of tree 'Lc2ppiK' is not a flat branch"):
        open_reader(tmp_path / "j.root")


def test_zarr_mismatched_lengths(tmp_path: Path) -> None:
    import zarr

    group = zarr.open_group(str(tmp_path / "e.zarr"), mode="w")
    group.create_array("msq_piK", data=np.ones(5))
    group.create_array("msq_Kp", data=np.ones(4))
    with pytest.raises(EventFileError, match="'msq_piK' has 5 events but 'msq_Kp' has 4"):
        open_reader(tmp_path / "e.zarr")


@pytest.mark.filterwarnings("ignore::zarr.errors.UnstableSpecificationWarning")
def test_zarr_non_numeric_array(tmp_path: Path) -> None:
    import zarr

    group = zarr.open_group(str(tmp_path / "e.zarr"), mode="w")
    group.create_array("msq_piK", data=np.array(["a", "b"]))
    group.create_array("msq_Kp", data=np.ones(2))
    with pytest.raises(EventFileError, match="array 'msq_piK' holds .* values, not real numbers"):
        open_reader(tmp_path / "e.zarr")


def test_npz_mismatched_lengths_and_missing_array(tmp_path: Path) -> None:
    np.savez(tmp_path / "a.npz", msq_piK=np.ones(3), msq_Kp=np.ones(2))
    with pytest.raises(EventFileError, match="has 3 events but 'msq_Kp' has 2"):
        open_reader(tmp_path / "a.npz")
    np.savez(tmp_path / "b.npz", msq_piK=np.ones(3))
    with pytest.raises(EventFileError, match=r"no array 'msq_Kp' \(available: 'msq_piK'\)"):
        open_reader(tmp_path / "b.npz")


def test_npz_complex_values_refused(tmp_path: Path) -> None:
    np.savez(tmp_path / "c.npz", msq_piK=np.ones(3) * 1j, msq_Kp=np.ones(3))
    with pytest.raises(EventFileError, match="complex128 values, not real numbers"):
        open_reader(tmp_path / "c.npz")


def test_npz_truncated_archive(tmp_path: Path) -> None:
    np.savez(tmp_path / "t.npz", msq_piK=np.ones(1000), msq_Kp=np.ones(1000))
    data = (tmp_path / "t.npz").read_bytes()
    (tmp_path / "t.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(EventFileError, match="t.npz"):
        read_all(tmp_path / "t.npz")


def test_npy_wrong_shape(tmp_path: Path) -> None:
    np.save(tmp_path / "w.npy", np.ones((4, 3)))
    with pytest.raises(EventFileError, match=r"shape \(N, 2\).*got shape \(4, 3\)"):
        open_reader(tmp_path / "w.npy")


def test_csv_non_numeric_value_names_the_line(tmp_path: Path) -> None:
    lines = ["msq_piK,msq_Kp"] + [f"1.{i},3.{i}" for i in range(20)]
    lines[15] = "1.5,three"
    (tmp_path / "e.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(
        EventFileError, match="e.csv: line 16: column 'msq_Kp' holds 'three', not a number"
    ):
        read_all(tmp_path / "e.csv", chunk=4)


def test_csv_missing_field(tmp_path: Path) -> None:
    (tmp_path / "e.csv").write_text("msq_piK,msq_Kp\n1.0,3.0\n1.1\n")
    with pytest.raises(EventFileError, match=r"line 3 has 1 field\(s\), but the header has 2"):
        read_all(tmp_path / "e.csv")


def test_csv_missing_column(tmp_path: Path) -> None:
    (tmp_path / "e.csv").write_text("s1,s2\n1.0,3.0\n")
    with pytest.raises(EventFileError, match=r"no column 'msq_piK' \(available: 's1', 's2'\)"):
        open_reader(tmp_path / "e.csv")


def test_parquet_string_column_and_nulls(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"msq_piK": ["1.0"], "msq_Kp": [3.0]}), tmp_path / "s.parquet")
    with pytest.raises(EventFileError, match="column 'msq_piK' holds string values"):
        open_reader(tmp_path / "s.parquet")
    pq.write_table(pa.table({"msq_piK": [1.0, None], "msq_Kp": [3.0, 3.1]}), tmp_path / "n.parquet")
    with pytest.raises(EventFileError, match="'msq_piK' has 1 missing"):
        read_all(tmp_path / "n.parquet")


def test_column_names_must_be_distinct() -> None:
    with pytest.raises(EventFileError, match="distinct"):
        Columns(sigma1="x", sigma2="x")


def test_npz_written_is_a_plain_numpy_archive(tmp_path: Path) -> None:
    with open_writer(tmp_path / "o.npz") as writer:
        writer.write(np.arange(3.0), np.arange(3.0), np.arange(3.0))
    with zipfile.ZipFile(tmp_path / "o.npz") as archive:
        assert sorted(archive.namelist()) == ["intensity.npy", "msq_Kp.npy", "msq_piK.npy"]


def test_wide_csv_header_is_refused_with_bounded_memory(tmp_path: Path) -> None:
    """Threat 16: a header of 200,000 columns (1.3 MB) is refused after reading 64 KiB of it."""
    import tracemalloc

    from modelstore.events.tabular import CSV_MAX_COLUMNS, CSV_MAX_HEADER_BYTES

    names = [f"c{i}" for i in range(200_000)] + ["msq_piK", "msq_Kp"]
    path = tmp_path / "wide.csv"
    path.write_text(",".join(names) + "\n" + ",".join("1" for _ in names) + "\n")
    tracemalloc.start()
    try:
        with pytest.raises(EventFileError, match=f"longer than {CSV_MAX_HEADER_BYTES} bytes"):
            open_reader(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 * CSV_MAX_HEADER_BYTES + (1 << 20), peak
    # under the byte limit, but too many columns
    narrow = [f"c{i}" for i in range(CSV_MAX_COLUMNS + 1)] + ["msq_piK", "msq_Kp"]
    (tmp_path / "many.csv").write_text(",".join(narrow) + "\n")
    with pytest.raises(EventFileError, match=f"at most {CSV_MAX_COLUMNS} are read"):
        open_reader(tmp_path / "many.csv")


def test_csv_wide_data_line_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "e.csv"
    path.write_text("msq_piK,msq_Kp\n1.0,3.0\n" + ",".join(["1"] * 300_000) + "\n")
    with pytest.raises(EventFileError, match="e.csv: (line 3 has 300000 field|a line is longer)"):
        read_all(path)


def test_csv_extra_fields_are_refused_with_the_line(tmp_path: Path) -> None:
    lines = ["msq_piK,msq_Kp"] + ["1.2,3.1"] * 30 + ["1.2,3.1,9.9"] + ["1.2,3.1"] * 5
    (tmp_path / "e.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(
        EventFileError, match=r"e.csv: line 32 has 3 field\(s\), but the header has 2"
    ):
        read_all(tmp_path / "e.csv", chunk=4)
    (tmp_path / "f.csv").write_text("msq_piK,msq_Kp\n1.2,3.1,\n")  # a trailing comma is a field
    with pytest.raises(EventFileError, match="line 2 has 3 field"):
        read_all(tmp_path / "f.csv")


def test_csv_duplicate_column_names_are_refused(tmp_path: Path) -> None:
    (tmp_path / "e.csv").write_text("msq_Kp,msq_piK,msq_Kp\n3.0,1.0,3.5\n")
    with pytest.raises(EventFileError, match="column 'msq_Kp' appears more than once"):
        open_reader(tmp_path / "e.csv")
    (tmp_path / "f.csv").write_text("x,x,msq_piK,msq_Kp\n0,0,1.0,3.0\n")
    with pytest.raises(EventFileError, match="column 'x' appears more than once"):
        open_reader(tmp_path / "f.csv")


def test_csv_values_nan_inf_whitespace_and_compression(tmp_path: Path) -> None:
    import gzip

    text = "msq_piK,msq_Kp\nNaN,nan\ninf,-inf\n 1.5 ,2\n"
    (tmp_path / "e.csv").write_text(text)
    with gzip.open(tmp_path / "e.csv.gz", "wt") as f:
        f.write(text)
    for name in ("e.csv", "e.csv.gz"):
        s1, s2, _ = read_all(tmp_path / name, chunk=2)
        np.testing.assert_array_equal(s1, [np.nan, np.inf, 1.5])
        np.testing.assert_array_equal(s2, [np.nan, -np.inf, 2.0])


def test_fifo_input_is_refused_not_waited_on(tmp_path: Path) -> None:
    import os

    fifo = tmp_path / "events.csv"
    os.mkfifo(fifo)
    with pytest.raises(EventFileError, match="not a regular file or folder"):
        open_reader(fifo)
