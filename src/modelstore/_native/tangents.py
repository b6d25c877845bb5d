"""Forward-mode derivatives of lowered code: every temporary gets its tangents, as temporaries.

The input is a :class:`~modelstore._native.lowering.LoweredModel`, the straight-line real code
the published C source and array program are printed from. Each temporary's C expression is
parsed (the small grammar the emitter writes: numbers, names, ``+ - * /``, unary minus,
comparisons, ``?:`` and calls of libm functions) and differentiated by the chain rule, column by
column; a column is the real parameter, or the real or imaginary part of a complex parameter,
that a derivative is taken with respect to.

The value temporaries are kept exactly as they are, in the same order, so whatever prints them
computes the value by the very same operations; the tangent temporaries are added after the
temporary they belong to. Only structurally non-zero tangents are made (a temporary that does
not depend on a column has no tangent for it), so a Breit-Wigner's tangents exist only for its
own mass and width.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from modelstore._native.emitter import _TEMP_RE, _Emitter, _Temp
from modelstore.errors import ModelstoreError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from modelstore._native.lowering import LoweredModel

__all__ = ["Differentiated", "differentiate", "parse_c"]

_TOKEN_RE = re.compile(
    r"\s*(?:(?P<num>\d+\.\d*(?:[eE][-+]?\d+)?|\d+(?:[eE][-+]?\d+)?)|(?P<name>[A-Za-z_]\w*)"
    r"|(?P<op><=|>=|==|!=|[-+*/()?:,<>]))"
)
_COMPARISONS = ("<", "<=", ">", ">=", "==", "!=")
_NAME_RE = re.compile(r"\b[A-Za-z_]\w*\b")

# -- parsing ------------------------------------------------------------------------------------
# Nodes are tuples: ("num", text), ("name", text), ("neg", x), ("bin", op, x, y),
# ("cmp", op, x, y), ("ter", condition, yes, no), ("call", function, (args...)).


class _Parser:
    def __init__(self, code: str) -> None:
        self.tokens: list[tuple[str, str]] = []
        pos, code = 0, code.rstrip()
        while pos < len(code):
            m = _TOKEN_RE.match(code, pos)
            if not m:
                msg = f"cannot differentiate C expression at {code[pos : pos + 20]!r}"
                raise ModelstoreError(msg)
            kind = m.lastgroup or ""
            self.tokens.append((kind, m.group(kind)))
            pos = m.end()
        self.pos = 0

    def peek(self) -> str | None:
        return self.tokens[self.pos][1] if self.pos < len(self.tokens) else None

    def take(self, expected: str | None = None) -> tuple[str, str]:
        if self.pos >= len(self.tokens):
            msg = "unexpected end of C expression"
            raise ModelstoreError(msg)
        token = self.tokens[self.pos]
        if expected is not None and token[1] != expected:
            msg = f"expected {expected!r} in C expression, got {token[1]!r}"
            raise ModelstoreError(msg)
        self.pos += 1
        return token

    def parse(self) -> tuple:
        node = self.ternary()
        if self.pos != len(self.tokens):
            msg = f"trailing tokens in C expression: {self.tokens[self.pos :][:3]}"
            raise ModelstoreError(msg)
        return node

    def ternary(self) -> tuple:
        condition = self.comparison()
        if self.peek() != "?":
            return condition
        self.take("?")
        yes = self.ternary()
        self.take(":")
        return ("ter", condition, yes, self.ternary())

    def comparison(self) -> tuple:
        left = self.additive()
        if self.peek() in _COMPARISONS:
            op = self.take()[1]
            return ("cmp", op, left, self.additive())
        return left

    def additive(self) -> tuple:
        node = self.multiplicative()
        while self.peek() in ("+", "-"):
            op = self.take()[1]
            node = ("bin", op, node, self.multiplicative())
        return node

    def multiplicative(self) -> tuple:
        node = self.unary()
        while self.peek() in ("*", "/"):
            op = self.take()[1]
            node = ("bin", op, node, self.unary())
        return node

    def unary(self) -> tuple:
        if self.peek() == "-":
            self.take()
            return ("neg", self.unary())
        return self.primary()

    def primary(self) -> tuple:
        kind, text = self.take()
        if text == "(":
            node = self.ternary()
            self.take(")")
            return node
        if kind == "num":
            return ("num", text)
        if kind != "name":
            msg = f"unexpected {text!r} in C expression"
            raise ModelstoreError(msg)
        if self.peek() == "(":
            self.take("(")
            args = [self.ternary()]
            while self.peek() == ",":
                self.take(",")
                args.append(self.ternary())
            self.take(")")
            return ("call", text, tuple(args))
        return ("name", text)


def parse_c(code: str) -> tuple:
    """The tree of one emitted C expression (tuples; see the comment above ``_Parser``).

    Raises:
        ModelstoreError: the text is not in the emitter's grammar.
    """
    return _Parser(code).parse()


def code_of(node: tuple) -> str:
    """C text of a tree, fully parenthesised. Never raises."""
    kind = node[0]
    if kind in ("num", "name"):
        return node[1]
    if kind == "neg":
        return f"(-{code_of(node[1])})"
    if kind in ("bin", "cmp"):
        return f"({code_of(node[2])} {node[1]} {code_of(node[3])})"
    if kind == "ter":
        return f"({code_of(node[1])} ? {code_of(node[2])} : {code_of(node[3])})"
    return f"{node[1]}({', '.join(code_of(a) for a in node[2])})"


# -- algebra on tangent code (None is an exact zero) --------------------------------------------


def _add(a: str | None, b: str | None) -> str | None:
    if a is None:
        return b
    if b is None:
        return a
    return f"({a} + {b})"


def _neg(a: str | None) -> str | None:
    return None if a is None else f"(-{a})"


def _sub(a: str | None, b: str | None) -> str | None:
    return _neg(b) if a is None else (a if b is None else f"({a} - {b})")


def _mul(a: str | None, b: str | None) -> str | None:
    if a is None or b is None:
        return None
    if a == "1.0":
        return b
    if b == "1.0":
        return a
    return f"({a} * {b})"


def _div(a: str | None, b: str) -> str | None:
    return None if a is None else f"({a} / {b})"


# -- the chain rule -----------------------------------------------------------------------------


@dataclass
class Differentiated:
    """Value and tangent temporaries in one list, and the code of every output.

    ``temps`` holds the lowered model's temporaries unchanged and in order, each followed by
    its tangent temporaries; ``gradient`` holds the code of ∂I/∂column for each column
    (``"0.0"`` where the intensity does not depend on it).
    """

    temps: list[_Temp]
    result: str
    gradient: list[str]
    emitter: _Emitter


class _Differentiator:
    def __init__(self, lowered: LoweredModel, seeds: Sequence[str]) -> None:
        self.emitter = _Emitter()  # holds the combined list; its level_of reads by_name
        self.tangents: dict[str, dict[int, str]] = {s: {j: "1.0"} for j, s in enumerate(seeds)}
        self.memo: dict[tuple[str, bool], str] = {}
        self.count = len(lowered.temps)

    def add_temp(self, code: str, call: bool = False) -> str:
        """A new temporary for ``code`` (or the name/number itself), after the ones so far."""
        if _TEMP_RE.fullmatch(code) or _is_number(code):
            return code
        key = (code, call)
        if key in self.memo:
            return self.memo[key]
        level = self.emitter.level_of(code)
        if call and level >= 0:
            level += 1
        name = f"a{self.count}"
        self.count += 1
        temp = _Temp(name, code, level, call and level >= 0)
        self.emitter.temps.append(temp)
        self.emitter.by_name[name] = temp
        self.memo[key] = name
        return name

    def keep(self, temp: _Temp) -> None:
        self.emitter.temps.append(temp)
        self.emitter.by_name[temp.name] = temp

    def columns_of(self, code: str) -> set[int]:
        columns: set[int] = set()
        for name in _NAME_RE.findall(code):
            columns.update(self.tangents.get(name, ()))
        return columns

    def derivative(self, node: tuple, j: int, own: str | None = None) -> str | None:
        """Code of the derivative of ``node`` by column ``j``; ``own`` names the root's value."""
        kind = node[0]
        if kind == "num":
            return None
        if kind == "name":
            return self.tangents.get(node[1], {}).get(j)
        if kind == "neg":
            return _neg(self.derivative(node[1], j))
        if kind == "cmp":
            return None
        if kind == "ter":
            yes, no = self.derivative(node[2], j), self.derivative(node[3], j)
            if yes is None and no is None:
                return None
            return f"({code_of(node[1])} ? {yes or '0.0'} : {no or '0.0'})"
        if kind == "bin":
            op, x, y = node[1], node[2], node[3]
            dx, dy = self.derivative(x, j), self.derivative(y, j)
            if op == "+":
                return _add(dx, dy)
            if op == "-":
                return _sub(dx, dy)
            if op == "*":
                return _add(_mul(dx, code_of(y)), _mul(code_of(x), dy))
            # (x / y)' = (dx - (x / y) dy) / y
            return _div(_sub(dx, _mul(code_of(node), dy)), code_of(y))
        return self.call_derivative(node, j, own or code_of(node))

    def call_derivative(self, node: tuple, j: int, value: str) -> str | None:
        function, args = node[1], node[2]
        codes = [code_of(a) for a in args]
        d = [self.derivative(a, j) for a in args]
        x = codes[0]
        if function == "atan2":  # atan2(b, a)' = (a db - b da) / (a² + b²)
            b, a = codes
            return _div(_sub(_mul(a, d[0]), _mul(b, d[1])), f"({a} * {a} + {b} * {b})")
        if function == "pow":
            by_base = _mul(d[0], f"({codes[1]} * {self.call('pow', x, f'({codes[1]} - 1.0)')})")
            by_exponent = _mul(d[1], f"({value} * {self.call('log', x)})")
            return _add(by_base, by_exponent)
        if function == "copysign":  # |t| sign(b): by t only (b's sign is locally constant)
            return _mul(d[0], f"(copysign(1.0, {x}) * copysign(1.0, {codes[1]}))")
        dx = d[0]
        if dx is None:
            return None
        factors = {
            "sqrt": lambda: f"(0.5 / {value})",
            "fabs": lambda: f"(({x} < 0.0) ? -1.0 : 1.0)",
            "exp": lambda: value,
            "log": lambda: f"(1.0 / {x})",
            "sin": lambda: self.call("cos", x),
            "cos": lambda: f"(-{self.call('sin', x)})",
            "tan": lambda: f"(1.0 + {value} * {value})",
            "asin": lambda: f"(1.0 / sqrt(1.0 - {x} * {x}))",
            "acos": lambda: f"(-1.0 / sqrt(1.0 - {x} * {x}))",
            "atan": lambda: f"(1.0 / (1.0 + {x} * {x}))",
            "sinh": lambda: self.call("cosh", x),
            "cosh": lambda: self.call("sinh", x),
            "tanh": lambda: f"(1.0 - {value} * {value})",
        }
        if function not in factors:
            msg = f"no derivative for the C function {function!r}"
            raise ModelstoreError(msg)
        return _mul(dx, factors[function]())

    def call(self, function: str, *args: str) -> str:
        """A libm call the derivative needs, computed as the value's calls are."""
        return self.add_temp(f"{function}({', '.join(args)})", call=True)


