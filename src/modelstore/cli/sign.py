"""``modelstore sign --key KEY``: verify the registry, then sign its index as it is now."""

from __future__ import annotations

from pathlib import Path

import click

from modelstore.cli._common import get_registry, library_errors


@click.command()
@click.option(
    "--key",
    "keys",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    multiple=True,
    required=True,
    help="Ed25519 private key (repeatable).",
)
@click.pass_context
@library_errors
def sign(ctx: click.Context, keys: tuple[Path, ...]) -> None:
    """Sign the index of the registry (writes manifests/index.json.sig).

    Every manifest and file is verified first. Run it after each publish into a registry
    that is shared, or publish with `modelstore publish --sign KEY`.
    """
    from modelstore.trust.signing import load_private_key

    private = [load_private_key(k) for k in keys]
    registry = get_registry(ctx)
    status = registry.sign(private)
    click.echo(
        f"signed {registry.where('manifests/index.json')}"
        f" (index_version {status.index.index_version},"
        f" {status.digest}) with {', '.join(status.signers)}"
    )
    untrusted = [kid for kid in status.signers if kid not in registry.policy.keys]
    if untrusted:
        click.echo(
            f"note: this client does not trust {', '.join(untrusted)}; clients need the public key"
            " (MODELSTORE_TRUSTED_KEYS or <config>/trusted-keys/) to accept the signature",
            err=True,
        )
