"""``modelstore show`` lists each parameter's ASCII alias; ``-p`` takes names or aliases."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from click.testing import CliRunner
from event_samples import REF, SEED_SIGMA1, SEED_SIGMA2, fast_backend, write_root

from modelstore import published_model
from modelstore.cli import main
from modelstore.format.aliases import parameter_aliases


def run(*args: str) -> object:
    return CliRunner().invoke(main, list(args))


def test_show_prints_each_alias_beside_its_name(embedded) -> None:
    result = run("show", "default@1.4.0")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    manifest = embedded.manifest("default@1.4.0")
    aliases = parameter_aliases(p.name for p in manifest.parameters)
    assert aliases
    for alias, name in aliases.items():
        assert any(line.startswith(f"  {name}  [{alias}] = ") for line in lines), alias
    assert "  m0 = " in result.output  # an identifier is its own alias: nothing added


def test_unknown_model_suggests_the_id() -> None:
    result = run("get", "defualt")
    assert result.exit_code == 1
    assert "no model 'defualt' in this registry; did you mean 'default'?" in result.output


def test_parameter_option_takes_an_alias(tmp_path: Path) -> None:
    import zarr

    backend = fast_backend()
    source = write_root(tmp_path / "in.root", SEED_SIGMA1, SEED_SIGMA2)
    width = r"\Gamma_{K(892)}"
    alias = {n: a for a, n in published_model(REF).parameter_aliases.items()}[width]
    outputs = {}
    for given in (width, alias):
        out = tmp_path / f"{len(given)}.zarr"
        result = run(
            "eval", REF, "-i", str(source), "-o", str(out), "--backend", backend,
            "-p", f"{given}=0.06",
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        group = zarr.open_group(str(out), mode="r")
        outputs[given] = group["intensity"][:]
        # recorded under the manifest's name, whichever was typed
        assert json.loads(group.attrs["modelstore"]["parameters"]) == {width: "0.06"}
    np.testing.assert_array_equal(outputs[width], outputs[alias])


def test_parameter_option_suggests_a_name(tmp_path: Path) -> None:
    source = write_root(tmp_path / "in.root", SEED_SIGMA1, SEED_SIGMA2)
    out = tmp_path / "out.csv"
    result = run("eval", REF, "-i", str(source), "-o", str(out), "-p", "Gamma_K8920=0.06")
    assert result.exit_code == 1
    assert "unknown parameters ['Gamma_K8920']; did you mean 'Gamma_K892'?" in result.output
