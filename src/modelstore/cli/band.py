"""``modelstore band REF --quantity alpha_z --grid N -o band.json``: the spread over the models.

A thin layer over `modelstore.dalitz.band.model_spread` and `write_band`.
"""

from __future__ import annotations

from pathlib import Path

import click

from modelstore.cli._common import get_registry, library_errors
from modelstore.cli.options import backend_option
from modelstore.dalitz.band import QUANTITIES
from modelstore.dalitz.field import MAX_GRID


@click.command()
@click.argument("ref")
@click.option(
    "--quantity",
    type=click.Choice(QUANTITIES),
    default="alpha_z",
    show_default=True,
    help="α⃗'s component, |α⃗| (alpha_abs, from 1.4.0 on), or the intensity: each model's"
    " intensity divided by its own mean over the grid's points inside the Dalitz region (its"
    " mean there is 1), so that the models' shapes compare.",
)
@click.option(
    "--grid",
    type=click.IntRange(min=2, max=MAX_GRID),
    default=100,
    show_default=True,
    help="Points per axis of the square σ1 × σ2 grid.",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help=".json: the arrays; another suffix (png, pdf, ...): a picture (modelstore[plot]). "
    "Without it, a summary line.",
)
@click.option(
    "--overwrite",
    is_flag=True,
    help="Replace the output file if it exists (a FIFO or /dev/null is written into, never"
    " replaced).",
)
@click.option(
    "--against",
    "against",
    multiple=True,
    metavar="REF",
    help="A model to take into the envelope (repeatable) instead of the LHCb catalog's"
    " alternatives (indices 1..17), which a model of another decay has not got.",
)
@backend_option
@click.pass_context
@library_errors
def band(
    ctx: click.Context,
    ref: str,
    quantity: str,
    grid: int,
    output: Path | None,
    overwrite: bool,
    against: tuple[str, ...],
    backend: str,
) -> None:
    """REF's QUANTITY and its min/max envelope over other models: the alternative models
    (indices 1..17) for LHCb's, the --against models for any.

    A progress bar shows on a terminal (MODELSTORE_PROGRESS=0 hides it, =1 forces it).
    """
    import numpy as np

    from modelstore.dalitz.band import model_spread, write_band
    from modelstore.model import published_model

    if output is not None:  # fail before 18 evaluations
        from modelstore.outputs import check_output_path

        check_output_path(output, overwrite, streams=True)
        if output.suffix.lower() != ".json":
            from modelstore._optional import require

            require("matplotlib.figure", "plots")
    registry = get_registry(ctx)
    model = published_model(ref, backend=backend, registry=registry)
    others = [published_model(r, backend=backend, registry=registry) for r in against]
    spread = model_spread(model, quantity, grid, alternatives=others or None)
    width = spread["max"] - spread["min"]
    finite = np.isfinite(width)
    summary = (
        f"{model.ref}: {quantity} over {len(spread['models'])} models, {int(finite.sum())} points;"
        f" envelope width mean {np.mean(width[finite]):.4f}, max {np.max(width[finite]):.4f}"
        if finite.any()
        else f"{model.ref}: {quantity}: no point inside the Dalitz region on this grid"
    )
    if output is not None:
        summary += f"; {write_band(spread, model, output, overwrite=overwrite)}"
    click.echo(summary)
