"""``modelstore list``: every model and its versions."""

from __future__ import annotations

import click

from modelstore.cli._common import get_registry, library_errors, printable
from modelstore.format.names import version_key


@click.command("list")
@click.pass_context
@library_errors
def list_models(ctx: click.Context) -> None:
    """List the models of the registry with their versions (latest last)."""
    registry = get_registry(ctx)
    index = registry.existing_index()
    for model_id, entry in index.models.items():
        versions = " ".join(sorted(entry.versions, key=version_key))
        upstream = "-" if entry.upstream_index is None else str(entry.upstream_index)
        line = f"{model_id:<24} {upstream:>2}  {versions:<16} {entry.title}"
        if entry.upstream_index is None:  # a model of its own: its decay, from the manifest
            about = registry.manifest(f"{model_id}@{entry.latest}").about
            if about is not None and about.decay and about.decay != entry.title:
                line += f"  [{about.decay}]"
        click.echo(printable(line))
