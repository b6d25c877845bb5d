"""``modelstore eval``: the seed's flow from the command line, and one-line errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from event_samples import (
    REF,
    SEED_INTENSITY,
    SEED_RTOL,
    SEED_SIGMA1,
    SEED_SIGMA2,
    fast_backend,
    write_root,
)

from modelstore.cli import main


@pytest.fixture(scope="module")
def backend() -> str:
    return fast_backend()


def run(*args: str) -> object:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_root_to_csv_gives_the_seed_intensities(
    tmp_path: Path, backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MODELSTORE_PROGRESS", raising=False)
    source = write_root(tmp_path / "phsp.root", SEED_SIGMA1, SEED_SIGMA2)
    out = tmp_path / "intensities.csv"
    result = run("eval", REF, "--input", str(source), "--output", str(out), "--backend", backend)
    assert result.exit_code == 0, result.output
    assert f"{REF}: 8 events (0 outside the Dalitz region) -> {out}" in result.output
    assert f"({backend})" in result.output
    assert result.stderr == ""  # no progress bar when stderr is not a terminal
    import pandas as pd

    table = pd.read_csv(out)
    assert list(table.columns) == ["msq_piK", "msq_Kp", "intensity"]
    np.testing.assert_allclose(table["intensity"], SEED_INTENSITY, rtol=SEED_RTOL)


def test_options_tree_branches_formats_chunks(tmp_path: Path, backend: str) -> None:
    import uproot

    with uproot.recreate(tmp_path / "sample.dat") as file:
        file.mktree("T", {"a": np.float64, "b": np.float64})
        file["T"].extend({"a": SEED_SIGMA1, "b": SEED_SIGMA2})
    out = tmp_path / "result"
    result = run(
        "eval", REF, "-i", str(tmp_path / "sample.dat"), "-o", str(out),
        "--input-format", "root", "--output-format", "zarr", "--tree", "T",
        "--sigma1-branch", "a", "--sigma2-branch", "b", "--chunk-size", "3", "--backend", backend,
        "--progress",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "/8.00 [" in result.stderr  # --progress forces the bar
    import zarr

    group = zarr.open_group(str(out), mode="r")
    assert sorted(group.array_keys()) == ["a", "b", "intensity"]
    assert group["intensity"].chunks == (3,)
    np.testing.assert_allclose(group["intensity"][:], SEED_INTENSITY, rtol=SEED_RTOL)


@pytest.mark.parametrize(
    ("setup", "args", "message"),
    [
        (None, [], "missing.root: no such file"),
        ("root", ["--sigma1-branch", "mKpi"],
         "no branch in tree 'Lc2ppiK' named 'mKpi' (available: 'msq_Kp', 'msq_piK')"),
        ("root", ["--tree", "DecayTree"], "no tree 'DecayTree' (available: 'Lc2ppiK')"),
        ("csv", [], "line 3: column 'msq_Kp' holds 'abc', not a number"),
        ("npz", [], "'msq_piK' has 3 events but 'msq_Kp' has 2"),
        ("junk", [], "not a readable ROOT file"),
        ("exists", [], "out.parquet: exists already"),
    ],
)  # fmt: skip
def test_bad_input_gives_one_line_and_exit_1(
    setup: str | None, args: list[str], message: str, tmp_path: Path
) -> None:
    source = tmp_path / "missing.root"
    if setup == "root" or setup == "exists":
        source = write_root(tmp_path / "in.root", SEED_SIGMA1, SEED_SIGMA2)
    elif setup == "csv":
        source = tmp_path / "in.csv"
        source.write_text("msq_piK,msq_Kp\n1.0,3.0\n1.1,abc\n")
    elif setup == "npz":
        source = tmp_path / "in.npz"
        np.savez(source, msq_piK=np.ones(3), msq_Kp=np.ones(2))
    elif setup == "junk":
        source = tmp_path / "in.root"
        source.write_bytes(b"not a ROOT file at all")
    out = tmp_path / "out.parquet"
    if setup == "exists":
        out.write_text("precious")
    result = CliRunner().invoke(main, ["eval", REF, "-i", str(source), "-o", str(out), *args])
    assert result.exit_code == 1
    assert result.exception is None or isinstance(result.exception, SystemExit)
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert lines[0].startswith("Error: ")
    assert message in lines[0]
    assert "Traceback" not in result.output
    if setup == "exists":
        assert out.read_text() == "precious"
    else:
        assert not out.exists()


def test_unknown_output_format(tmp_path: Path) -> None:
    source = write_root(tmp_path / "in.root", SEED_SIGMA1, SEED_SIGMA2)
    result = CliRunner().invoke(
        main, ["eval", REF, "-i", str(source), "-o", str(tmp_path / "out.npy")]
    )
    assert result.exit_code == 1
    assert "npy is not supported as an output format" in result.output


def test_dask_workers_needs_a_local_cluster(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main, ["eval", REF, "-i", "a.zarr", "-o", "b.zarr", "--dask-workers", "2"]
    )
    assert result.exit_code == 2
    assert "--dask-workers applies to --dask local only" in result.output


def test_overwrite_onto_a_folder_holding_the_input_deletes_nothing(tmp_path: Path) -> None:
    """Threat 15: ``--overwrite`` never deletes inputs or files this tool did not write."""
    from event_samples import write_input

    data = tmp_path / "data"
    data.mkdir()
    source = write_input(data, "zarr", SEED_SIGMA1, SEED_SIGMA2)  # data/events.zarr
    (data / "notes.txt").write_text("precious")
    before = sorted(p.relative_to(tmp_path) for p in data.rglob("*"))
    result = CliRunner().invoke(
        main,
        ["eval", REF, "-i", str(source), "-o", str(data), "--output-format", "zarr", "--overwrite"],
    )
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert "contain or sit inside the input" in result.output
    assert sorted(p.relative_to(tmp_path) for p in data.rglob("*")) == before
    assert (data / "notes.txt").read_text() == "precious"


def test_overwrite_refuses_a_folder_it_did_not_write(tmp_path: Path) -> None:
    source = write_root(tmp_path / "in.root", SEED_SIGMA1, SEED_SIGMA2)
    folder = tmp_path / "results"
    folder.mkdir()
    (folder / "thesis.tex").write_text("precious")
    result = CliRunner().invoke(
        main,
        [
            "eval",
            REF,
            "-i",
            str(source),
            "-o",
            str(folder),
            "--output-format",
            "zarr",
            "--overwrite",
        ],
    )
    assert result.exit_code == 1, result.output
    assert "modelstore did not write; refusing to replace it" in result.output
    assert (folder / "thesis.tex").read_text() == "precious"


def test_summary_reports_invalid_inputs_apart(tmp_path: Path, backend: str) -> None:
    source = tmp_path / "in.csv"
    source.write_text("msq_piK,msq_Kp\n1.303328,3.505217\nNaN,3.0\n-1,3.0\ninf,3\n0.2,0.2\n")
    out = tmp_path / "out.csv"
    result = run("eval", REF, "-i", str(source), "-o", str(out), "--backend", backend)
    assert result.exit_code == 0, result.output
    assert "5 events (1 outside the Dalitz region, 3 invalid inputs)" in result.stdout
    assert "3 events have a NaN, infinite or negative" in result.stderr


def test_parameter_overrides_are_applied_and_recorded(tmp_path: Path, backend: str) -> None:
    import json

    import zarr

    from modelstore import published_model

    source = write_root(tmp_path / "in.root", SEED_SIGMA1, SEED_SIGMA2)
    width = r"\Gamma_{K(892)}"
    coupling = r"\mathcal{H}^\mathrm{production}[K(1430), 0, -1/2]"
    out = tmp_path / "out.zarr"
    result = run(
        "eval", REF, "-i", str(source), "-o", str(out), "--backend", backend,
        "--parameter", f"{width}=0.06", "-p", f"{coupling}=1+2j",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    group = zarr.open_group(str(out), mode="r")
    expected = published_model(REF, backend=backend).intensity(
        SEED_SIGMA1, SEED_SIGMA2, **{width: 0.06, coupling: 1 + 2j}
    )
    np.testing.assert_allclose(group["intensity"][:], expected, rtol=1e-12)
    assert not np.allclose(expected, SEED_INTENSITY, rtol=1e-3)
    recorded = json.loads(group.attrs["modelstore"]["parameters"])
    assert recorded == {width: "0.06", coupling: "(1+2j)"}


@pytest.mark.parametrize(
    ("option", "code", "message"),
    [
        ("nosuch=1", 1, "unknown parameters ['nosuch'] (see its parameters and their aliases"),
        (r"\Gamma_{K(892)}=abc", 2, "'abc' is not a number"),
        (r"\Gamma_{K(892)}=nan", 2, "must be finite"),
        (r"\Gamma_{K(892)}=1e400", 2, "must be finite"),
        ("novalue", 2, "expected NAME=VALUE"),
        # R_prod is an int64 parameter: values outside int64 used to give NaN with exit 0
        (r"R_\mathrm{prod}=1e300", 1, r"(int64): 1e+300 is outside the int64 range"),
        (
            r"R_\mathrm{prod}=12345678901234567890123456",
            1,
            "(int64): 12345678901234567890123456 is outside the int64 range",
        ),
        (r"R_\mathrm{prod}=9223372036854775808", 1, "9223372036854775808 is outside the int64"),
        (r"R_\mathrm{prod}=1+1j", 1, "(int64): (1+1j) is complex; the parameter is real"),
    ],
)
def test_bad_parameter_option(option: str, code: int, message: str, tmp_path: Path) -> None:
    source = write_root(tmp_path / "in.root", SEED_SIGMA1, SEED_SIGMA2)
    out = tmp_path / "out.csv"
    result = CliRunner().invoke(
        main, ["eval", REF, "-i", str(source), "-o", str(out), "--parameter", option]
    )
    assert result.exit_code == code, result.output
    assert message in result.output
    assert "Traceback" not in result.output
    assert not out.exists()
    if code == 1:  # a library error: one line
        assert result.output.count("\n") == 1, result.output


def test_integer_parameters_are_read_exactly(tmp_path: Path, backend: str) -> None:
    import json

    import zarr

    source = write_root(tmp_path / "in.root", SEED_SIGMA1, SEED_SIGMA2)
    out = tmp_path / "out.zarr"
    radius = r"R_\mathrm{prod}"
    result = run(
        "eval", REF, "-i", str(source), "-o", str(out), "--backend", backend,
        "-p", f"{radius}=9223372036854775807", "-p", r"\Gamma_{K(892)}=1",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    recorded = json.loads(zarr.open_group(str(out), mode="r").attrs["modelstore"]["parameters"])
    assert recorded == {radius: "9223372036854775807", r"\Gamma_{K(892)}": "1.0"}


def test_progress_follows_modelstore_progress(
    tmp_path: Path, backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = write_root(tmp_path / "phsp.root", SEED_SIGMA1, SEED_SIGMA2)
    args = ["eval", REF, "-i", str(source), "--backend", backend, "--overwrite"]
    monkeypatch.setenv("MODELSTORE_PROGRESS", "1")
    result = run(*args, "-o", str(tmp_path / "a.csv"), "--chunk-size", "3")
    assert result.exit_code == 0, result.output
    assert "events:" in result.stderr and "/8.00 [" in result.stderr  # three chunks: a bar
    result = run(*args, "-o", str(tmp_path / "b.csv"))
    assert result.exit_code == 0, result.output
    assert result.stderr == ""  # one chunk: nothing to follow
    result = run(*args, "-o", str(tmp_path / "c.csv"), "--chunk-size", "3", "--no-progress")
    assert result.stderr == ""
    monkeypatch.delenv("MODELSTORE_PROGRESS")
    result = run(*args, "-o", str(tmp_path / "d.csv"), "--chunk-size", "3")
    assert result.exit_code == 0, result.output
    assert result.stderr == ""  # not a terminal
