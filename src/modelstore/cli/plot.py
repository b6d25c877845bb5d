"""``modelstore plot ID[@VERSION] -o dalitz.png``: the intensity over the Dalitz region."""

from __future__ import annotations

from pathlib import Path

import click

from modelstore.cli._common import get_registry, library_errors
from modelstore.cli.options import backend_option
from modelstore.dalitz.plot import DEFAULT_RESOLUTION, MAX_RESOLUTION, QUANTITIES


@click.command()
@click.argument("ref")
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Picture to write; the format comes from the suffix (png, pdf, svg, ...).",
)
@click.option(
    "--overwrite",
    is_flag=True,
    help="Replace the output file if it exists (a FIFO or /dev/null is written into, never"
    " replaced).",
)
@backend_option
@click.option(
    "--resolution",
    type=click.IntRange(min=2, max=MAX_RESOLUTION),
    default=DEFAULT_RESOLUTION,
    show_default=True,
    help="Grid cells per axis.",
)
@click.option(
    "--dpi",
    type=click.FloatRange(min=10, max=2400),
    default=150,
    show_default=True,
    help="Dots per inch of a raster picture.",
)
@click.option(
    "--quantity",
    type=click.Choice(QUANTITIES),
    default="intensity",
    show_default=True,
    help="What to draw; alpha_x/y/z on a diverging map over [-1, 1] (versions from 1.4.0).",
)
@click.pass_context
@library_errors
def plot(
    ctx: click.Context,
    ref: str,
    output: Path,
    overwrite: bool,
    backend: str,
    resolution: int,
    dpi: float,
    quantity: str,
) -> None:
    """Draw REF's intensity (or α⃗) over the Dalitz region, σ1 = m²(23) against σ2 = m²(31)."""
    from modelstore.dalitz.plot import save_dalitz_plot
    from modelstore.model import published_model
    from modelstore.outputs import check_output_path

    check_output_path(output, overwrite, streams=True)  # before loading the model
    model = published_model(ref, backend=backend, registry=get_registry(ctx))
    path = save_dalitz_plot(
        model, output, resolution=resolution, dpi=dpi, quantity=quantity, overwrite=overwrite
    )
    click.echo(f"{model.ref}: {path}")
