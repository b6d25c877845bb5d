"""``modelstore rates``: the table, LHCb's column and pulls, --alpha, --interference, --json."""

from __future__ import annotations

import json

from click.testing import CliRunner

from modelstore.cli import main

RESONANCES = {
    "K(700)", "K(892)", "K(1430)", "D(1232)", "D(1600)", "D(1700)",
    "L(1405)", "L(1520)", "L(1600)", "L(1670)", "L(1690)", "L(2000)",
}  # fmt: skip


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["rates", *args])
    return result.exit_code, result.output


def test_json_default_model_carries_the_paper() -> None:
    code, out = run("default@1.1.0", "-n", "2000", "--json")
    assert code == 0, out
    doc = json.loads(out)
    assert set(doc["rates"]) == RESONANCES and doc["model"] == "default@1.1.0"
    paper = doc["paper"]["rates_percent"]
    assert set(paper) == RESONANCES and "arXiv:2208.03262" in doc["paper"]["citation"]
    row = paper["D(1232)"]
    assert (row["value"], row["stat"]) == (28.60, 0.29)
    assert row["pull"] == (row["ours"] - row["value"]) / row["stat"]
    assert row["ours"] == 100 * doc["rates"]["D(1232)"]


def test_text_default_model_shows_pulls() -> None:
    code, out = run("default@1.1.0", "-n", "2000")
    assert code == 0, out
    assert "LHCb ± stat" in out and "28.60 ± 0.29" in out and "pull" in out


def test_no_compare_and_other_models() -> None:
    code, out = run("default@1.1.0", "-n", "2000", "--json", "--no-compare")
    assert code == 0 and "paper" not in json.loads(out)
    code, out = run("ls-couplings@1.1.0", "-n", "2000", "--json")
    assert code == 0 and "paper" not in json.loads(out)
    code, out = run("ls-couplings@1.1.0", "-n", "2000", "--compare")
    assert code == 0 and "28.60 ± 0.29" in out


def test_alpha_and_interference() -> None:
    code, out = run("default", "-n", "5000", "--alpha", "--interference", "--json")
    assert code == 0, out
    doc = json.loads(out)
    assert set(doc["averaged_polarimeter"]) == RESONANCES
    assert set(doc["paper"]["alpha_z_1e-3"]) == RESONANCES - {"K(892)"}
    assert len(doc["interference"]) == 66
    total = sum(doc["rates"].values()) + sum(doc["interference"].values())
    assert abs(total - 1) < 1e-9
    code, text = run("default", "-n", "5000", "--alpha", "--interference")
    assert code == 0 and "ᾱz" in text and "-925 ± 25" in text and "rates + terms = 100.00" in text


def test_alpha_needs_polarimetry() -> None:
    code, out = run("default@1.1.0", "-n", "2000", "--alpha")
    assert code != 0
    assert "polarimetry needs a version >= 1.4.0" in out and "Traceback" not in out
    assert len(out.strip().splitlines()) == 1


def test_bad_points() -> None:
    code, out = run("default", "-n", "10")
    assert code != 0 and "10" in out
