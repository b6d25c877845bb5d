"""``modelstore leftovers [--remove]``: temporaries killed writers left in a registry folder."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from modelstore.cli._common import get_registry, library_errors, printable

if TYPE_CHECKING:
    from collections.abc import Sequence

    from modelstore.store.leftovers import Leftover


def report(leftovers: Sequence[Leftover], removed: Sequence[Leftover] | None, where: str) -> None:
    """Print each leftover, then one line: how many there are, or how many were removed.

    Never raises.
    """
    for leftover in leftovers:
        click.echo(printable(leftover.describe()))
    size = sum(leftover.size for leftover in leftovers)
    busy = sum(leftover.busy for leftover in leftovers)
    kept = f"; {busy} kept (may be in progress)" if busy else ""
    if removed is None:
        hint = "; remove them with --remove" if len(leftovers) > busy else ""
        click.echo(printable(f"{len(leftovers)} leftovers ({size} bytes) in {where}{kept}{hint}"))
    else:
        gone = sum(leftover.size for leftover in removed)
        click.echo(printable(f"removed {len(removed)} leftovers ({gone} bytes) from {where}{kept}"))


@click.command("leftovers")
@click.option(
    "--remove",
    "--yes",
    "remove",
    is_flag=True,
    help="Delete them (holding the registry's publish lock); otherwise they are only listed.",
)
@click.option(
    "--wait",
    type=click.FloatRange(min=0),
    default=10.0,
    show_default=True,
    help="Seconds to wait for a publisher that holds the lock, with --remove.",
)
@click.option(
    "--outputs",
    "outputs",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Instead: the .NAME.partial-* files and folders killed eval, get, field, band and plot "
    "runs left in this folder (kept if changed in the last 15 min).",
)
@click.pass_context
@library_errors
def leftovers(ctx: click.Context, remove: bool, wait: float, outputs: Path | None) -> None:
    """List the .tmp-* files that killed publishes, signs and pushes left in a registry folder.

    Nothing else is ever listed or removed; files a write in progress may own are kept.
    """
    from modelstore.registry import registry_leftovers, remove_registry_leftovers

    if outputs is not None:
        from modelstore.outputs import output_leftovers
        from modelstore.store.leftovers import remove_leftovers

        partial = output_leftovers(outputs)
        report(partial, remove_leftovers(partial) if remove else None, str(outputs))
        return
    registry = get_registry(ctx)
    found = registry_leftovers(registry)
    if remove:
        removed = remove_registry_leftovers(registry, wait=wait)
        report(removed, removed, registry.location)
    else:
        report(found, None, registry.location)
