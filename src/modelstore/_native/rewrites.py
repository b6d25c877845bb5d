"""Lowering 2's rewrites: fewer roots, divisions and products in the C source.

Each rewrite changes values by rounding only (the publish-time gate compares the C with
sympy's route to 1e-9) and keeps NaN exactly where numpy's route gives NaN:

* half-angle powers without roots: ``c^a s^b = (c²)^(a//2) (s²)^(b//2) × (1, c, s or c·s)``
  with ``c² = (1+z)/2``, ``s² = (1-z)/2`` (:func:`without_roots`, :func:`emit_squares`);
* a product of roots used nowhere else as one guarded root (:func:`merge_roots`);
* factors common to several terms of a sum multiplied once (:func:`collect_factors`).

The emitter itself divides once per denominator (a reciprocal, then products), computes
``x**-k`` as ``(1/x)**k`` and multiplies the factors that depend on parameters alone once per
call (``modelstore._native.emitter``, ``lowering >= 2``).
"""

from __future__ import annotations

import re
from collections import Counter
from typing import TYPE_CHECKING, Any

from modelstore._native.emitter import _TEMP_RE, _Emitter, _Real, _Temp, _Value

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["collect_factors", "emit_squares", "merge_roots", "without_roots"]


def without_roots(expr: Any, symbols: tuple[Any, ...]) -> Any:
    """``expr`` with ``c^k = (c²)^(k//2) c^(k%2)`` (the same for ``s``) and ``c·s`` one symbol.

    Never raises.
    """
    import sympy as sp

    c, s, cc, ss, cs = symbols

    def is_power(node: Any) -> bool:
        return node.is_Pow and node.base in (c, s) and node.exp.is_Integer

    def power(node: Any) -> Any:
        square = cc if node.base == c else ss
        k = int(node.exp)
        return square ** (k // 2) * node.base ** (k % 2)

    def is_pair(node: Any) -> bool:
        return node.is_Mul and c in node.args and s in node.args

    def pair(node: Any) -> Any:
        return sp.Mul(*(a for a in node.args if a not in (c, s)), cs)

    return expr.replace(is_power, power).replace(is_pair, pair)


def emit_squares(emitter: _Emitter, halves: tuple[Any, ...], sign: int, guarded: _Real) -> None:
    """Lowering 2: ``c² = (1+z)/2``, ``s² = (1-z)/2``; a root only for ``c``, ``s``, ``c·s``.

    Never raises.
    """
    cc = emitter.temp(f"((1.0 + {guarded.code}) * 0.5)")
    ss = emitter.temp(f"((1.0 - {guarded.code}) * 0.5)")
    roots = (
        f"sqrt({cc.code})",
        f"sqrt({ss.code})",
        cc.code,
        ss.code,
        f"sqrt({cc.code} * {ss.code})",
    )
    for k, (symbol, code) in enumerate(zip(halves, roots, strict=True)):
        if symbol is None:
            continue
        value = emitter.temp(code)
        if sign < 0 and k in (1, 4):  # s = sin(θ/2) < 0 for θ = -acos(z)
            value = emitter.temp(f"(-{value.code})")
        emitter.symbols[symbol] = _Value(value, None, False)


def merge_roots(temps: Sequence[_Temp], outputs: Sequence[str]) -> None:
    """Lowering 2: a product of square roots used nowhere else becomes one guarded root.

    ``sqrt(a) * sqrt(b)`` (a temporary ``(x * y * ...)`` whose factors ``x = sqrt(a)``,
    ``y = sqrt(b)`` are used only there) becomes ``((a >= 0.0 && b >= 0.0) ? sqrt(a * b) :
    NAN)``: NaN exactly where a real root of a negative (or of NaN) gives NaN. ``x`` and ``y``
    keep their names and now hold ``a`` and ``b``. ``outputs`` are the codes read after them.


    Never raises.
    """
    by_name = {t.name: t for t in temps}
    uses = Counter(name for t in temps for name in _TEMP_RE.findall(t.code))
    uses.update(name for code in outputs for name in _TEMP_RE.findall(code))
    for temp in temps:
        match = _PRODUCT_RE.fullmatch(temp.code)
        if temp.level < 0 or match is None:
            continue
        names = match.group(1).split(" * ")
        roots = [n for n in names if uses[n] == 1 and _root_argument(by_name[n]) is not None]
        if len(roots) < 2:
            continue
        for name in roots:
            by_name[name].code = _root_argument(by_name[name])  # type: ignore[assignment]
        guard = " && ".join(f"{n} >= 0.0" for n in roots)
        merged = f"(({guard}) ? sqrt({' * '.join(roots)}) : NAN)"
        temp.code = "(" + " * ".join([merged, *(n for n in names if n not in roots)]) + ")"


_PRODUCT_RE = re.compile(r"\((a[0-9]+(?: \* a[0-9]+)+)\)")


def _root_argument(temp: _Temp) -> str | None:
    """``E`` if ``temp`` is ``sqrt(E)`` as a whole (and varies with events), else None."""
    code = temp.code
    if temp.level < 0 or temp.call or not code.startswith("sqrt(") or not code.endswith(")"):
        return None
    depth = 0
    for k, ch in enumerate(code[4:], start=4):
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if depth == 0 and k < len(code) - 1:
            return None  # sqrt(x) * y: the root is not the whole code
    return code[5:-1]


def collect_factors(expr: Any) -> Any:
    """Lowering 2: in every sum, factors common to several terms are multiplied once.

    Greedily, the factor found in most terms (complex divisors first: they cost most) is taken
    out of the terms that have it, ``a·f + b·f + c`` becoming ``f·(a + b) + c``, and the two
    parts are treated again; numbers stay where they are. Each step saves multiplications
    (``k`` terms sharing ``f``: ``k - 1``) and changes values only by rounding.


    Never raises.
    """
    import sympy as sp

    def cost(factor: Any) -> int:
        return 1 + int(factor.is_Pow and factor.exp.is_negative and factor.base.has(sp.I))

    def factored(terms: list[Any]) -> Any:
        if len(terms) < 2:
            return sp.Add(*terms)
        factors = [{f for f in sp.Mul.make_args(t) if not f.is_Number} for t in terms]
        counts: dict[Any, int] = {}
        for found in factors:
            for f in found:
                counts[f] = counts.get(f, 0) + 1
        best = max(counts, key=lambda f: (counts[f], cost(f), sp.default_sort_key(f)), default=None)
        if best is None or counts[best] < 2:
            return sp.Add(*terms)
        inner = [t for t, found in zip(terms, factors, strict=True) if best in found]
        rest = [t for t, found in zip(terms, factors, strict=True) if best not in found]
        without = [sp.Mul(*_drop_one(sp.Mul.make_args(t), best)) for t in inner]
        return sp.Add(best * factored(without), factored(rest))

    return expr.replace(lambda e: e.is_Add, lambda e: factored(list(e.args)))


def _drop_one(factors: tuple[Any, ...], factor: Any) -> list[Any]:
    kept = list(factors)
    kept.remove(factor)
    return kept
