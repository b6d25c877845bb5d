"""``modelstore rates REF``: decay rates, LHCb's values and pulls, ᾱ and interference terms."""

from __future__ import annotations

import json
from typing import Any

import click

from modelstore.cli._common import get_registry, library_errors, printable
from modelstore.cli._table import table_lines
from modelstore.cli.options import backend_option
from modelstore.dalitz.rates import MAX_POINTS

PAPER_MODEL = "default"  # the paper's table is for the default model


@click.command()
@click.argument("ref")
@click.option(
    "-n",
    "--points",
    type=click.IntRange(min=1000, max=MAX_POINTS),
    default=1_000_000,
    show_default=True,
    help="Quasi-random phase-space points of the average.",
)
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True)
@click.option(
    "--compare/--no-compare",
    default=None,
    help="Show LHCb's published values ± stat and the pulls (default: for the default model).",
)
@click.option(
    "--alpha",
    is_flag=True,
    help="Add each resonance's averaged polarimeter ᾱ in its own chain, in the Dalitz-plot"
    " decomposition's sign (units of 1); with LHCb's values, ᾱz also in the paper's sign and"
    " units (10⁻³) next to the paper's.",
)
@click.option("--interference", is_flag=True, help="Add the interference term of each pair (in %).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@backend_option
@click.pass_context
@library_errors
def rates(
    ctx: click.Context,
    ref: str,
    points: int,
    seed: int,
    compare: bool | None,
    alpha: bool,
    interference: bool,
    as_json: bool,
    backend: str,
) -> None:
    """REF's decay rates: each resonance alone, integrated over the region, over the total.

    For the default model, LHCb's published values (LHCb-PAPER-2022-002) are shown next to
    ours with the pull (ours − paper) / stat.
    """
    from modelstore.dalitz.paper import CITATION
    from modelstore.dalitz.paper import compare as paper_compare
    from modelstore.model import published_model

    model = published_model(ref, backend=backend, registry=get_registry(ctx))
    show_paper = model.model_id == PAPER_MODEL if compare is None else compare
    result = model.decay_rates(points, seed)
    doc: dict[str, Any] = {"model": model.ref, "points": points, "seed": seed, "rates": result}
    rows = {c.name: c for c in paper_compare("rate", result)} if show_paper else {}
    averaged = model.averaged_polarimeter(points, seed) if alpha else {}
    alpha_rows = (
        {c.name: c for c in paper_compare("alpha_z", {k: v[2] for k, v in averaged.items()})}
        if show_paper
        else {}
    )
    terms = model.interference_terms(points, seed) if interference else {}
    if show_paper:
        doc["paper"] = {
            "citation": CITATION,
            "rates_percent": {k: _paper_json(c) for k, c in rows.items()},
        }
        if alpha:
            doc["paper"]["alpha_z_1e-3"] = {k: _paper_json(c) for k, c in alpha_rows.items()}
    if alpha:
        doc["averaged_polarimeter"] = {k: list(v) for k, v in averaged.items()}
    if interference:
        doc["interference"] = {f"{a}|{b}": value for (a, b), value in terms.items()}
    if as_json:
        click.echo(json.dumps(doc))
        return
    for line in _rate_lines(model.ref, points, seed, result, rows, averaged, alpha_rows, alpha):
        click.echo(line)
    if interference:
        click.echo("interference terms (%), rates + terms = " + _sum_text(result, terms))
        pairs = sorted(terms.items(), key=lambda item: -abs(item[1]))
        table = [[printable(f"{a} × {b}"), f"{100 * value:+.2f}"] for (a, b), value in pairs]
        for line in table_lines([], table, [True, False]):
            click.echo(line)
    if show_paper:
        click.echo(f"LHCb: {CITATION}; pull = (ours − LHCb) / LHCb's stat uncertainty")


def _rate_lines(
    ref: str,
    points: int,
    seed: int,
    result: dict[str, float],
    rows: dict[str, Any],
    averaged: dict[str, tuple[float, float, float]],
    alpha_rows: dict[str, Any],
    alpha: bool,
) -> list[str]:
    """The rates table: one convention and unit per column, named in its two header lines."""
    show_paper = bool(rows)
    headers = [["resonance", "rate"], ["", "%"]]
    left = [True, False]
    if show_paper:
        headers[0] += ["LHCb rate", "pull"]
        headers[1] += ["% ± stat", "σ_stat"]
        left += [False, False]
    if alpha:
        headers[0] += ["ᾱx", "ᾱy", "ᾱz"]
        headers[1] += ["DPD, ×1"] * 3
        left += [False] * 3
        if show_paper:
            headers[0] += ["ᾱz", "LHCb ᾱz", "pull"]
            headers[1] += ["LHCb, ×10⁻³", "×10⁻³ ± stat", "σ_stat"]
            left += [False] * 3
    table = []
    for name, rate in sorted(result.items(), key=lambda item: -item[1]):
        row = [printable(name), f"{100 * rate:.2f}"]
        if show_paper:
            row += _paper_cells(rows.get(name), "{:.2f}")
        if alpha:
            row += [f"{x:+.3f}" for x in averaged[name]]
            if show_paper:
                compared = alpha_rows.get(name)
                row += ["—" if compared is None else f"{compared.ours:+.0f}"]
                row += _paper_cells(compared, "{:+.0f}")
        table.append(row)
    table.append(["sum", f"{100 * sum(result.values()):.2f}"])
    lines = [f"{ref}: decay rates, {points} phase-space points, seed {seed}"]
    lines += table_lines(headers, table, left)
    if alpha:
        lines.append(
            "ᾱ: each resonance alone, in its own decay chain; DPD: the Dalitz-plot"
            " decomposition's sign (modelstore's averaged_polarimeter), in units of 1"
        )
        if show_paper:
            lines.append(
                "LHCb: the paper's sign (α_z of the Λ and Δ chains flipped), in units of 10⁻³;"
                " K(892)'s ᾱz is defined differently there and not compared"
            )
    return lines


def _paper_cells(row: Any, fmt: str) -> list[str]:
    """``value ± stat`` and the pull, or a dash and nothing when the paper has no value."""
    if row is None:
        return ["—", ""]
    text = f"{fmt.format(row.paper.value)} ± {fmt.format(row.paper.stat).lstrip('+')}"
    return [text, f"{row.pull:+.2f}"]


def _paper_json(row: Any) -> dict[str, float]:
    return {
        "ours": row.ours,
        "value": row.paper.value,
        "stat": row.paper.stat,
        "syst": row.paper.syst,
        "other": row.paper.other,
        "pull": row.pull,
    }


def _sum_text(result: dict[str, float], terms: dict[tuple[str, str], float]) -> str:
    return f"{100 * (sum(result.values()) + sum(terms.values())):.2f}"
