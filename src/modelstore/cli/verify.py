"""``modelstore verify [REF...]``: check every file's size and digest.

With ``--numeric``, each version's stored reference values are also re-evaluated with every
available backend (`modelstore.backends.numeric`; relative tolerance 1e-9, NaN exactly where
stored).

Exit status: 0 all verified, 1 a mismatch or missing file, 2 could not check.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from modelstore.cli._common import error_line, get_registry, printable
from modelstore.errors import ModelstoreError

if TYPE_CHECKING:
    from modelstore.backends.numeric import NumericCheck

EXIT_OK, EXIT_BAD, EXIT_UNCHECKED = 0, 1, 2


@click.command()
@click.argument("refs", nargs=-1)
@click.option("-q", "--quiet", is_flag=True, help="Print only problems and the summary.")
@click.option(
    "--numeric",
    is_flag=True,
    help="Also re-evaluate each version's reference values with every available backend"
    " (relative tolerance 1e-9).",
)
@click.option(
    "--latest",
    is_flag=True,
    help="Without REFS: only the latest version of each model (default: every version).",
)
@click.option(
    "--lock",
    "lock_file",
    type=click.Path(dir_okay=False),
    default=None,
    help="Verify exactly the versions and manifests pinned by this lock file.",
)
@click.pass_context
def verify(
    ctx: click.Context,
    refs: tuple[str, ...],
    quiet: bool,
    lock_file: str | None = None,
    numeric: bool = False,
    latest: bool = False,
) -> None:
    """Verify REFS (default: every version in the registry), one line per file."""
    try:
        registry = get_registry(ctx)
        if lock_file is not None:
            from modelstore.trust.lockfile import read_lock, verify_lock

            checks = verify_lock(registry, read_lock(lock_file))
        else:
            if latest and not refs:
                refs = tuple(sorted(registry.existing_index().models))  # an id means its latest
            checks = registry.verify(list(refs) or None)
        numeric_checks: list[NumericCheck] = []
        if numeric:
            from modelstore.backends.numeric import refs_verified, summarize, verify_numeric

            numeric_checks = verify_numeric(registry, refs_verified(checks))
            checks = [*checks, *numeric_checks]  # type: ignore[list-item]
    except (ModelstoreError, OSError) as exc:
        click.echo(f"error: could not check: {error_line(exc)}", err=True)
        sys.exit(EXIT_UNCHECKED)
    for check in checks:
        if check.status == "ok" and quiet:
            continue
        line = f"{check.status.upper():<8} {check.model:<32} {check.name:<20} {check.detail}"
        click.echo(printable(line), err=check.status != "ok")
    bad = sum(c.status in ("mismatch", "missing") for c in checks)
    unchecked = sum(c.status == "error" for c in checks)
    if numeric_checks:
        for line in summarize(numeric_checks):
            click.echo(line)
    click.echo(f"{len(checks) - bad - unchecked} verified, {bad} failed, {unchecked} not checked")
    if bad:
        sys.exit(EXIT_BAD)
    if unchecked or not checks:
        sys.exit(EXIT_UNCHECKED)
    sys.exit(EXIT_OK)
