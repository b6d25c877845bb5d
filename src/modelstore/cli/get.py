"""``modelstore get ID[@VERSION] -o DIR``: verify, then write the artifact files and manifest."""

from __future__ import annotations

from pathlib import Path

import click

from modelstore.cli import get_registry, library_errors
from modelstore.errors import ModelNotFoundError
from modelstore.export import export_model

FORMATS = {"pickle": "expressions", "srepr": "intensity-srepr", "reference": "reference-values", "c": "native-source"}


@click.command()
@click.argument("ref")
@click.option("-o", "--output", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder to write into (default: ./ID-VERSION).")
@click.option("--format", "formats", type=click.Choice(sorted(FORMATS)), multiple=True,
              help="Write only this format (repeatable); the manifest is always written.")
@click.pass_context
@library_errors
def get(ctx: click.Context, ref: str, output: Path | None, formats: tuple[str, ...]) -> None:
    """Verify REF and write its files and manifest.json into a folder."""
    registry = get_registry(ctx)
    if formats:
        manifest = registry.manifest(ref)
        has = [entry.role for entry in manifest.files]
        lacking = [f for f in formats if FORMATS[f] not in has]
        if lacking:
            available = ", ".join(f for f, role in sorted(FORMATS.items()) if role in has)
            msg = (
                f"{manifest.model_id}@{manifest.version} has no {', '.join(lacking)} format"
                f" (it has: {available})"
            )
            raise ModelNotFoundError(msg)
        roles = [FORMATS[f] for f in formats]
    else:
        roles = [entry.role for entry in registry.manifest(ref).files]
    written = export_model(registry, ref, output, roles)
    for path in written:
        click.echo(str(path))
