"""ASCII aliases of parameter names: ``m_{K(892)}`` is also ``m_K892``.

Parameter names in a manifest are LaTeX, as the model's authors wrote them
(``\\mathcal{H}^\\mathrm{production}[K(892), 1, 1/2]``): hard to type in a shell, and no
Python keyword argument. Each name also gets a short ASCII alias, computed from the name alone
by the rules below (no table of particle names: it works for any published model), so that every
alias is a valid Python identifier (``model.intensity(s1, s2, m_K892=0.9)``) and
``-p m_K892=0.9`` works in a shell.

The rules, applied left to right:

- a LaTeX command that only styles its argument (``\\mathrm``, ``\\mathcal``, ``\\text``,
  ``\\mathbf``, ...) is dropped, its argument kept; ``\\to`` and ``\\rightarrow`` become
  ``to``; any other command is its name (``\\Gamma`` → ``Gamma``, ``\\Lambda`` → ``Lambda``);
  a Greek letter typed as such is its name too (``Λ`` → ``Lambda``).
- parentheses are dropped, so a particle and its mass stay one word (``K(892)`` → ``K892``).
- a charge or star in a superscript joins the word before it: ``^+`` → ``plus``, ``^-`` →
  ``minus``, ``^0`` → ``0``, ``^*`` → ``st`` (``K^-`` → ``Kminus``, ``K^*`` → ``Kst``,
  ``\\Delta^{++}`` → ``Deltaplusplus``); a prime joins as ``prime``.
- numbers: ``-`` before a number is ``m`` (``-1`` → ``m1``), a fraction over 2 is ``half``
  (``1/2`` → ``1half``, ``-3/2`` → ``m3half``), any other fraction ``over`` (``1/3`` →
  ``1over3``), a decimal point ``p`` (``0.5`` → ``0p5``).
- two words are shortened: ``production`` → ``prod``, ``decay`` → ``dec``.
- everything else (``_ ^ { } [ ] ,`` spaces, other symbols) separates words; the words are
  joined by ``_``.
- a name that is already an ASCII Python identifier (``m0``) is its own alias.
- an alias that would start with a digit gets ``p_`` in front; a Python keyword gets ``_``
  after it.

So ``\\mathcal{H}^\\mathrm{production}[K(892), 1, 1/2]`` → ``H_prod_K892_1_1half``,
``\\Gamma_{\\Lambda(1405) \\to \\pi^+ \\Sigma^-}`` → ``Gamma_Lambda1405_to_piplus_Sigmaminus``,
``R_\\mathrm{dec}`` → ``R_dec``.

Within one model an alias must be unambiguous: where two names give the same alias, neither
gets it; an alias that is another parameter's own name is dropped too; a name that is its own
alias (``m0``) needs none. `parameter_aliases` applies these rules; `ascii_alias` is the
mapping of one name.
"""

from __future__ import annotations

import keyword
import re
import unicodedata
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = ["ascii_alias", "parameter_aliases"]

_STYLE_COMMANDS = frozenset(
    {
        "mathrm", "mathcal", "mathbf", "mathit", "mathsf", "mathtt", "mathscr", "mathfrak",
        "mathbb", "boldsymbol", "bm", "text", "textrm", "textit", "textbf", "operatorname",
        "rm", "bf", "it", "left", "right", "big", "Big", "bigl", "bigr",
    }
)  # fmt: skip
_ARROWS = frozenset({"to", "rightarrow", "longrightarrow"})
_SHORT = {"production": "prod", "decay": "dec"}
_CHARGES = {"+": "plus", "-": "minus", "0": "0", "*": "st"}
_GREEK_FIX = {"lamda": "lambda"}  # Unicode spells the letter LAMDA
_TOKEN = re.compile(
    r"""
    (?P<command>\\[A-Za-z]+)
    | (?P<charge>\^\{?(?:[-+*]+|0)\}?)(?![0-9/])
    | (?P<number>-?[0-9]+(?:\.[0-9]+)?(?:/[0-9]+)?)
    | (?P<word>[A-Za-z][A-Za-z0-9]*)
    | (?P<prime>')
    | (?P<glue>[()])
    | (?P<other>.)
    """,
    re.VERBOSE | re.DOTALL,
)


