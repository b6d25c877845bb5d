"""The polarimeter field export in upstream's JSON layout (and zarr), ``modelstore field``."""

from __future__ import annotations

import io
import json
import os
import stat
import zipfile
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from modelstore import PublishedModel, published_model
from modelstore.cli import main
from modelstore.dalitz.field import polarimetry_field, write_field
from modelstore.errors import InvalidInputError

REF = "default@1.4.0"


@pytest.fixture(scope="module")
def model() -> PublishedModel:
    return published_model(REF, backend="auto")


def test_layout_is_meshgrid(model: PublishedModel) -> None:
    field = polarimetry_field(model, 7)
    x, y = field["m^2_Kpi"], field["m^2_pK"]
    assert x.shape == y.shape == (7,)
    assert field["alpha_z"].shape == field["intensity"].shape == (7, 7)
    i, j = 3, 2
    intensity, alpha = model.intensity_and_polarimeter(x[j], y[i])
    assert field["intensity"][i, j] == pytest.approx(intensity, rel=1e-12)
    np.testing.assert_allclose(
        [field[k][i, j] for k in ("alpha_x", "alpha_y", "alpha_z")], alpha, atol=1e-12
    )
    assert np.isnan(field["alpha_x"][0, 0])  # a corner lies outside the region


def test_json_file(model: PublishedModel, tmp_path: Path) -> None:
    path = write_field(model, tmp_path / "field.json", 9)
    doc = json.loads(path.read_text())
    assert list(doc)[:3] == ["metadata", "m^2_Kpi", "m^2_pK"]
    assert doc["metadata"]["model"] == "default"
    assert len(doc["alpha_y"]) == 9 and all(len(row) == 9 for row in doc["alpha_y"])
    field = polarimetry_field(model, 9)
    np.testing.assert_array_equal(np.array(doc["alpha_y"]), field["alpha_y"])
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~_umask()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_zarr_file(model: PublishedModel, tmp_path: Path) -> None:
    import zarr
    from zarr.storage import MemoryStore

    path = write_field(model, tmp_path / "field.zip", 5)
    with zipfile.ZipFile(io.BytesIO(path.read_bytes())) as zf:
        store = {n: zf.read(n) for n in zf.namelist()}
    from zarr.core.buffer import default_buffer_prototype

    buf = default_buffer_prototype().buffer
    group = zarr.open_group(MemoryStore({k: buf.from_bytes(v) for k, v in store.items()}), mode="r")
    np.testing.assert_array_equal(group["alpha_z"][...], polarimetry_field(model, 5)["alpha_z"])
    assert group.attrs["metadata"]["version"] == "1.4.0"


def test_bad_grid_and_format(model: PublishedModel, tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError):
        polarimetry_field(model, 1)
    with pytest.raises(InvalidInputError):
        write_field(model, tmp_path / "f.json", 5, "csv")


def test_cli(tmp_path: Path) -> None:
    out = tmp_path / "f.json"
    result = CliRunner().invoke(main, ["field", REF, "--grid", "6", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert len(json.loads(out.read_text())["m^2_pK"]) == 6


@pytest.mark.upstream
def test_upstream_importer_reads_it(model: PublishedModel, tmp_path: Path) -> None:
    io_mod = pytest.importorskip("polarimetry.io")
    path = write_field(model, tmp_path / "field.json", 12)
    imported = io_mod.import_polarimetry_field(str(path))
    field = polarimetry_field(model, 12)
    # jnp.array gives float32 unless JAX runs with x64: compare to float32 precision
    assert set(imported) == set(field)
    for key, values in field.items():
        np.testing.assert_allclose(np.asarray(imported[key]), values, rtol=2e-7, atol=1e-7)
    again = io_mod.import_polarimetry_field(str(path), steps=3)
    np.testing.assert_allclose(
        np.asarray(again["alpha_x"]), field["alpha_x"][::3, ::3], rtol=2e-7, atol=1e-7
    )
