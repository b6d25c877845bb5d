"""``modelstore rates REF``: decay rates, LHCb's values and pulls, ᾱ and interference terms."""

from __future__ import annotations

import json
from typing import Any

import click

from modelstore.cli._common import get_registry, library_errors
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
    "--alpha", is_flag=True, help="Add each resonance's averaged polarimeter ᾱ (own chain)."
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
    click.echo(f"{model.ref}: decay rates (%), {points} phase-space points, seed {seed}")
    header = f"  {'':<10} {'rate':>7}"
    header += f"  {'LHCb ± stat':>14} {'pull':>6}" if show_paper else ""
    header += f"  {'ᾱx':>7} {'ᾱy':>7} {'ᾱz':>7}" if alpha else ""
    header += f"  {'LHCb ᾱz ± stat':>16} {'pull':>6}" if alpha and show_paper else ""
    click.echo(header)
    for name, rate in sorted(result.items(), key=lambda item: -item[1]):
        line = f"  {name:<10} {100 * rate:7.2f}"
        if show_paper:
            line += _paper_cells(rows.get(name), 14, "{:.2f}")
        if alpha:
            line += "  " + " ".join(f"{x:+7.3f}" for x in averaged[name])
            if show_paper:
                line += _paper_cells(alpha_rows.get(name), 16, "{:+.0f}")
        click.echo(line)
    click.echo(f"  {'sum':<10} {100 * sum(result.values()):7.2f}")
    if interference:
        click.echo("interference terms (%), rates + terms = " + _sum_text(result, terms))
        for (a, b), value in sorted(terms.items(), key=lambda item: -abs(item[1])):
            click.echo(f"  {a + ' × ' + b:<22} {100 * value:+7.2f}")
    if show_paper:
        click.echo(f"LHCb: {CITATION}; pull = (ours − LHCb) / stat")
        if alpha:
            click.echo("ᾱz: LHCb's sign convention for Λ and Δ chains applied; K(892) not compared")


def _paper_cells(row: Any, width: int, fmt: str) -> str:
    if row is None:
        return f"  {'—':>{width}} {'':>6}"
    text = f"{fmt.format(row.paper.value)} ± {fmt.format(row.paper.stat).lstrip('+')}"
    return f"  {text:>{width}} {row.pull:+6.2f}"


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
