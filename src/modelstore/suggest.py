"""Did-you-mean: the one place that suggests a known name for a mistyped one.

Every message about an unknown model id, version, parameter name, quantity or column ends
with the same clause, built here: ``; did you mean 'default'?`` (or nothing when no known name
is close). Closeness is `difflib.get_close_matches`, case-insensitive (``gamma_k892`` finds
``Gamma_K892``).
"""

from __future__ import annotations

import difflib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = ["close_matches", "did_you_mean"]

#: how similar (difflib's ratio, 0..1) a known name must be to be suggested
CUTOFF = 0.6


def close_matches(word: str, choices: Iterable[str], n: int = 3) -> list[str]:
    """The known ``choices`` closest to ``word``, best first (at most ``n``; none if none is close).

    Compared without regard to case; each suggestion is returned as it is spelled in
    ``choices`` (the first spelling, where several differ only in case).

    Never raises.
    """
    by_folded: dict[str, str] = {}
    for choice in choices:
        by_folded.setdefault(str(choice).casefold(), str(choice))
    found = difflib.get_close_matches(str(word).casefold(), by_folded, n=n, cutoff=CUTOFF)
    return [by_folded[f] for f in found if by_folded[f] != word]


def did_you_mean(word: str, choices: Iterable[str], n: int = 1) -> str:
    """``"; did you mean 'X'?"`` for a mistyped ``word`` (``'X' or 'Y'`` for n > 1), else ``""``.

    Meant to be appended to the message that names the unknown ``word``.

    Never raises.
    """
    found = close_matches(word, choices, n)
    if not found:
        return ""
    return f"; did you mean {' or '.join(repr(f) for f in found)}?"
