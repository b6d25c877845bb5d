"""The ``modelstore`` command line: a thin layer over the library."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from typing import Any, NoReturn

import click

from modelstore._native.openmp import prefer_sleeping_threads
from modelstore.cli import (
    band,
    build,
    cache,
    field,
    get,
    keygen,
    leftovers,
    listing,
    lock,
    plot,
    publish,
    push,
    rates,
    show,
    sign,
    verify,
)
from modelstore.cli import eval as eval_cmd
from modelstore.cli._common import error_line, get_registry, library_errors, printable
from modelstore.errors import ModelstoreError

__all__ = ["error_line", "get_registry", "library_errors", "main", "printable"]


def _stdout_closed() -> NoReturn:
    """End quietly, as ``git`` or ``ls`` do, when whatever read stdout has gone (``| head``).

    Exit status 141 (128 + SIGPIPE, what a shell reports for ``ls`` stopped by ``head``), no
    traceback and no message; stdout is pointed at /dev/null so that the interpreter's last
    flush at exit does not fail again.
    """
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    sys.exit(128 + getattr(signal, "SIGPIPE", 13))


class _Group(click.Group):
    """The root group: a library or file-system error escaping any command is one line.

    A closed stdout (``modelstore show default | head``) ends every command quietly, here
    once for all of them (see `_stdout_closed`).
    """

    def main(self, *args: Any, **kwargs: Any) -> Any:
        try:
            try:
                return super().main(*args, **kwargs)
            finally:  # what is still buffered goes out now, while a closed pipe can be caught
                if sys.stdout is not None:
                    sys.stdout.flush()
        except BrokenPipeError:
            _stdout_closed()

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        for arg in args:
            if "\x00" in arg:
                msg = f"arguments may not contain NUL bytes: {printable(arg)}"
                raise click.UsageError(msg, ctx)
        try:
            return super().parse_args(ctx, args)  # --help and --version print here
        except BrokenPipeError:
            _stdout_closed()

    def invoke(self, ctx: click.Context) -> Any:
        prefer_sleeping_threads()  # before any command loads a native model
        try:
            return super().invoke(ctx)
        except BrokenPipeError:
            _stdout_closed()
        except ModelstoreError as exc:
            raise click.ClickException(error_line(exc)) from None
        except OSError as exc:  # the file system refused something (a path of the user's)
            where = f"{exc.filename}: " if exc.filename else ""
            raise click.ClickException(printable(f"{where}{exc.strerror or exc}")) from None


def _set_registry(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    if value is not None:
        ctx.ensure_object(dict)["registry_root"] = value


def _add_registry_option(command: click.Command) -> None:
    """Accept ``--registry`` after the subcommand too (``modelstore get --registry DIR REF``)."""
    if any("--registry" in getattr(p, "opts", ()) for p in command.params):
        return
    command.params.append(
        click.Option(
            ["--registry"],
            expose_value=False,
            callback=_set_registry,
            help="Registry folder or URL (the same as before the subcommand).",
        )
    )
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            _add_registry_option(sub)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--registry",
    envvar="MODELSTORE_REGISTRY",
    type=str,
    help=(
        "Registry folder or URL (https://, s3://, ...)"
        " (default: $MODELSTORE_REGISTRY, else the embedded registry)."
    ),
)
@click.option(
    "--offline",
    is_flag=True,
    envvar="MODELSTORE_OFFLINE",
    help="Use only the local cache for remote registries ($MODELSTORE_OFFLINE=1).",
)
@click.option(
    "--require-signature",
    is_flag=True,
    envvar="MODELSTORE_REQUIRE_SIGNATURE",
    help=(
        "Require a trusted index signature for local folders too ($MODELSTORE_REQUIRE_SIGNATURE=1)."
    ),
)
@click.option(
    "--trust",
    is_flag=True,
    help=(
        "Run the registry's code (C source, pickles, array programs) even though its index is"
        " not signed by a key you trust: only for a registry whose writer you trust"
        " (default: only signed registries and those in $MODELSTORE_TRUSTED_REGISTRIES)."
    ),
)
@click.version_option(package_name="modelstore")
@click.pass_context
def main(
    ctx: click.Context, registry: str | None, offline: bool, require_signature: bool, trust: bool
) -> None:
    """Get, verify, evaluate and publish three-body amplitude models (LHCb's Λc⁺ → pK⁻π⁺, ...).

    Never raises: library errors become one line and exit status 1 (click).
    """
    ctx.obj = {
        "registry_root": registry,
        "offline": offline or None,
        "require_signature": require_signature or None,
        "trust_code": trust,
    }


main.add_command(listing.list_models)
main.add_command(show.show)
main.add_command(get.get)
main.add_command(verify.verify)
main.add_command(publish.publish)
main.add_command(build.build)

main.add_command(cache.cache)
main.add_command(keygen.keygen)
main.add_command(sign.sign)
main.add_command(lock.lock)
main.add_command(push.push)
main.add_command(leftovers.leftovers)

main.add_command(eval_cmd.eval_command)
main.add_command(plot.plot)
main.add_command(field.field)
main.add_command(band.band)
main.add_command(rates.rates)

for _command in main.commands.values():
    _add_registry_option(_command)
