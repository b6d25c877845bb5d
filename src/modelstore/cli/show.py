"""``modelstore show ID[@VERSION]``: the manifest of one version."""

from __future__ import annotations

import click

from modelstore.cli import get_registry, library_errors


@click.command()
@click.argument("ref")
@click.option("--json", "as_json", is_flag=True, help="Print the manifest as JSON.")
@click.pass_context
@library_errors
def show(ctx: click.Context, ref: str, as_json: bool) -> None:
    """Show the verified manifest of REF (ID[@VERSION], title or upstream index)."""
    registry = get_registry(ctx)
    manifest = registry.manifest(ref)
    if as_json:
        click.echo(manifest.to_bytes().decode(), nl=False)
        return
    _, _, digest = registry.resolve(ref)
    click.echo(f"{manifest.model_id}@{manifest.version}  {manifest.title}")
    click.echo(f"manifest  {digest}")
    click.echo(f"upstream  polarimetry-lc2pkpi model_id={manifest.upstream_index}")
    click.echo(f"inputs    {', '.join(manifest.inputs)}")
    click.echo(f"expression {manifest.provenance['expression_digest']}")
    click.echo("files:")
    for f in manifest.files:
        click.echo(f"  {f.name:<20} {f.size:>9}  {f.digest}  {f.role} ({f.media_type})")
    click.echo(f"parameters ({len(manifest.parameters)}):")
    for p in manifest.parameters:
        unc = ""
        if p.uncertainty is not None and p.uncertainty.get("hesse") is not None:
            unc = f" ± {p.uncertainty['hesse']}"
        click.echo(f"  {p.name} = {p.value}{unc}")
