"""What every command shares: printable text, one-line errors, the registry from the context."""

from __future__ import annotations

import functools
import unicodedata
from typing import TYPE_CHECKING, Any

import click

from modelstore.errors import ModelstoreError
from modelstore.redaction import redact

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["error_line", "get_registry", "library_errors", "printable"]


def printable(text: object) -> str:
    """``text`` safe to print on a terminal: control and format characters escaped.

    Titles, names and messages can come from a registry someone else wrote; escape sequences
    in them must not reach the terminal (``\x1b[2J``, bidi overrides and the like).

    Never raises.
    """
    return "".join(
        ch.encode("unicode_escape").decode("ascii")
        if unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp")
        else ch
        for ch in str(text)
    )


def error_line(exc: BaseException) -> str:
    """A library error as one printable line, without a URL's password.

    Never raises.
    """
    return printable(redact(" ".join(str(exc).splitlines())) or type(exc).__name__)


def library_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """Turn a library error into one clear line and exit status 1 (never a traceback).

    Raises:
        click.ClickException: the wrapped command raised a ModelstoreError.
    """

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except ModelstoreError as exc:
            raise click.ClickException(error_line(exc)) from None

    return wrapper


def get_registry(ctx: click.Context) -> Any:
    """The registry named by ``--registry`` (or the default one), with the global options.

    Raises:
        The errors of ``Registry`` and ``default_registry``.
    """
    from modelstore.registry import Registry, default_registry

    root = ctx.obj["registry_root"]
    options = {
        "offline": ctx.obj.get("offline"),
        "require_signature": ctx.obj.get("require_signature"),
        "trust_code": bool(ctx.obj.get("trust_code")),
    }
    return Registry(root, **options) if root else default_registry(**options)
