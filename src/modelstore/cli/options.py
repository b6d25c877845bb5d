"""Options shared by several commands."""

from __future__ import annotations

import click

from modelstore.backends import BACKENDS

__all__ = ["backend_option"]

backend_option = click.option(
    "--backend",
    type=click.Choice(("auto", *BACKENDS)),
    default="auto",
    show_default=True,
    help="Evaluator backend (auto: the fastest that works here).",
)
