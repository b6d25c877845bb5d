"""`evaluate_file`: the seed's flow end to end, every format, and outputs that are never partial."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from event_samples import (
    SEED_INTENSITY,
    SEED_RTOL,
    SEED_SIGMA1,
    SEED_SIGMA2,
    write_input,
    write_root,
)

from modelstore import PublishedModel
from modelstore.errors import EventFileError, InvalidInputError
from modelstore.events import INPUT_FORMATS, OUTPUT_FORMATS, Columns, evaluate_file, open_reader
from modelstore.events.staging import PARTIAL_MARK


def read_output(path: Path, tree: str = "events") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    as_input = Columns(sigma1="intensity", sigma2="msq_piK", intensity="unused", tree=tree)
    with open_reader(path, columns=Columns(tree=tree)) as reader:
        s1, s2 = zip(*reader.chunks(1 << 20), strict=False)
    with open_reader(path, columns=as_input) as reader:
        intensity = [c[0] for c in reader.chunks(1 << 20)]
    return np.concatenate(s1), np.concatenate(s2), np.concatenate(intensity)


def test_seed_flow_from_a_root_file(tmp_path: Path, model: PublishedModel) -> None:
    """The seed's eight events, read from a ROOT TTree, give the seed's intensities."""
    # the seed's inputs are printed with 7 digits: the tolerance must allow for that, and no more
    exact = model.intensity(SEED_SIGMA1, SEED_SIGMA2)
    assert np.max(np.abs(exact / SEED_INTENSITY - 1)) < SEED_RTOL / 10
    source = write_root(tmp_path / "phsp.root", SEED_SIGMA1, SEED_SIGMA2)
    result = evaluate_file(model, source, tmp_path / "out.parquet", chunk_size=3)
    assert (result.events, result.outside, result.model) == (8, 0, model.ref)
    assert result.backend == model.backend
    s1, s2, intensity = read_output(tmp_path / "out.parquet")
    np.testing.assert_array_equal(s1, SEED_SIGMA1)
    np.testing.assert_array_equal(s2, SEED_SIGMA2)
    np.testing.assert_allclose(intensity, SEED_INTENSITY, rtol=SEED_RTOL)
    np.testing.assert_array_equal(intensity, exact)  # chunking does not change a bit


@pytest.mark.parametrize("fmt", INPUT_FORMATS)
def test_every_input_format_gives_the_same_intensities(
    fmt: str, tmp_path: Path, model: PublishedModel, sample: tuple[np.ndarray, np.ndarray]
) -> None:
    sigma1, sigma2 = sample
    expected = model.intensity(sigma1, sigma2)
    source = write_input(tmp_path, fmt, sigma1, sigma2)
    result = evaluate_file(model, source, tmp_path / "out.npz", chunk_size=300)
    assert result.events == len(sigma1)
    assert result.outside == np.isnan(expected).sum() > 0
    with np.load(tmp_path / "out.npz") as out:
        np.testing.assert_array_equal(out["intensity"], expected)
        np.testing.assert_array_equal(out["msq_piK"], sigma1)


@pytest.mark.parametrize("fmt", OUTPUT_FORMATS)
def test_every_output_format_round_trips_through_eval(
    fmt: str, tmp_path: Path, model: PublishedModel, sample: tuple[np.ndarray, np.ndarray]
) -> None:
    """An output is a valid input: evaluating it again gives the same file content."""
    source = write_input(tmp_path, "zarr", *sample)
    first = tmp_path / f"first.{fmt}"
    evaluate_file(model, source, first, chunk_size=256)
    evaluate_file(
        model, first, tmp_path / f"second.{fmt}", columns=Columns(tree="events"), chunk_size=100
    )
    for a, b in zip(read_output(first), read_output(tmp_path / f"second.{fmt}"), strict=False):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(read_output(first)[0], sample[0])


def test_output_records_provenance(tmp_path: Path, model: PublishedModel) -> None:
    import pyarrow.parquet as pq
    import zarr

    source = write_root(tmp_path / "e.root", SEED_SIGMA1, SEED_SIGMA2)
    evaluate_file(model, source, tmp_path / "o.zarr")
    evaluate_file(model, source, tmp_path / "o.parquet")
    attrs = zarr.open_group(str(tmp_path / "o.zarr"), mode="r").attrs["modelstore"]
    meta = json.loads(pq.read_schema(tmp_path / "o.parquet").metadata[b"modelstore"])
    for record in (attrs, meta):
        assert record["model"] == model.ref
        assert record["manifest_digest"] == model.registry.resolve(model.ref)[2]
        assert record["backend"] == model.backend
        assert record["sigma1"] == "msq_piK"


def test_format_override_and_parameters(tmp_path: Path, model: PublishedModel) -> None:
    source = write_input(tmp_path, "csv", SEED_SIGMA1, SEED_SIGMA2).rename(tmp_path / "events.txt")
    changed = {"m_{K(892)}": 0.9}
    result = evaluate_file(
        model,
        source,
        tmp_path / "out.bin",
        input_format="csv",
        output_format="npz",
        parameters=changed,
    )
    assert result.events == 8
    with np.load(tmp_path / "out.bin") as out:
        np.testing.assert_array_equal(
            out["intensity"], model.intensity(SEED_SIGMA1, SEED_SIGMA2, **changed)
        )
        assert not np.allclose(out["intensity"], SEED_INTENSITY, rtol=1e-3)


def test_progress_reports_every_chunk(tmp_path: Path, model: PublishedModel, sample: tuple) -> None:
    source = write_input(tmp_path, "parquet", *sample)
    reports: list[tuple[int, int | None]] = []
    evaluate_file(
        model, source, tmp_path / "o.zarr", chunk_size=400, progress=lambda *a: reports.append(a)
    )
    assert reports == [(400, 1000), (800, 1000), (1000, 1000)]


# -- outputs are complete or absent ------------------------------------------------------------


@pytest.mark.parametrize("fmt", OUTPUT_FORMATS)
def test_interrupted_run_leaves_no_output(
    fmt: str, tmp_path: Path, model: PublishedModel, sample: tuple
) -> None:
    source = write_input(tmp_path, "npz", *sample)
    target = tmp_path / f"out.{fmt}"
    seen: list[list[str]] = []

    def interrupt(done: int, total: int | None) -> None:
        seen.append(sorted(p.name for p in tmp_path.iterdir()))
        if done >= 200:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        evaluate_file(model, source, target, chunk_size=100, progress=interrupt)
    # while running, the output existed only under a hidden temporary name
    assert target.name not in seen[0]
    assert any(name.startswith(f".{target.name}{PARTIAL_MARK}") for name in seen[0])
    # afterwards, nothing is left but the input
    assert sorted(p.name for p in tmp_path.iterdir()) == [source.name]


def test_bad_data_late_in_the_file_leaves_no_output(tmp_path: Path, model: PublishedModel) -> None:
    lines = ["msq_piK,msq_Kp"] + ["1.2,3.1"] * 50 + ["1.2,x"]
    (tmp_path / "e.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(EventFileError, match="line 52"):
        evaluate_file(model, tmp_path / "e.csv", tmp_path / "o.parquet", chunk_size=10)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["e.csv"]


def test_existing_output_is_kept_unless_overwrite(tmp_path: Path, model: PublishedModel) -> None:
    source = write_root(tmp_path / "e.root", SEED_SIGMA1, SEED_SIGMA2)
    for fmt in ("zarr", "csv"):
        target = tmp_path / f"o.{fmt}"
        evaluate_file(model, source, target, chunk_size=5)
        before = read_output(target)
        with pytest.raises(EventFileError, match="exists already"):
            evaluate_file(model, source, target)
        # a failing overwrite leaves the old output as it was
        with pytest.raises(InvalidInputError):
            evaluate_file(
                model, source, target, overwrite=True, parameters={"no such parameter": 1.0}
            )
        np.testing.assert_array_equal(read_output(target)[2], before[2])
        result = evaluate_file(model, source, target, overwrite=True, chunk_size=3)
        assert result.events == 8
        np.testing.assert_array_equal(read_output(target)[2], before[2])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["e.root", "o.csv", "o.zarr"]


def test_output_may_not_replace_the_input(tmp_path: Path, model: PublishedModel) -> None:
    source = write_input(tmp_path, "zarr", SEED_SIGMA1, SEED_SIGMA2)
    with pytest.raises(EventFileError, match="would overwrite the input"):
        evaluate_file(model, source, source, overwrite=True)


def test_bad_input_fails_before_any_output(tmp_path: Path, model: PublishedModel) -> None:
    write_root(tmp_path / "e.root", SEED_SIGMA1, SEED_SIGMA2)
    with pytest.raises(EventFileError, match="no branch .* named 'sigma1'"):
        evaluate_file(
            model, tmp_path / "e.root", tmp_path / "o.zarr", columns=Columns(sigma1="sigma1")
        )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["e.root"]


def test_empty_input_gives_an_empty_output(tmp_path: Path, model: PublishedModel) -> None:
    source = write_input(tmp_path, "parquet", np.empty(0), np.empty(0))
    result = evaluate_file(model, source, tmp_path / "o.npz")
    assert (result.events, result.outside) == (0, 0)
    with np.load(tmp_path / "o.npz") as out:
        assert out["intensity"].shape == (0,)


def test_overwrite_replaces_only_its_own_outputs(tmp_path: Path, model: PublishedModel) -> None:
    """Threat 15: a folder is replaced only if it is a zarr output of this tool, links never."""
    import os

    source = write_root(tmp_path / "e.root", SEED_SIGMA1, SEED_SIGMA2)
    target = tmp_path / "o.zarr"
    evaluate_file(model, source, target)
    # a previous output is replaced
    evaluate_file(model, source, target, overwrite=True)
    # ... but not once a user put a file into it
    (target / "mine.txt").write_text("precious")
    with pytest.raises(EventFileError, match="modelstore did not write"):
        evaluate_file(model, source, target, overwrite=True)
    assert (target / "mine.txt").read_text() == "precious"
    (target / "mine.txt").unlink()
    # a link inside the old output is never followed
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep").write_text("precious")
    os.symlink(outside, target / "intensity.link")
    with pytest.raises(EventFileError, match="modelstore did not write"):
        evaluate_file(model, source, target, overwrite=True)
    (target / "intensity.link").unlink()
    # a symbolic link as the target is refused, the folder it points to is untouched
    link = tmp_path / "link.zarr"
    os.symlink(target, link)
    with pytest.raises(EventFileError, match="symbolic link"):
        evaluate_file(model, source, link, overwrite=True)
    assert (outside / "keep").read_text() == "precious"
    assert (target / "zarr.json").is_file()


def test_output_may_not_contain_or_sit_inside_an_input(
    tmp_path: Path, model: PublishedModel
) -> None:
    import os

    data = tmp_path / "data"
    data.mkdir()
    source = write_input(data, "zarr", SEED_SIGMA1, SEED_SIGMA2)
    with pytest.raises(EventFileError, match="contain or sit inside the input"):
        evaluate_file(model, source, data, output_format="zarr", overwrite=True)
    with pytest.raises(EventFileError, match="contain or sit inside the input"):
        evaluate_file(model, source, source / "out.csv")
    # the same through a link to the input's folder
    os.symlink(data, tmp_path / "alias")
    with pytest.raises(EventFileError, match="contain or sit inside the input"):
        evaluate_file(
            model, tmp_path / "alias" / "events.zarr", data, output_format="zarr", overwrite=True
        )
    assert sorted(p.name for p in data.iterdir()) == ["events.zarr"]
    assert (source / "zarr.json").is_file()


def test_invalid_inputs_are_counted_apart_from_outside(
    tmp_path: Path, model: PublishedModel
) -> None:
    """NaN, infinite or negative σ are invalid inputs, not events outside the Dalitz region."""
    import zarr

    sigma1 = np.array([*SEED_SIGMA1, np.nan, np.inf, -1.0, 1.0, 0.2])
    sigma2 = np.array([*SEED_SIGMA2, 3.0, 3.0, 3.0, -np.inf, 0.2])  # the last one is outside
    source = write_input(tmp_path, "npz", sigma1, sigma2)
    for name in ("o.zarr", "o.parquet"):
        result = evaluate_file(model, source, tmp_path / name, chunk_size=4)
        assert (result.events, result.invalid, result.outside) == (13, 4, 1)
    attrs = zarr.open_group(str(tmp_path / "o.zarr"), mode="r").attrs["modelstore"]
    assert (attrs["invalid_inputs"], attrs["outside_dalitz"]) == ("4", "1")
    import pyarrow.parquet as pq

    summary = pq.read_metadata(tmp_path / "o.parquet").metadata[b"modelstore_summary"]
    assert json.loads(summary) == {"invalid_inputs": "4", "outside_dalitz": "1"}


def test_root_output_round_trips_bit_identical_and_keeps_the_tree_name(
    tmp_path: Path, model: PublishedModel, sample: tuple[np.ndarray, np.ndarray]
) -> None:
    """A ROOT output read with uproot holds the same bits as a parquet output of the same run."""
    import json

    import uproot

    source = write_root(tmp_path / "in.root", *sample, tree="Lc2ppiK")
    evaluate_file(model, source, tmp_path / "out.root", chunk_size=300)
    evaluate_file(model, source, tmp_path / "out.parquet", chunk_size=300)
    reference = read_output(tmp_path / "out.parquet")
    with uproot.open(tmp_path / "out.root") as file:
        assert "Lc2ppiK" in {k.split(";")[0] for k in file.keys()}  # noqa: SIM118
        stored = file["Lc2ppiK"].arrays(["msq_piK", "msq_Kp", "intensity"], library="np")
        assert json.loads(str(file["modelstore"]))["model"] == model.ref
    for name, expected in zip(("msq_piK", "msq_Kp", "intensity"), reference, strict=True):
        assert stored[name].dtype == np.float64
        assert stored[name].tobytes() == expected.tobytes()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    # from a non-ROOT input the tree is called ``events``; --overwrite rules apply
    zarr_in = write_input(tmp_path, "zarr", *sample)
    with pytest.raises(EventFileError, match="exists already"):
        evaluate_file(model, zarr_in, tmp_path / "out.root")
    evaluate_file(model, zarr_in, tmp_path / "out.root", overwrite=True)
    with uproot.open(tmp_path / "out.root") as file:
        assert file["events"].num_entries == len(sample[0])