def differentiate(lowered: LoweredModel, seeds: Sequence[str]) -> Differentiated:
    """Add forward-mode tangents to ``lowered`` for the parameter locals ``seeds``.

    ``seeds[j]`` is the C local of column ``j`` (``p3_m`` for a real parameter,
    ``p7_H_re``/``p7_H_im`` for the parts of a complex one).

    Raises:
        ModelstoreError: a temporary is outside the emitter's grammar or calls a function
            without a derivative rule.
    """
    work = _Differentiator(lowered, seeds)
    for temp in lowered.temps:
        work.keep(temp)
        tree = parse_c(temp.code)
        columns = work.columns_of(temp.code)
        if not columns:
            continue
        own = temp.name if tree[0] == "call" else None
        found: dict[int, str] = {}
        for j in sorted(columns):
            code = work.derivative(tree, j, own)
            if code is not None:
                found[j] = work.add_temp(code)
        if found:
            work.tangents[temp.name] = found
    result = lowered.result
    gradient = [work.tangents.get(result, {}).get(j, "0.0") for j in range(len(seeds))]
    if not _TEMP_RE.fullmatch(result):
        tree = parse_c(result)
        gradient = [work.derivative(tree, j) or "0.0" for j in range(len(seeds))]
    return Differentiated(work.emitter.temps, result, gradient, work.emitter)


def _is_number(code: str) -> bool:
    try:
        float(code)
    except ValueError:
        return False
    return True
