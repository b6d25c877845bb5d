"""``--quantities``: the intensity and the polarimeter vector α⃗'s components as output columns."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from event_samples import REF, read_table, write_input

from modelstore import PublishedModel, published_model
from modelstore.cli import main
from modelstore.errors import InvalidInputError
from modelstore.events import OUTPUT_FORMATS, evaluate_file

POLARIMETRY_REF = "default@1.4.0"
ALL = ["intensity", "alpha_x", "alpha_y", "alpha_z"]


@pytest.fixture(scope="module")
def polarimetry_model() -> PublishedModel:
    return published_model(POLARIMETRY_REF, backend="numpy")


@pytest.mark.parametrize("fmt", OUTPUT_FORMATS)
def test_intensity_and_alpha_columns(
    fmt: str,
    tmp_path: Path,
    polarimetry_model: PublishedModel,
    sample: tuple[np.ndarray, np.ndarray],
) -> None:
    source = write_input(tmp_path, "parquet", *sample)
    output = tmp_path / f"out.{fmt}"
    result = evaluate_file(polarimetry_model, source, output, chunk_size=300, quantities=ALL)
    intensity, alpha = polarimetry_model.intensity_and_polarimeter(*sample)
    assert result.outside == np.isnan(intensity).sum() > 0
    stored = read_table(output, fmt)
    names = ["msq_piK", "msq_Kp", *ALL]
    assert (sorted(stored) if fmt == "zarr" else list(stored)) == (
        sorted(names) if fmt == "zarr" else names
    )
    np.testing.assert_array_equal(stored["intensity"], intensity)
    for i, axis in enumerate("xyz"):
        np.testing.assert_array_equal(stored[f"alpha_{axis}"], alpha[:, i])


def test_alpha_alone_and_the_provenance(
    tmp_path: Path, polarimetry_model: PublishedModel, sample: tuple[np.ndarray, np.ndarray]
) -> None:
    import pyarrow.parquet as pq

    source = write_input(tmp_path, "npz", *sample)
    output = tmp_path / "out.parquet"
    evaluate_file(polarimetry_model, source, output, quantities=["alpha_z", "alpha_x"])
    table = pq.read_table(output)
    assert table.column_names == ["msq_piK", "msq_Kp", "alpha_z", "alpha_x"]
    recorded = json.loads(table.schema.metadata[b"modelstore"])
    assert json.loads(recorded["quantities"]) == ["alpha_z", "alpha_x"]


def test_one_polarimeter_pass_per_chunk(
    tmp_path: Path,
    polarimetry_model: PublishedModel,
    sample: tuple[np.ndarray, np.ndarray],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[int] = []
    original = polarimetry_model.intensity_and_polarimeter

    def counted(s1: np.ndarray, s2: np.ndarray, **parameters: object) -> object:
        calls.append(len(s1))
        return original(s1, s2, **parameters)

    def forbidden(*args: object, **kwargs: object) -> object:
        raise AssertionError("intensity evaluated apart")

    monkeypatch.setattr(polarimetry_model, "intensity_and_polarimeter", counted)
    monkeypatch.setattr(polarimetry_model, "intensity", forbidden)
    source = write_input(tmp_path, "npz", *sample)
    evaluate_file(polarimetry_model, source, tmp_path / "o.npz", chunk_size=300, quantities=ALL)
    assert calls == [300, 300, 300, 100]


@pytest.mark.parametrize(
    ("quantities", "fragment"),
    [
        (["alpha_x", "alpha_z"], "has no polarimeter (alpha_x, alpha_z): α needs a version"),
        (["intensity", "beta"], "unknown quantities 'beta' (choose among"),
        (["alpha_q"], "unknown quantities 'alpha_q'; did you mean 'alpha_"),
        (["intensty"], "unknown quantities 'intensty'; did you mean 'intensity'?"),
        ([], "unknown quantities none"),
        (["intensity", "intensity"], "each may be asked once"),
    ],
)
def test_bad_quantities(
    quantities: list[str],
    fragment: str,
    tmp_path: Path,
    model: PublishedModel,
    sample: tuple[np.ndarray, np.ndarray],
) -> None:
    source = write_input(tmp_path, "npz", *sample)
    with pytest.raises(InvalidInputError, match="^[^\n]*$") as info:
        evaluate_file(model, source, tmp_path / "o.npz", quantities=quantities)
    assert fragment in str(info.value)
    assert not (tmp_path / "o.npz").exists()


def test_cli_quantities(tmp_path: Path, sample: tuple[np.ndarray, np.ndarray]) -> None:
    source = write_input(tmp_path, "csv", *sample)
    out = tmp_path / "o.csv"
    runner = CliRunner()
    args = ["eval", POLARIMETRY_REF, "-i", str(source), "-o", str(out), "--backend", "numpy"]
    result = runner.invoke(main, [*args, "--quantities", "intensity,alpha_y"])
    assert result.exit_code == 0, result.output
    assert out.read_text().splitlines()[0] == "msq_piK,msq_Kp,intensity,alpha_y"
    result = runner.invoke(main, ["eval", REF, "-i", str(source), "-o", str(tmp_path / "x.csv")])
    assert result.exit_code == 0, result.output
    result = runner.invoke(
        main,
        ["eval", REF, "-i", str(source), "-o", str(tmp_path / "y.csv"), "--quantities", "alpha_x"],
    )
    assert result.exit_code == 1
    assert len(result.output.strip().splitlines()) == 1
    assert "1.4.0" in result.output
    assert not (tmp_path / "y.csv").exists()


def test_one_resonance_alone_is_what_the_rates_average(
    tmp_path: Path, model: PublishedModel
) -> None:
    from modelstore.dalitz.rates import phase_space_points

    points = phase_space_points(model, 2000, seed=3)
    source = write_input(tmp_path, "npz", *points)
    evaluate_file(model, source, tmp_path / "all.npz")
    evaluate_file(model, source, tmp_path / "k892.parquet", resonance="K(892)")
    full = read_table(tmp_path / "all.npz", "npz")["intensity"]
    alone = read_table(tmp_path / "k892.parquet", "parquet")["intensity"]
    rate = model.decay_rates(2000, seed=3)["K(892)"]
    assert np.nanmean(alone) / np.nanmean(full) == pytest.approx(rate, rel=1e-12)
    assert 0.05 < rate < 0.5  # K(892) alone is neither everything nor nothing
    import pyarrow.parquet as pq

    recorded = json.loads(pq.read_schema(tmp_path / "k892.parquet").metadata[b"modelstore"])
    assert recorded["resonance"] == "K(892)"


@pytest.mark.parametrize("name", ["L(1405)", "\\Lambda(1405)", "Lambda(1405)"])
def test_a_resonance_by_either_name(
    name: str, tmp_path: Path, model: PublishedModel, sample: tuple[np.ndarray, np.ndarray]
) -> None:
    from modelstore.dalitz.rates import resonance_alone

    source = write_input(tmp_path, "npz", *sample)
    evaluate_file(model, source, tmp_path / "o.npz", resonance=name)
    zeroed = resonance_alone(model, "L(1405)")
    assert zeroed and all(value == 0 for value in zeroed.values())
    assert not any("Lambda(1405)" in parameter for parameter in zeroed)
    expected = model.intensity(*sample, **zeroed)
    np.testing.assert_array_equal(read_table(tmp_path / "o.npz", "npz")["intensity"], expected)


def test_an_unknown_resonance_names_those_there_are(
    tmp_path: Path, model: PublishedModel, sample: tuple[np.ndarray, np.ndarray]
) -> None:
    source = write_input(tmp_path, "npz", *sample)
    with pytest.raises(InvalidInputError, match="^[^\n]*$") as info:
        evaluate_file(model, source, tmp_path / "o.npz", resonance="K(999)")
    assert "no resonance 'K(999)'" in str(info.value)
    assert "K(892)" in str(info.value) and "L(1405)" in str(info.value)
    assert not (tmp_path / "o.npz").exists()
    result = CliRunner().invoke(
        main,
        ["eval", REF, "-i", str(source), "-o", str(tmp_path / "o.csv"), "--resonance", "K(999)"],
    )
    assert result.exit_code == 1
    assert len(result.output.strip().splitlines()) == 1
    assert "D(1232)" in result.output and not (tmp_path / "o.csv").exists()
    args = ["eval", REF, "-i", str(source), "-o", str(tmp_path / "o.csv")]
    result = CliRunner().invoke(main, [*args, "--resonance", "D(1232)"])
    assert result.exit_code == 0, result.output
