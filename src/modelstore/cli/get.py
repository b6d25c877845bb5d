"""``modelstore get ID[@VERSION] -o DIR``: verify, then write the artifact files and manifest."""

from __future__ import annotations

from pathlib import Path

import click

from modelstore.cli._common import get_registry, library_errors
from modelstore.errors import ModelNotFoundError
from modelstore.publish.export import export_model

FORMATS = {
    "pickle": ("expressions",),
    "srepr": ("intensity-srepr", "kinematics-srepr", "polarimetry-srepr"),
    "reference": ("reference-values",),
    "c": ("native-source",),
    "python": ("array-source",),
}


@click.command()
@click.argument("ref")
@click.option(
    "-o",
    "--output",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder to write into (default: ./ID-VERSION).",
)
@click.option(
    "--format",
    "formats",
    type=click.Choice(sorted(FORMATS)),
    multiple=True,
    help="Write only this format (repeatable); the manifest is always written.",
)
@click.option(
    "--overwrite",
    is_flag=True,
    help="Replace files of the same names in the folder (otherwise they are an error).",
)
@click.pass_context
@library_errors
def get(
    ctx: click.Context, ref: str, output: Path | None, formats: tuple[str, ...], overwrite: bool
) -> None:
    """Verify REF and write its files and manifest.json into a folder."""
    registry = get_registry(ctx)
    manifest = registry.manifest(ref)
    has = {entry.role for entry in manifest.files}
    if formats:
        # a format is there when its first role is (kinematics.srepr exists from 1.3.0 on only)
        lacking = [f for f in formats if FORMATS[f][0] not in has]
        if lacking:
            available = ", ".join(f for f, roles in sorted(FORMATS.items()) if roles[0] in has)
            msg = (
                f"{manifest.model_id}@{manifest.version} has no {', '.join(lacking)} format"
                f" (it has: {available})"
            )
            raise ModelNotFoundError(msg)
        roles = [role for f in formats for role in FORMATS[f] if role in has]
    else:
        roles = [entry.role for entry in manifest.files]
    written = export_model(registry, ref, output, roles, overwrite=overwrite)
    for path in written:
        click.echo(str(path))
