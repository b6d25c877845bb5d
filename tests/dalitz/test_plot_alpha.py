"""``modelstore plot --quantity alpha_z``: α⃗ components on a diverging map over [-1, 1]."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from modelstore import published_model
from modelstore.cli import main
from modelstore.dalitz.plot import dalitz_figure
from modelstore.errors import BackendUnavailableError, InvalidInputError

REF = "default@1.4.0"


@pytest.mark.parametrize("quantity", ["alpha_x", "alpha_z", "alpha_abs"])
def test_alpha_figure(quantity: str) -> None:
    model = published_model(REF, backend="auto")
    figure = dalitz_figure(model, resolution=40, quantity=quantity)
    image = figure.axes[0].images[0]
    low, high = image.get_clim()
    assert (low, high) == ((0.0, 1.0) if quantity == "alpha_abs" else (-1.0, 1.0))
    if quantity != "alpha_abs":
        assert image.cmap.name == "RdBu_r"
    data = np.ma.filled(image.get_array(), np.nan)
    finite = data[np.isfinite(data)]
    assert finite.size > 500 and np.all(np.abs(finite) <= 1)


def test_bad_quantity_and_old_version() -> None:
    with pytest.raises(InvalidInputError):
        dalitz_figure(published_model(REF, backend="auto"), resolution=10, quantity="beta")
    with pytest.raises(BackendUnavailableError):
        dalitz_figure(published_model("default@1.1.0", backend="numpy"), quantity="alpha_z")


def test_cli(tmp_path: Path) -> None:
    out = tmp_path / "az.png"
    args = ["plot", REF, "-o", str(out), "--quantity", "alpha_z", "--resolution", "30"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert out.read_bytes().startswith(b"\x89PNG")
