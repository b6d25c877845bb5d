"""``modelstore eval ID[@VERSION] --input FILE --output FILE``: the intensity of every event.

A thin layer over `modelstore.events.evaluate_file` (and `evaluate_distributed` with ``--dask``).
"""

from __future__ import annotations

import math
from typing import Any

import click

from modelstore.cli._common import get_registry, library_errors
from modelstore.cli.options import backend_option
from modelstore.events.formats import (
    DEFAULT_CHUNK_SIZE,
    GENERIC_COLUMNS,
    INPUT_FORMATS,
    LHCB_COLUMNS,
    OUTPUT_FORMATS,
)


def parse_parameter_value(name: str, text: str) -> float | complex | int:
    """A real (``0.9``, ``1e-3``), integer (``5``, exact) or complex (``1+2j``) command-line value.

    Whether it suits the parameter (its kind and range) is the model's check (``check_overrides``).
    """
    stripped = text.strip().replace(" ", "")
    try:
        value: float | complex | int
        if "j" in stripped.lower():
            value = complex(stripped)
        elif stripped.lstrip("+-").isdigit():
            value = int(stripped)  # exactly: 2**63 - 1 is no float
        else:
            value = float(stripped)
    except ValueError:
        msg = f"--parameter {name}={text}: {text!r} is not a number (complex values as 1+2j)"
        raise click.BadParameter(msg, param_hint="--parameter") from None
    parts = (value.real, value.imag) if isinstance(value, complex) else (value,)
    if not isinstance(value, int) and not all(math.isfinite(p) for p in parts):
        msg = f"--parameter {name}={text}: the value must be finite"
        raise click.BadParameter(msg, param_hint="--parameter")
    return value


def split_names(text: str | None, option: str) -> tuple[str, ...] | None:
    """``a,b`` as ``("a", "b")`` (spaces around names ignored); None stays None.

    Raises:
        click.BadParameter: an empty name.
    """
    if text is None:
        return None
    names = tuple(name.strip() for name in text.split(","))
    if not all(names):
        msg = f"{text!r}: expected comma-separated column names"
        raise click.BadParameter(msg, param_hint=option)
    return names


def parse_parameters(texts: tuple[str, ...]) -> dict[str, float | complex | int]:
    """``NAME=VALUE`` options as a dict (the last ``=`` separates: names may contain one)."""
    parameters: dict[str, float | complex | int] = {}
    for text in texts:
        name, sep, value = text.rpartition("=")
        if not sep or not name:
            msg = f"{text!r}: expected NAME=VALUE (see the names with `modelstore show REF`)"
            raise click.BadParameter(msg, param_hint="--parameter")
        if name in parameters:
            msg = f"{name!r} is given more than once"
            raise click.BadParameter(msg, param_hint="--parameter")
        parameters[name] = parse_parameter_value(name, value)
    return parameters


