"""``modelstore rates REF [--json]``: each resonance's decay rate (fit fraction)."""

from __future__ import annotations

import json

import click

from modelstore.cli._common import get_registry, library_errors
from modelstore.cli.options import backend_option
from modelstore.dalitz.rates import MAX_POINTS


@click.command()
@click.argument("ref")
@click.option(
    "-n",
    "--points",
    type=click.IntRange(min=1000, max=MAX_POINTS),
    default=1_000_000,
    show_default=True,
    help="Phase-space points of the Monte Carlo average.",
)
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object {resonance: rate}.")
@backend_option
@click.pass_context
@library_errors
def rates(
    ctx: click.Context, ref: str, points: int, seed: int, as_json: bool, backend: str
) -> None:
    """REF's decay rates: each resonance alone, integrated over the region, over the total."""
    from modelstore.model import published_model

    model = published_model(ref, backend=backend, registry=get_registry(ctx))
    result = model.decay_rates(points, seed)
    if as_json:
        click.echo(
            json.dumps({"model": model.ref, "points": points, "seed": seed, "rates": result})
        )
        return
    click.echo(f"{model.ref}: decay rates (%), {points} phase-space points, seed {seed}")
    for name, rate in sorted(result.items(), key=lambda item: -item[1]):
        click.echo(f"  {name:<10} {100 * rate:7.2f}")
    click.echo(f"  {'sum':<10} {100 * sum(result.values()):7.2f}")
