"""``modelstore show ID[@VERSION]``: the manifest of one version."""

from __future__ import annotations

import click

from modelstore.cli._common import get_registry, library_errors, printable
from modelstore.format.aliases import parameter_aliases


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

    def echo(line: str) -> None:  # titles and names come from the registry: no raw escapes
        click.echo(printable(line))

    echo(f"{manifest.model_id}@{manifest.version}  {manifest.title}")
    echo(f"manifest  {digest}")
    if manifest.upstream_index is not None:
        echo(f"upstream  polarimetry-lc2pkpi model_id={manifest.upstream_index}")
    if manifest.about is not None:
        _echo_about(echo, manifest.about)
    echo(f"inputs    {', '.join(manifest.inputs)}")
    echo(f"expression {manifest.provenance['expression_digest']}")
    echo("files:")
    for f in manifest.files:
        echo(f"  {f.name:<20} {f.size:>9}  {f.digest}  {f.role} ({f.media_type})")
    alias_of = {
        name: alias for alias, name in parameter_aliases(manifest.parameter_defaults).items()
    }
    echo(f"parameters ({len(manifest.parameters)}; the alias in brackets works as a name too):")
    for p in manifest.parameters:
        unc = ""
        if p.uncertainty is not None and p.uncertainty.get("hesse") is not None:
            unc = f" ± {p.uncertainty['hesse']}"
        alias = f"  [{alias_of[p.name]}]" if p.name in alias_of else ""
        echo(f"  {p.name}{alias} = {p.value}{unc}")


def _echo_about(echo, about) -> None:
    """The manifest's ``about``: decay, particles and axes, people, references, packages."""
    if about.decay:
        echo(f"decay     {about.decay}")
    if about.particles:
        names = ", ".join(
            f"{k}: {p.label}" + ("" if p.mass is None else f" ({p.mass:g} GeV)")
            for k, p in enumerate(about.particles)
        )
        echo(f"particles {names}")
        s1, s2 = about.axis_labels()
        echo(f"axes      sigma1 = {s1}, sigma2 = {s2}")
    if about.description:
        echo(f"about     {about.description}")
    for label, values in (("authors", about.authors), ("references", about.references)):
        if values:
            echo(f"{label:<9} {'; '.join(values)}")
    if about.license:
        echo(f"license   {about.license}")
    if about.packages:
        echo(f"packages  {', '.join(f'{n} {v}' for n, v in about.packages)}")
