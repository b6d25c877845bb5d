"""The ``modelstore`` command line: a thin layer over the library."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

import click

from modelstore.errors import ModelstoreError

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["main"]


def library_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """Turn a library error into one clear line and exit status 1 (never a traceback)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except ModelstoreError as exc:
            raise click.ClickException(str(exc)) from None

    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--registry",
    envvar="MODELSTORE_REGISTRY",
    type=click.Path(file_okay=False, path_type=str),
    help="Registry folder (default: $MODELSTORE_REGISTRY, else the embedded registry).",
)
@click.version_option(package_name="modelstore")
@click.pass_context
def main(ctx: click.Context, registry: str | None) -> None:
    """Get, verify and evaluate published amplitude models of Λc⁺ → p K⁻ π⁺."""
    ctx.obj = {"registry_root": registry}


def get_registry(ctx: click.Context) -> Any:
    from modelstore.registry import Registry, default_registry

    root = ctx.obj["registry_root"]
    return Registry(root) if root else default_registry()


from modelstore.cli import build, get, listing, publish, show, verify  # noqa: E402

main.add_command(listing.list_models)
main.add_command(show.show)
main.add_command(get.get)
main.add_command(verify.verify)
main.add_command(publish.publish)
main.add_command(build.build)