@click.command("eval")
@click.argument("ref")
@click.option(
    "-i",
    "--input",
    "input_path",
    required=True,
    metavar="FILE|URL",
    help="Event file: ROOT, zarr, npz, npy, csv or parquet; or a zarr store's URL (s3://...).",
)
@click.option(
    "-o",
    "--output",
    "output_path",
    required=True,
    metavar="FILE|URL",
    help="File to write σ1, σ2 and intensity to: zarr, npz, csv, parquet or ROOT; or a zarr"
    " store's URL (s3://...).",
)
@click.option(
    "--input-format",
    type=click.Choice(INPUT_FORMATS),
    default=None,
    help="Input format (default: from the file name).",
)
@click.option(
    "--output-format",
    type=click.Choice(OUTPUT_FORMATS),
    default=None,
    help="Output format (default: from the file name).",
)
@click.option(
    "--tree",
    default=None,
    help=f"Tree of a ROOT input [default: {LHCB_COLUMNS.tree} for the LHCb models,"
    f" {GENERIC_COLUMNS.tree} for others].",
)
@click.option(
    "--sigma1-branch",
    default=None,
    help="Branch or column with σ1 = m²(23) in GeV² (m²(K⁻π⁺) for the LHCb models)"
    f" [default: {LHCB_COLUMNS.sigma1} for the LHCb models, {GENERIC_COLUMNS.sigma1} for others].",
)
@click.option(
    "--sigma2-branch",
    default=None,
    help="Branch or column with σ2 = m²(31) in GeV² (m²(pK⁻) for the LHCb models)"
    f" [default: {LHCB_COLUMNS.sigma2} for the LHCb models, {GENERIC_COLUMNS.sigma2} for others].",
)
@backend_option
@click.option(
    "--chunk-size",
    type=click.IntRange(min=1),
    default=DEFAULT_CHUNK_SIZE,
    show_default=True,
    help="Events read, evaluated and written at a time.",
)
@click.option(
    "--dask",
    "dask_address",
    metavar="ADDRESS|local",
    default=None,
    help="Evaluate a zarr input on a Dask cluster: a scheduler address, or 'local' for a"
    " local cluster of worker processes. Writes zarr.",
)
@click.option(
    "--dask-workers",
    type=click.IntRange(min=1),
    default=None,
    help="Worker processes of a --dask local cluster (default: one per core).",
)
@click.option(
    "-p",
    "--parameter",
    "parameter_texts",
    metavar="NAME=VALUE",
    multiple=True,
    help="Override a parameter's default (repeatable); complex values as 1+2j."
    " `modelstore show REF` lists the names.",
)
@click.option(
    "--quantities",
    metavar="Q,...",
    default="intensity",
    show_default=True,
    help="What to evaluate: intensity, alpha_x, alpha_y, alpha_z (α from version 1.4.0 on).",
)
@click.option(
    "--resonance",
    metavar="NAME",
    default=None,
    help="Evaluate one resonance's contribution alone (K(892), L(1405), D(1232), ...): every"
    " other resonance's couplings set to 0, as `modelstore rates` does for its rates.",
)
@click.option(
    "--columns",
    "keep_columns",
    metavar="A,B,...",
    default=None,
    help="Input columns to write (σ1 and σ2 always are); default: every one.",
)
@click.option(
    "--drop-columns",
    metavar="A,B,...",
    default=None,
    help="Input columns not to write.",
)
@click.option(
    "--overwrite",
    is_flag=True,
    help="Replace the output if it exists (only a file, or a zarr output this tool wrote).",
)
@click.option(
    "--progress/--no-progress",
    default=None,
    help="Show a progress bar over the events (default: when stderr is a terminal and the"
    " input is more than one chunk; MODELSTORE_PROGRESS=0/1 overrides the guess).",
)
@click.pass_context
@library_errors
def eval_command(
    ctx: click.Context,
    ref: str,
    input_path: str,
    output_path: str,
    input_format: str | None,
    output_format: str | None,
    tree: str | None,
    sigma1_branch: str | None,
    sigma2_branch: str | None,
    backend: str,
    chunk_size: int,
    dask_address: str | None,
    dask_workers: int | None,
    parameter_texts: tuple[str, ...],
    quantities: str,
    resonance: str | None,
    keep_columns: str | None,
    drop_columns: str | None,
    overwrite: bool,
    progress: bool | None,
) -> None:
    """Evaluate REF's intensity (or α, see --quantities) for every event of --input.

    With --resonance NAME, that resonance's contribution alone (the other resonances'
    couplings set to 0); a name the model lacks is refused with the list of its resonances.

    The output holds the input's columns (those of one integer or float per event, in the
    input's order; --columns or --drop-columns choose) followed by the quantities.
    REF is ID[@VERSION], an upstream title or index. The output is written under a temporary
    name and renamed when complete, so an interrupted run leaves no truncated output.
    """
    from modelstore.events import Columns, columns_for, evaluate_distributed, evaluate_file
    from modelstore.events.evaluate import (
        check_overrides,
        check_quantities,
        resonance_overrides,
    )
    from modelstore.model import published_model
    from modelstore.progress import counter

    if dask_workers is not None and dask_address != "local":
        msg = "--dask-workers applies to --dask local only"
        raise click.UsageError(msg)
    if keep_columns is not None and drop_columns is not None:
        msg = "give --columns or --drop-columns, not both"
        raise click.UsageError(msg)
    selection: dict[str, Any] = {
        "keep_columns": split_names(keep_columns, "--columns"),
        "drop_columns": split_names(drop_columns, "--drop-columns") or (),
        "quantities": split_names(quantities, "--quantities"),
    }
    if dask_address is not None and (keep_columns or drop_columns or quantities != "intensity"):
        msg = (
            "--columns, --drop-columns and --quantities do not apply with --dask"
            " (it writes σ1, σ2 and the intensity)"
        )
        raise click.UsageError(msg)
    parameters = parse_parameters(parameter_texts)
    model = published_model(ref, backend=backend, registry=get_registry(ctx))
    default = columns_for(model.manifest)
    columns = Columns(
        sigma1=default.sigma1 if sigma1_branch is None else sigma1_branch,
        sigma2=default.sigma2 if sigma2_branch is None else sigma2_branch,
        tree=default.tree if tree is None else tree,
    )
    overrides = check_overrides(model, parameters)  # before any work, on either path
    check_quantities(model, selection["quantities"])
    resonance_overrides(model, overrides, resonance)
    options: dict[str, Any] = {
        "parameters": overrides,
        "input_format": input_format,
        "output_format": output_format,
        "columns": columns,
        "chunk_size": chunk_size,
        "overwrite": overwrite,
        "resonance": resonance,
    }
    with counter(desc="events", unit=" events", show=progress) as report:
        if dask_address is None:
            result = evaluate_file(
                model, input_path, output_path, progress=report, **options, **selection
            )
        else:
            result = evaluate_distributed(
                model,
                input_path,
                output_path,
                scheduler=dask_address,
                backend=backend,
                n_workers=dask_workers,
                progress=report,
                **options,
            )
    invalid = f", {result.invalid} invalid inputs" if result.invalid else ""
    click.echo(
        f"{result.model}: {result.events} events ({result.outside} outside the Dalitz region"
        f"{invalid}) -> {result.output} in {result.seconds:.1f} s ({result.backend})"
    )
    if result.skipped:
        click.echo(
            "note: input columns not written (not one integer or float per event): "
            + ", ".join(result.skipped),
            err=True,
        )
    if result.invalid:
        click.echo(
            f"warning: {result.invalid} events have a NaN, infinite or negative σ1 or σ2"
            " (intensity NaN)",
            err=True,
        )
