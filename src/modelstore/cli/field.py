"""``modelstore field REF --grid N -o field.json``: α⃗ and I on a grid, upstream's JSON."""

from __future__ import annotations

from pathlib import Path

import click

from modelstore.cli._common import get_registry, library_errors
from modelstore.cli.options import backend_option
from modelstore.dalitz.field import MAX_GRID


@click.command()
@click.argument("ref")
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="File to write (atomically), or a FIFO or device to write into (/dev/stdout).",
)
@click.option(
    "--overwrite",
    is_flag=True,
    help="Replace the output file if it exists (a FIFO or /dev/null is written into, never"
    " replaced).",
)
@click.option(
    "--grid",
    type=click.IntRange(min=2, max=MAX_GRID),
    default=100,
    show_default=True,
    help="Points per axis of the square σ1 × σ2 grid.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(("json", "zarr")),
    default=None,
    help="json: upstream's layout (polarimetry.io); zarr: a zarr v3 zip "
    "[default: from the suffix, .zarr/.zip → zarr, else json].",
)
@backend_option
@click.pass_context
@library_errors
def field(
    ctx: click.Context,
    ref: str,
    output: Path,
    overwrite: bool,
    grid: int,
    fmt: str | None,
    backend: str,
) -> None:
    """Write REF's polarimeter field α⃗ and intensity on a GRID × GRID Dalitz grid."""
    from modelstore.dalitz.field import write_field
    from modelstore.model import published_model
    from modelstore.outputs import check_output_path

    check_output_path(output, overwrite, streams=True)  # before loading the model
    model = published_model(ref, backend=backend, registry=get_registry(ctx))
    path = write_field(model, output, grid, fmt, overwrite=overwrite)
    click.echo(f"{model.ref}: {path}")
