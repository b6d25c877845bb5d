"""``modelstore rates``: the table, LHCb's column and pulls, --alpha, --interference, --json."""

from __future__ import annotations

import json
import re

import pytest
from click.testing import CliRunner

from modelstore import PublishedModel
from modelstore.cli import main
from modelstore.cli._table import display_width
from modelstore.dalitz.paper import PAPER_ALPHA_SIGN

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
    assert "LHCb rate" in out and "% ± stat" in out and "28.60 ± 0.29" in out and "pull" in out


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


def cells(line: str) -> list[str]:
    return re.split(r"\s{2,}", line.strip())


def test_alpha_columns_keep_one_convention_and_unit_each() -> None:
    code, out = run("default", "-n", "5000", "--alpha")
    assert code == 0, out
    lines = out.splitlines()
    names, units = cells(lines[1]), cells(lines[2])
    assert names == ["resonance", "rate", "LHCb rate", "pull", "ᾱx", "ᾱy", "ᾱz", "ᾱz",
                     "LHCb ᾱz", "pull"]  # fmt: skip
    assert units == ["%", "% ± stat", "σ_stat", "DPD, ×1", "DPD, ×1", "DPD, ×1",
                     "LHCb, ×10⁻³", "×10⁻³ ± stat", "σ_stat"]  # fmt: skip
    compared = 0
    for line in lines[3:]:
        row = cells(line)
        if len(row) != 10:
            continue
        name, ours_dpd, ours_lhcb, lhcb = row[0], float(row[6]), float(row[7]), row[8]
        # the same quantity in two conventions: the paper's sign and 10⁻³ units
        assert ours_lhcb == pytest.approx(1000 * PAPER_ALPHA_SIGN[name[0]] * ours_dpd, abs=0.6)
        assert abs(ours_dpd) <= 1 and abs(float(lhcb.split("±")[0])) > 1  # 10⁻³ units there
        if abs(ours_lhcb) > 100:  # and the paper agrees in sign with ours in its convention
            assert (ours_lhcb > 0) == (float(lhcb.split("±")[0]) > 0)
        compared += 1
    assert compared == 11  # every resonance but K(892)


def test_columns_aligned_for_any_name_length(monkeypatch: pytest.MonkeyPatch) -> None:
    long_name = "L(1405)-with-a-name-far-longer-than-any-column-width"
    rates = {"K(892)": 0.25, long_name: 0.5, "D(1232)": 0.125}
    alpha = dict.fromkeys(rates, (0.0, 0.0, 0.5))
    monkeypatch.setattr(PublishedModel, "decay_rates", lambda self, n, seed: rates)
    monkeypatch.setattr(PublishedModel, "averaged_polarimeter", lambda self, n, seed: alpha)
    code, out = run("default", "-n", "5000", "--alpha", "--compare")
    assert code == 0, out
    table = out.splitlines()[1:6]  # two header lines and three rows
    assert long_name in table[2]
    full = [line for line in table if "D(1232)" in line]  # the only row with every cell
    widths = {display_width(line) for line in (table[0], table[1], *full)}
    assert len(widths) == 1  # a full row ends where the header does
    ends = set()
    for line, value in zip(table[2:], ("50.00", "25.00", "12.50"), strict=True):
        ends.add(display_width(line[: line.index(value) + len(value)]))
    header_end = display_width(table[0][: table[0].index("rate") + len("rate")])
    assert ends == {header_end}  # the rate column lines up under its header
