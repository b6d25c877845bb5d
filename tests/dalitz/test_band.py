"""Model spread of α⃗: the nominal value and the envelope over the alternative models."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from modelstore import PublishedModel, published_model
from modelstore.cli import main
from modelstore.dalitz.band import model_spread, quantity_values, write_band
from modelstore.errors import InvalidInputError

REF = "default@1.4.0"


@pytest.fixture(scope="module")
def model() -> PublishedModel:
    return published_model(REF, backend="numpy")  # 18 models: numpy starts fastest


@pytest.fixture(scope="module")
def spread(model: PublishedModel) -> dict:
    return model_spread(model, "alpha_z", 9)


def test_shape_and_models(spread: dict) -> None:
    assert spread["m^2_Kpi"].shape == spread["m^2_pK"].shape == (9,)
    for key in ("nominal", "min", "max"):
        assert spread[key].shape == (9, 9)
    assert len(spread["models"]) == 18
    assert spread["models"][0] == REF
    assert len(set(spread["models"])) == 18


def test_envelope_contains_nominal(spread: dict) -> None:
    finite = np.isfinite(spread["nominal"])
    assert finite.sum() > 20
    assert np.all(np.isfinite(spread["min"][finite]))
    assert np.all(spread["min"][finite] <= spread["nominal"][finite])
    assert np.all(spread["nominal"][finite] <= spread["max"][finite])
    assert np.max((spread["max"] - spread["min"])[finite]) > 0.01  # the models do differ
    assert np.all(np.abs(spread["min"][finite]) <= 1) and np.all(spread["max"][finite] <= 1)


def test_explicit_alternatives_and_abs(model: PublishedModel) -> None:
    other = published_model("ls-couplings@1.4.0", backend="numpy")
    result = model_spread(model, "alpha_abs", 5, alternatives=[other])
    s1, s2 = np.meshgrid(result["m^2_Kpi"], result["m^2_pK"])
    values = quantity_values(other, "alpha_abs", s1, s2)
    np.testing.assert_array_equal(result["max"], np.maximum(result["nominal"], values))
    with pytest.raises(InvalidInputError):
        model_spread(model, "beta", 5, alternatives=[])


def test_outputs(spread: dict, model: PublishedModel, tmp_path: Path) -> None:
    doc = json.loads(write_band(spread, model, tmp_path / "b.json").read_text())
    assert doc["quantity"] == "alpha_z" and len(doc["max"]) == 9
    png = write_band(spread, model, tmp_path / "b.png").read_bytes()
    assert png.startswith(b"\x89PNG")
    with pytest.raises(InvalidInputError):
        write_band(spread, model, tmp_path / "b.unknown")


def test_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MODELSTORE_PROGRESS", raising=False)
    out = tmp_path / "band.json"
    args = ["band", REF, "--grid", "4", "--backend", "numpy", "-o", str(out)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "over 18 models" in result.output
    assert len(json.loads(out.read_text())["models"]) == 18
    assert result.stderr == ""  # not a terminal: no progress


def test_intensity_is_normalised_per_model(model: PublishedModel) -> None:
    other = published_model("ls-couplings@1.3.0", backend="numpy")  # no polarimetry needed
    result = model_spread(model, "intensity", 9, alternatives=[other])
    assert "mean" in result["normalization"]
    s1, s2 = np.meshgrid(result["m^2_Kpi"], result["m^2_pK"])
    inside = np.isfinite(result["nominal"])
    assert inside.sum() > 20
    for m, values in (
        (model, result["nominal"]),
        (other, quantity_values(other, "intensity", s1, s2)),
    ):
        assert np.mean(values[inside]) == pytest.approx(1, rel=1e-12)
        raw = m.intensity(s1, s2)[inside]
        ratio = raw / values[inside]  # one factor per model
        np.testing.assert_allclose(ratio, ratio[0], rtol=1e-12)
        assert ratio[0] == pytest.approx(np.mean(raw), rel=1e-12)
    assert np.all(result["min"][inside] <= result["nominal"][inside])
    assert np.max((result["max"] - result["min"])[inside]) > 0.01


def test_cli_intensity_with_progress(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELSTORE_PROGRESS", "1")
    out = tmp_path / "band.json"
    args = ["band", REF, "--quantity", "intensity", "--grid", "6", "--backend", "numpy"]
    result = CliRunner().invoke(main, [*args, "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "intensity over 18 models" in result.stdout
    assert "of the other models" in result.stderr and "/17 [" in result.stderr  # the bar
    doc = json.loads(out.read_text())
    nominal = np.array(doc["nominal"], dtype=float)
    assert np.nanmean(nominal) == pytest.approx(1, rel=1e-12)
    assert "intensity" in CliRunner().invoke(main, ["band", "--help"]).output


def test_picture_without_matplotlib_fails_first(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import importlib

    real = importlib.import_module

    def fake(name: str, *args: object) -> object:
        if name.startswith("matplotlib"):
            raise ImportError(name)
        return real(name, *args)

    monkeypatch.setattr(importlib, "import_module", fake)
    result = CliRunner().invoke(main, ["band", "no-such-model", "-o", str(tmp_path / "b.png")])
    assert result.exit_code == 1
    assert "pip install 'modelstore[plot]'" in result.output
