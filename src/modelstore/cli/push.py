"""``modelstore push DEST``: copy the registry to DEST (a folder or URL), verified, index last."""

from __future__ import annotations

from pathlib import Path

import click

from modelstore.cli._common import get_registry, library_errors


@click.command()
@click.argument("dest")
@click.option(
    "--sign",
    "keys",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    multiple=True,
    help="Sign the destination's index with this private key (repeatable).",
)
@click.option("-v", "--verbose", is_flag=True, help="One line per file.")
@click.pass_context
@library_errors
def push(ctx: click.Context, dest: str, keys: tuple[Path, ...], verbose: bool) -> None:
    """Copy every version of the registry (--registry) to DEST.

    Pulling is pushing the other way: `modelstore --registry URL push ./folder`.
    """
    from modelstore.publish.push import push_registry
    from modelstore.registry import Registry
    from modelstore.trust.signing import load_private_key

    private = [load_private_key(k) for k in keys]
    source = get_registry(ctx)
    target = Registry(dest, offline=False)

    def report(status: str, name: str, size: int) -> None:
        if verbose:
            click.echo(f"{status:<9} {name}  {size} bytes")

    result = push_registry(source, target, signing_keys=private, on_file=report)
    click.echo(
        f"pushed {result.versions} versions to {target.location}: {result.uploaded} files uploaded"
        f" ({result.uploaded_bytes} bytes; {result.repaired} of them replaced a corrupt copy),"
        f" {result.present} already there (verified),"
        f" {result.manifests_written} manifests written, index_version {result.index_version}"
    )
    if result.signed_by:
        click.echo(f"index signed by {', '.join(result.signed_by)}")
    else:
        click.echo(
            "warning: the index is unsigned; clients refuse remote registries without a trusted"
            " signature (push with --sign KEY, or run `modelstore sign` there)",
            err=True,
        )
