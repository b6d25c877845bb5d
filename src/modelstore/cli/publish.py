"""``modelstore publish``: the LHCb catalog from upstream, or any model's forms (``--forms``)."""

from __future__ import annotations

import time

import click

from modelstore.cli._common import get_registry, library_errors, printable
from modelstore.publish.catalog import LHCB_MODELS

MAX_FORMS_BYTES = 1 << 30


@click.command()
@click.argument("models", nargs=-1)
@click.option("--version", "version", required=True, help="Version to publish, e.g. 1.0.0.")
@click.option(
    "--forms",
    "forms_file",
    type=click.Path(dir_okay=False, exists=True),
    help="Publish this pickled dict of forms (the seed's exported-model.pkl) as --id.",
)
@click.option("--id", "model_id", help="The id of the model in --forms (required with --forms).")
@click.option("--title", help="Title of the model in --forms (default: its decay, else its id).")
@click.option("--decay", help='The decay, for people: "J/ψ → K⁰ Σ⁺ p̄".')
@click.option(
    "--particles",
    help="Labels of 0, 1, 2, 3 separated by commas (σ1 = m²(23), σ2 = m²(31)): 'J/ψ,K⁰,Σ⁺,p̄'.",
)
@click.option("--description", help="What the model is.")
@click.option("--reference", "references", multiple=True, help="A publication (repeatable).")
@click.option("--author", "authors", multiple=True, help="An author (repeatable).")
@click.option("--license", "license_", help="The model's license (an SPDX id).")
@click.option(
    "--package",
    "packages",
    multiple=True,
    help="NAME=VERSION of a package that produced the model (repeatable).",
)
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
    forms_file: str | None = None,
    model_id: str | None = None,
    title: str | None = None,
    decay: str | None = None,
    particles: str | None = None,
    description: str | None = None,
    references: tuple[str, ...] = (),
    authors: tuple[str, ...] = (),
    license_: str | None = None,
    packages: tuple[str, ...] = (),
) -> None:
    """Publish MODELS (LHCb ids or upstream indices; default: all 18) as VERSION, or with
    --forms FILE --id ID any model's forms. The index is then signed with your own key unless
    --sign or --no-sign says otherwise."""
    signers = _signers(sign_keys, no_sign)  # before any long build: fail early
    if forms_file is None:
        given = [n for n, v in (("--id", model_id), ("--title", title), ("--decay", decay),
                 ("--particles", particles), ("--description", description),
                 ("--reference", references), ("--author", authors),
                 ("--license", license_), ("--package", packages)) if v]  # fmt: skip
        if given:
            raise click.UsageError(f"{', '.join(given)} need(s) --forms FILE")
        _publish_catalog(ctx, models, version, jobs, native)
        _sign(get_registry(ctx), signers)
        return
    if models:
        raise click.UsageError("give either MODELS (the LHCb catalog) or --forms FILE, not both")
    if not model_id:
        raise click.UsageError("--forms needs --id ID")
    package_versions = {}
    for item in packages:
        name, sep, value = item.partition("=")
        if not sep or not name.strip() or not value.strip():
            raise click.BadParameter(f"expected NAME=VERSION, got {item!r}", param_hint="--package")
        package_versions[name.strip()] = value.strip()
    from pathlib import Path

    from modelstore.publish.generic import publish_forms, read_forms_file

    path = Path(forms_file)
    if path.stat().st_size > MAX_FORMS_BYTES:
        raise click.BadParameter(f"{forms_file} is larger than 1 GiB", param_hint="--forms")
    forms = read_forms_file(path.read_bytes(), str(forms_file))
    registry = get_registry(ctx)
    outcome = publish_forms(
        forms,
        model_id,
        version,
        registry=registry,
        title=title,
        decay=decay,
        particles=[p.strip() for p in particles.split(",")] if particles else (),
        description=description,
        references=references,
        authors=authors,
        license=license_,
        packages=package_versions or None,
        native=native,
        signing_keys=signers,
    )
    gate = outcome.gate
    checked = ", ".join(
        f"{k} {gate[k]:.1e}" for k in ("array program", "C", "reference") if k in gate
    )
    click.echo(printable(f"{outcome.status:<10} {outcome.ref}  {outcome.seconds:6.1f} s"))
    click.echo(
        f"checked against sympy's lambdify at {int(gate['points'])} points"
        f" ({int(gate['inside'])} inside the Dalitz region): largest relative deviation {checked}"
    )
    if signers:
        click.echo(f"signed the index with {', '.join(_key_ids(signers))}")


def _signers(sign_keys: tuple[str, ...], no_sign: bool) -> list:
    """The keys to sign with: those given, else the user's own key (none with --no-sign)."""
    from modelstore.trust.signing import load_private_key

    if sign_keys and no_sign:
        raise click.UsageError("--sign and --no-sign exclude each other")
    if no_sign:
        return []
    if sign_keys:
        return [load_private_key(k) for k in sign_keys]
    from modelstore.trust.own_key import own_signing_key

    return [own_signing_key()]


def _key_ids(signers: list) -> list[str]:
    from modelstore.trust.signing import key_id

    return [key_id(k.public_key()) for k in signers]


def _sign(registry, signers: list) -> None:
    """Verify everything, then sign the index as it stands (nothing to do without keys)."""
    if signers:
        status = registry.sign(signers)
        click.echo(
            f"signed index_version {status.index.index_version} with {', '.join(status.signers)}"
        )


def _publish_catalog(
    ctx: click.Context, models: tuple[str, ...], version: str, jobs: int, native: bool
) -> None:
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
    start = time.perf_counter()

    def report(result):
        click.echo(
            f"{result.status:<10} {result.model_id}@{result.version}  {result.seconds:6.1f} s"
        )

    results = publish_models(registry, indices, version, jobs=jobs, native=native, on_result=report)
    click.echo(f"{len(results)} models in {time.perf_counter() - start:.1f} s (jobs={jobs})")