def _number(text: str) -> str:
    sign = "m" if text.startswith("-") else ""
    text = text.lstrip("-")
    whole, _, below = text.partition("/")
    whole = whole.replace(".", "p")
    if below == "2":
        return f"{sign}{whole}half"
    if below:
        return f"{sign}{whole}over{below}"
    return f"{sign}{whole}"


def _greek(char: str) -> str | None:
    """``Lambda`` for ``Λ``, ``pi`` for ``π``; the ASCII letters of an accented one; else None."""
    name = unicodedata.name(char, "")
    if name.startswith(("GREEK CAPITAL LETTER ", "GREEK SMALL LETTER ")):
        letter = name.rsplit(" ", 1)[-1].lower()
        letter = _GREEK_FIX.get(letter, letter)
        return letter.capitalize() if "CAPITAL" in name else letter
    ascii_form = unicodedata.normalize("NFKD", char).encode("ascii", "ignore").decode()
    return ascii_form if ascii_form.isalnum() else None


def _words(name: str) -> list[str]:
    """The words of ``name`` by the module's rules (a glued piece continues the current word)."""
    words: list[str] = []
    current = ""
    glue = False  # the next piece continues the current word

    def add(piece: str, joined: bool) -> None:
        nonlocal current
        if joined and current:
            current += piece
        else:
            end()
            current = piece

    def end() -> None:
        nonlocal current
        if current:
            words.append(_SHORT.get(current, current))
        current = ""

    for match in _TOKEN.finditer(name):
        kind, text = match.lastgroup, match.group()
        if kind == "command":
            command = text[1:]
            if command in _STYLE_COMMANDS:
                continue
            add("to" if command in _ARROWS else command, glue)
            glue = False
        elif kind == "charge":
            add("".join(_CHARGES[c] for c in text.strip("^{}")), True)
            glue = False
        elif kind == "prime":
            add("prime", True)
        elif kind in ("number", "word"):
            add(_number(text) if kind == "number" else text, glue)
            glue = False
        elif kind == "glue":
            glue = True
        else:
            letter = _greek(text) if not text.isascii() else None
            if letter is not None:
                add(letter, glue)
            else:
                end()
            glue = False
    end()
    return words


def ascii_alias(name: str) -> str | None:
    """The ASCII alias of one parameter name by the module's rules; None if nothing is left.

    The result is a valid Python identifier and not a keyword. Uniqueness within a model is
    `parameter_aliases`'s concern.

    Never raises.
    """
    name = str(name)
    if name.isascii() and name.isidentifier() and not keyword.iskeyword(name):
        return name  # m0, R: already an identifier
    alias = "_".join(_words(name))
    if not alias:
        return None
    if alias[0].isdigit():
        alias = f"p_{alias}"
    if keyword.iskeyword(alias) or keyword.issoftkeyword(alias):
        alias += "_"
    return alias if alias.isidentifier() and alias.isascii() else None


def parameter_aliases(names: Iterable[str]) -> dict[str, str]:
    """``{alias: name}`` for the names of one model, in the names' order.

    A name whose alias is itself gets no entry; an alias that two names share, or that is
    another parameter's own name, is given to neither.

    Never raises.
    """
    names = list(dict.fromkeys(names))
    own = set(names)
    claimed: dict[str, list[str]] = {}
    for name in names:
        alias = ascii_alias(name)
        if alias is not None and alias != name:
            claimed.setdefault(alias, []).append(name)
    return {
        alias: holders[0]
        for alias, holders in claimed.items()
        if len(holders) == 1 and alias not in own
    }
