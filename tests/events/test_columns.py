"""Input columns go through to every output format, in order; --columns and --drop-columns."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from event_samples import REF, read_table

from modelstore import PublishedModel
from modelstore.cli import main
from modelstore.errors import EventFileError
from modelstore.events import OUTPUT_FORMATS, Columns, evaluate_file

N = 40
IN_FORMATS = ("zarr", "parquet", "csv", "npz", "root", "npy")


def _input_columns(sample: tuple[np.ndarray, np.ndarray]) -> dict[str, np.ndarray]:
    """An event id first, σ2 before σ1, a float32 weight last (the order is the input's)."""
    sigma1, sigma2 = sample
    return {
        "event_id": np.arange(N, dtype=np.int64) + (1 << 60),
        "msq_Kp": sigma2[:N],
        "run": np.full(N, 7, dtype=np.int32),
        "msq_piK": sigma1[:N],
        "weight": np.linspace(0.5, 1.5, N, dtype=np.float32),
    }


def write_columns(directory: Path, fmt: str, data: dict[str, np.ndarray]) -> Path:
    """``data`` in ``fmt``, written with the format's own library, plus one column not carried."""
    path = directory / f"in.{fmt}"
    if fmt == "zarr":
        import zarr

        group = zarr.open_group(str(path), mode="w")
        for name, values in data.items():
            group.create_array(name, data=values, chunks=(9,))
        group.create_array("matrix", data=np.zeros((N, 2)), chunks=(9, 2))
    elif fmt == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.table({**data, "label": [f"e{i}" for i in range(N)]})
        pq.write_table(table, path, row_group_size=9)
    elif fmt == "csv":
        import pandas as pd

        pd.DataFrame(data).to_csv(path, index=False)
    elif fmt == "npz":
        np.savez(path, **data, matrix=np.zeros((N, 2)))
    elif fmt == "root":
        import uproot

        with uproot.recreate(path) as file:  # a TTree keeps the branches' order
            file.mktree("Lc2ppiK", {name: values.dtype for name, values in data.items()})
            file["Lc2ppiK"].extend(data)
    elif fmt == "npy":
        array = np.zeros(N, dtype=[(name, values.dtype) for name, values in data.items()])
        for name, values in data.items():
            array[name] = values
        np.save(path, array)
    return path


@pytest.mark.parametrize("out_fmt", OUTPUT_FORMATS)
@pytest.mark.parametrize("in_fmt", IN_FORMATS)
def test_every_input_column_goes_through_in_order(
    in_fmt: str,
    out_fmt: str,
    tmp_path: Path,
    model: PublishedModel,
    sample: tuple[np.ndarray, np.ndarray],
) -> None:
    data = _input_columns(sample)
    source = write_columns(tmp_path, in_fmt, data)
    output = tmp_path / f"out.{out_fmt}"
    result = evaluate_file(model, source, output, chunk_size=16)
    assert result.events == N
    skipped = {"zarr": ("matrix",), "npz": ("matrix",), "parquet": ("label",)}
    assert result.skipped == skipped.get(in_fmt, ())
    tree = "Lc2ppiK" if in_fmt == "root" else "events"
    stored = read_table(output, out_fmt, tree)
    if "zarr" in (in_fmt, out_fmt):  # a zarr group lists its arrays by name, not in order
        assert sorted(stored) == sorted([*data, "intensity"])
    else:
        assert list(stored) == [*data, "intensity"]
    for name, values in data.items():
        np.testing.assert_array_equal(stored[name].astype(values.dtype), values, err_msg=name)
        if "csv" not in (in_fmt, out_fmt) or values.dtype == np.int64:
            expected = np.float64 if name.startswith("msq") else values.dtype
            assert stored[name].dtype == expected, name
    expected = model.intensity(data["msq_piK"], data["msq_Kp"])
    np.testing.assert_array_equal(stored["intensity"], expected)


@pytest.mark.parametrize("out_fmt", OUTPUT_FORMATS)
def test_keep_and_drop_columns(
    out_fmt: str, tmp_path: Path, model: PublishedModel, sample: tuple[np.ndarray, np.ndarray]
) -> None:
    source = write_columns(tmp_path, "parquet", _input_columns(sample))
    kept = tmp_path / f"kept.{out_fmt}"
    evaluate_file(model, source, kept, keep_columns=["weight", "event_id"])
    dropped = tmp_path / f"dropped.{out_fmt}"
    evaluate_file(model, source, dropped, drop_columns=["run", "weight"])
    order = sorted if out_fmt == "zarr" else list
    assert order(read_table(kept, out_fmt)) == order(
        ["event_id", "msq_Kp", "msq_piK", "weight", "intensity"]
    )
    assert order(read_table(dropped, out_fmt)) == order(
        ["event_id", "msq_Kp", "msq_piK", "intensity"]
    )


def test_an_input_column_named_like_a_result_is_replaced(
    tmp_path: Path, model: PublishedModel, sample: tuple[np.ndarray, np.ndarray]
) -> None:
    data = {**_input_columns(sample), "intensity": np.zeros(N)}
    source = write_columns(tmp_path, "npz", data)
    evaluate_file(model, source, tmp_path / "out.npz")
    stored = read_table(tmp_path / "out.npz", "npz")
    assert list(stored) == [*_input_columns(sample), "intensity"]
    assert not np.all(stored["intensity"] == 0)


@pytest.mark.parametrize(
    ("keep", "drop", "fragment"),
    [
        (["nope", "weight", "other"], (), "no column 'nope', 'other' (available:"),
        (None, ["gone"], "no column 'gone'"),
        (["label"], (), "cannot write 'label': only flat columns"),
        (None, ["msq_piK"], "σ1 and σ2 are always written"),
        (["weight"], ["run"], "not both"),
    ],
)
def test_bad_column_choices_name_the_columns(
    keep: list[str] | None,
    drop: list[str],
    fragment: str,
    tmp_path: Path,
    model: PublishedModel,
    sample: tuple[np.ndarray, np.ndarray],
) -> None:
    source = write_columns(tmp_path, "parquet", _input_columns(sample))
    with pytest.raises(EventFileError, match="^[^\n]*$") as info:
        evaluate_file(model, source, tmp_path / "o.csv", keep_columns=keep, drop_columns=drop)
    assert fragment in str(info.value)
    assert not (tmp_path / "o.csv").exists()


def test_cli_columns_options(tmp_path: Path, sample: tuple[np.ndarray, np.ndarray]) -> None:
    source = write_columns(tmp_path, "parquet", _input_columns(sample))
    out = tmp_path / "o.csv"
    runner = CliRunner()
    result = runner.invoke(main, ["eval", REF, "-i", str(source), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "not written" in result.output
    assert "label" in result.output
    header = out.read_text().splitlines()[0]
    assert header == "event_id,msq_Kp,run,msq_piK,weight,intensity"
    args = ["eval", REF, "-i", str(source), "-o", str(out), "--overwrite"]
    result = runner.invoke(main, [*args, "--columns", "run, weight"])
    assert result.exit_code == 0, result.output
    assert out.read_text().splitlines()[0] == "msq_Kp,run,msq_piK,weight,intensity"
    result = runner.invoke(main, [*args, "--drop-columns", "x,y"])
    assert result.exit_code == 1
    assert "no column 'x', 'y'" in result.output
    assert len(result.output.strip().splitlines()) == 1
    result = runner.invoke(main, [*args, "--columns", "run", "--drop-columns", "weight"])
    assert result.exit_code == 2


def test_nested_root_branches_are_not_carried(tmp_path: Path, model: PublishedModel) -> None:
    import awkward as ak
    import uproot

    path = tmp_path / "in.root"
    with uproot.recreate(path) as file:
        file["Lc2ppiK"] = {
            "msq_piK": np.array([1.0, 1.2]),
            "msq_Kp": np.array([3.0, 3.1]),
            "tracks": ak.Array([[1.0], []]),
        }
    result = evaluate_file(model, path, tmp_path / "out.root")
    assert result.skipped == ("tracks",)
    stored = read_table(tmp_path / "out.root", "root", "Lc2ppiK")
    assert sorted(stored) == ["intensity", "msq_Kp", "msq_piK"]  # uproot orders RNTuple fields


def test_chunks_stay_bounded_with_columns(
    tmp_path: Path, model: PublishedModel, sample: tuple[np.ndarray, np.ndarray]
) -> None:
    """Carried columns are read chunk by chunk like σ1 and σ2 (never the whole column)."""
    from modelstore.events import open_reader

    source = write_columns(tmp_path, "csv", _input_columns(sample))
    with open_reader(source, columns=Columns()) as reader:
        reader.carry(["event_id", "weight"])
        sizes = [(len(s1), *(len(c) for c in extra)) for s1, _, extra in reader.chunks_with(16)]
    assert sizes == [(16, 16, 16), (16, 16, 16), (8, 8, 8)]


@pytest.mark.parametrize("out_fmt", OUTPUT_FORMATS)
def test_half_floats_and_names_some_formats_cannot_hold(
    out_fmt: str, tmp_path: Path, model: PublishedModel
) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    source = tmp_path / "in.parquet"
    columns = {
        "msq_piK": np.array([1.0, 1.2]),
        "msq_Kp": np.array([3.0, 3.1]),
        "half": np.array([1.5, -2.25], dtype=np.float16),
    }
    pq.write_table(pa.table(columns), source)
    evaluate_file(model, source, tmp_path / f"out.{out_fmt}")  # float16 travels as float32
    stored = read_table(tmp_path / f"out.{out_fmt}", out_fmt)
    np.testing.assert_array_equal(stored["half"], [1.5, -2.25])
    pq.write_table(pa.table({**columns, "a/b": np.array([1.0, 2.0])}), source)
    output = tmp_path / f"slash.{out_fmt}"
    if out_fmt in ("zarr", "root"):
        with pytest.raises(EventFileError, match="cannot name a column 'a/b'"):
            evaluate_file(model, source, output)
        assert not output.exists()
        evaluate_file(model, source, output, drop_columns=["a/b"])
    else:
        evaluate_file(model, source, output)
        assert "a/b" in read_table(output, out_fmt)


def test_a_csv_integer_column_that_turns_float_later_is_named(
    tmp_path: Path, model: PublishedModel
) -> None:
    from modelstore.events.tabular import CSV_BLOCK_BYTES

    rows = ["msq_piK,msq_Kp,n"] + ["1.0,3.0,7"] * (CSV_BLOCK_BYTES // 10 + 10) + ["1.0,3.0,7.5"]
    source = tmp_path / "in.csv"
    source.write_text("\n".join(rows) + "\n")
    with pytest.raises(EventFileError, match=r"column 'n' holds '7.5', not an integer"):
        evaluate_file(model, source, tmp_path / "o.npz")
    result = evaluate_file(model, source, tmp_path / "o.npz", drop_columns=["n"])
    assert result.events == len(rows) - 1
