"""``modelstore keygen KEYFILE``: a new Ed25519 key pair for signing a registry's index."""

from __future__ import annotations

from pathlib import Path

import click

from modelstore.cli._common import library_errors


@click.command()
@click.argument("keyfile", type=click.Path(dir_okay=False, path_type=Path))
@library_errors
def keygen(keyfile: Path) -> None:
    """Write a private key to KEYFILE (mode 0600) and its public key next to it (.pub).

    Keep the private key out of version control; give the .pub file to the registry's users
    (MODELSTORE_TRUSTED_KEYS, or <config>/trusted-keys/).
    """
    from modelstore.trust.signing import generate_keypair

    if not keyfile.name or keyfile.name in (".", ".."):
        msg = f"{str(keyfile)!r} is not a file name"
        raise click.BadParameter(msg, param_hint="KEYFILE")
    private, public, kid = generate_keypair(keyfile)
    click.echo(f"private key  {private}  (keep it secret)")
    click.echo(f"public key   {public}")
    click.echo(f"key id       {kid}")
