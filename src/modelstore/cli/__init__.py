"""The ``modelstore`` command line: a thin layer over the library."""

from __future__ import annotations

import functools
import unicodedata
from typing import TYPE_CHECKING, Any

import click

from modelstore.errors import ModelstoreError

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["main", "printable"]


def printable(text: object) -> str:
    """``text`` safe to print on a terminal: control and format characters escaped.

    Titles, names and messages can come from a registry someone else wrote; escape sequences
    in them must not reach the terminal (``\x1b[2J``, bidi overrides and the like).
    """
    return "".join(
        ch.encode("unicode_escape").decode("ascii")
        if unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp")
        else ch
        for ch in str(text)
    )


def error_line(exc: BaseException) -> str:
    """A library error as one printable line."""
    return printable(" ".join(str(exc).splitlines()) or type(exc).__name__)


def library_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """Turn a library error into one clear line and exit status 1 (never a traceback)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except ModelstoreError as exc:
            raise click.ClickException(error_line(exc)) from None

    return wrapper


class _Group(click.Group):
    """The root group: a library or file-system error escaping any command is one line."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        for arg in args:
            if "\x00" in arg:
                msg = f"arguments may not contain NUL bytes: {printable(arg)}"
                raise click.UsageError(msg, ctx)
        return super().parse_args(ctx, args)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
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
    help="Registry folder or URL (https://, s3://, ...) (default: $MODELSTORE_REGISTRY, else the embedded registry).",
)
@click.option("--offline", is_flag=True, envvar="MODELSTORE_OFFLINE",
              help="Use only the local cache for remote registries ($MODELSTORE_OFFLINE=1).")
@click.option("--require-signature", is_flag=True, envvar="MODELSTORE_REQUIRE_SIGNATURE",
              help="Require a trusted index signature for local folders too ($MODELSTORE_REQUIRE_SIGNATURE=1).")
@click.version_option(package_name="modelstore")
@click.pass_context
def main(ctx: click.Context, registry: str | None, offline: bool, require_signature: bool) -> None:
    """Get, verify and evaluate published amplitude models of Λc⁺ → p K⁻ π⁺."""
    ctx.obj = {
        "registry_root": registry,
        "offline": offline or None,
        "require_signature": require_signature or None,
    }


def get_registry(ctx: click.Context) -> Any:
    from modelstore.registry import Registry, default_registry

    root = ctx.obj["registry_root"]
    options = {"offline": ctx.obj.get("offline"), "require_signature": ctx.obj.get("require_signature")}
    return Registry(root, **options) if root else default_registry(**options)


from modelstore.cli import build, get, listing, publish, show, verify  # noqa: E402

main.add_command(listing.list_models)
main.add_command(show.show)
main.add_command(get.get)
main.add_command(verify.verify)
main.add_command(publish.publish)
main.add_command(build.build)

from modelstore.cli import cache, keygen, lock, push, sign  # noqa: E402

main.add_command(cache.cache)
main.add_command(keygen.keygen)
main.add_command(sign.sign)
main.add_command(lock.lock)
main.add_command(push.push)

from modelstore.cli import eval as eval_cmd  # noqa: E402
from modelstore.cli import plot  # noqa: E402

main.add_command(eval_cmd.eval_command)
main.add_command(plot.plot)

for _command in main.commands.values():
    _add_registry_option(_command)
