"""``modelstore lock ID[@VERSION]...``: print a lock file pinning exact manifests."""

from __future__ import annotations

import click

from modelstore.cli._common import get_registry, library_errors


@click.command()
@click.argument("refs", nargs=-1, required=True)
@click.pass_context
@library_errors
def lock(ctx: click.Context, refs: tuple[str, ...]) -> None:
    """Verify REFS and print a lock file (`modelstore lock default > models.lock`).

    A reference without a version locks the latest one. Check it later, in CI for example, with
    `modelstore verify --lock models.lock`.
    """
    from modelstore.trust.lockfile import format_lock, lock_entries

    registry = get_registry(ctx)
    click.echo(format_lock(lock_entries(registry, refs), registry.location), nl=False)
