"""``modelstore publish``: build models from upstream's definitions and store them."""

from __future__ import annotations

import time

import click

from modelstore.cli._common import get_registry, library_errors
from modelstore.publish.catalog import LHCB_MODELS


@click.command()
@click.argument("models", nargs=-1)
@click.option("--version", "version", required=True, help="Version to publish, e.g. 1.0.0.")
@click.option(
    "-j",
    "--jobs",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    help="Models built at once, in worker processes.",
)
@click.option(
    "--native/--no-native",
    default=True,
    show_default=True,
    help="Generate the C source for the native evaluator.",
)
@click.option(
    "--sign",
    "sign_keys",
    type=click.Path(dir_okay=False, exists=True),
    multiple=True,
    help=(
        "Sign the index with this Ed25519 private key when done (repeatable; default: your own"
        " key, <config>/own-signing.key, created on first use)."
    ),
)
@click.option(
    "--no-sign",
    is_flag=True,
    help="Leave the index unsigned (its code then runs only where the folder is named trusted).",
)
@click.pass_context
@library_errors
def publish(
    ctx: click.Context,
    models: tuple[str, ...],
    version: str,
    jobs: int,
    native: bool,
    sign_keys: tuple[str, ...] = (),
    no_sign: bool = False,
) -> None:
    """Build MODELS (ids or upstream indices; default: all 18) and publish them as VERSION."""
    from modelstore.publish.build import publish_models

    by_id = {entry.model_id: i for i, entry in enumerate(LHCB_MODELS)}
    indices = []
    for name in models or [e.model_id for e in LHCB_MODELS]:
        if name in by_id:
            indices.append(by_id[name])
        elif name.isascii() and name.isdigit() and len(name) < 6 and int(name) < len(LHCB_MODELS):
            indices.append(int(name))
        else:
            raise click.BadParameter(f"unknown upstream model {name!r}", param_hint="MODELS")
    registry = get_registry(ctx)
    from modelstore.trust.signing import load_private_key

    if sign_keys and no_sign:
        raise click.UsageError("--sign and --no-sign exclude each other")
    signers = [load_private_key(k) for k in sign_keys]  # before the long build: fail early
    if not signers and not no_sign:
        from modelstore.trust.own_key import own_signing_key

        signers = [own_signing_key()]
    start = time.perf_counter()

    def report(result):
        click.echo(
            f"{result.status:<10} {result.model_id}@{result.version}  {result.seconds:6.1f} s"
        )

    results = publish_models(registry, indices, version, jobs=jobs, native=native, on_result=report)
    click.echo(f"{len(results)} models in {time.perf_counter() - start:.1f} s (jobs={jobs})")
    if signers:
        status = registry.sign(signers)
        click.echo(
            f"signed index_version {status.index.index_version} with {', '.join(status.signers)}"
        )
