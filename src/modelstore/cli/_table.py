"""Plain-text tables: every column as wide as its widest cell, whatever the names' lengths."""

from __future__ import annotations

import unicodedata
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["display_width", "table_lines"]


def display_width(text: str) -> int:
    """Terminal columns ``text`` takes: combining marks 0, wide (CJK) characters 2, others 1.

    Never raises.
    """
    return sum(
        0
        if unicodedata.combining(ch)
        else 2
        if unicodedata.east_asian_width(ch) in ("W", "F")
        else 1
        for ch in text
    )


def _pad(text: str, width: int, left: bool) -> str:
    space = " " * (width - display_width(text))
    return text + space if left else space + text


def table_lines(
    headers: Sequence[Sequence[str]],
    rows: Sequence[Sequence[str]],
    left: Sequence[bool],
    *,
    indent: str = "  ",
    gap: str = "  ",
) -> list[str]:
    """The header lines and rows, each column padded to its widest cell (header or row).

    ``headers`` are lines of header cells (a name, then its units and convention); ``left``
    says, per column, whether it is left-aligned (names) or right-aligned (numbers). A row
    shorter than ``left`` is padded with empty cells (a longer one cut); trailing spaces are
    dropped.

    Never raises.
    """
    n = len(left)
    lines = [[*line[:n], *[""] * (n - len(line))] for line in (*headers, *rows)]
    widths = [max(display_width(line[k]) for line in lines) for k in range(n)]
    out = []
    for line in lines:
        cells = (_pad(cell, w, lf) for cell, w, lf in zip(line, widths, left, strict=True))
        out.append((indent + gap.join(cells)).rstrip())
    return out
