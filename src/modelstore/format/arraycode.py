"""The array program: a model's intensity as straight-line Python over an array namespace.

Published from 1.3.0 on (role ``array-source``), it is printed from the same lowered form as
the C source (:func:`modelstore._native.codegen.lower_model`): real and imaginary parts
split,
the half-angle rewrite, the same common subexpressions. It runs on numpy or ``jax.numpy``
unchanged, so the JAX and numpy evaluators need neither sympy nor the pickle, and JAX traces a
few thousand array operations instead of lambdifying a 40,000-node expression.

The file is code, so it is never executed as it comes: :func:`compile_array_program` (from
:mod:`modelstore.format.arraycheck`, re-exported here) checks it against an AST allow-list and a
size budget before compiling it, and runs it without builtins.
"""

from __future__ import annotations

import ast
import re
from typing import TYPE_CHECKING, Any

from modelstore.errors import ModelstoreError
from modelstore.format.arraycheck import (
    ARGUMENTS,
    FUNCTION_NAME,
    POLARIMETRY_FUNCTION,
    compile_array_program,
)

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

__all__ = ["ARRAY_FUNCTIONS", "compile_array_program", "generate_array_source"]

# C function -> array-namespace function (numpy and jax.numpy spell them alike)
_C_FUNCTIONS = {
    "fabs": "abs", "sqrt": "sqrt", "exp": "exp", "log": "log", "sin": "sin", "cos": "cos",
    "tan": "tan", "asin": "arcsin", "acos": "arccos", "atan": "arctan", "sinh": "sinh",
    "cosh": "cosh", "tanh": "tanh", "atan2": "arctan2", "pow": "power", "copysign": "copysign",
}  # fmt: skip
ARRAY_FUNCTIONS = frozenset({*_C_FUNCTIONS.values(), "where", "nan"})

# -- C expression -> Python expression ----------------------------------------------------------

_TOKEN_RE = re.compile(
    r"\s*(?:(?P<num>\d+\.\d*(?:[eE][-+]?\d+)?|\d+(?:[eE][-+]?\d+)?)|(?P<name>[A-Za-z_]\w*)"
    r"|(?P<op><=|>=|==|!=|[-+*/()?:,<>]))"
)


class _CExpression:
    """Recursive-descent parser of the C expressions the code generator emits."""

    def __init__(self, code: str) -> None:
        self.tokens: list[tuple[str, str]] = []
        pos = 0
        code = code.rstrip()
        while pos < len(code):
            m = _TOKEN_RE.match(code, pos)
            if not m:
                msg = f"cannot translate C expression at {code[pos : pos + 20]!r}"
                raise ModelstoreError(msg)
            kind = m.lastgroup or ""
            self.tokens.append((kind, m.group(kind)))
            pos = m.end()
        self.pos = 0

    def peek(self) -> str | None:
        return self.tokens[self.pos][1] if self.pos < len(self.tokens) else None

    def take(self, expected: str | None = None) -> tuple[str, str]:
        token = self.tokens[self.pos]
        if expected is not None and token[1] != expected:
            msg = f"expected {expected!r} in C expression, got {token[1]!r}"
            raise ModelstoreError(msg)
        self.pos += 1
        return token

    def parse(self) -> ast.expr:
        node = self.ternary()
        if self.pos != len(self.tokens):
            msg = f"trailing tokens in C expression: {self.tokens[self.pos :][:3]}"
            raise ModelstoreError(msg)
        return node

    def ternary(self) -> ast.expr:
        condition = self.comparison()
        if self.peek() != "?":
            return condition
        self.take("?")
        yes = self.ternary()
        self.take(":")
        no = self.ternary()
        return _xp_call("where", condition, yes, no)

    def comparison(self) -> ast.expr:
        left = self.additive()
        ops = {
            "<": ast.Lt,
            "<=": ast.LtE,
            ">": ast.Gt,
            ">=": ast.GtE,
            "==": ast.Eq,
            "!=": ast.NotEq,
        }
        if self.peek() in ops:
            op = ops[self.take()[1]]()
            return ast.Compare(left=left, ops=[op], comparators=[self.additive()])
        return left

    def additive(self) -> ast.expr:
        node = self.multiplicative()
        while self.peek() in ("+", "-"):
            op = ast.Add() if self.take()[1] == "+" else ast.Sub()
            node = ast.BinOp(left=node, op=op, right=self.multiplicative())
        return node

    def multiplicative(self) -> ast.expr:
        node = self.unary()
        while self.peek() in ("*", "/"):
            op = ast.Mult() if self.take()[1] == "*" else ast.Div()
            node = ast.BinOp(left=node, op=op, right=self.unary())
        return node

    def unary(self) -> ast.expr:
        if self.peek() == "-":
            self.take()
            return ast.UnaryOp(op=ast.USub(), operand=self.unary())
        return self.primary()

    def primary(self) -> ast.expr:
        kind, text = self.take()
        if text == "(":
            node = self.ternary()
            self.take(")")
            return node
        if kind == "num":
            return ast.Constant(float(text))
        if kind != "name":
            msg = f"unexpected {text!r} in C expression"
            raise ModelstoreError(msg)
        if text == "NAN":
            return ast.Attribute(value=ast.Name("xp", ast.Load()), attr="nan", ctx=ast.Load())
        if self.peek() == "(":
            if text not in _C_FUNCTIONS:
                msg = f"no array translation for the C function {text!r}"
                raise ModelstoreError(msg)
            self.take("(")
            args = [self.ternary()]
            while self.peek() == ",":
                self.take(",")
                args.append(self.ternary())
            self.take(")")
            return _xp_call(_C_FUNCTIONS[text], *args)
        return ast.Name(text, ast.Load())


def _xp_call(function: str, *args: ast.expr) -> ast.Call:
    func = ast.Attribute(value=ast.Name("xp", ast.Load()), attr=function, ctx=ast.Load())
    return ast.Call(func=func, args=list(args), keywords=[])


def _translate(code: str) -> str:
    return ast.unparse(_CExpression(code).parse())


def generate_array_source(forms: Mapping[str, Any], parameter_names: Sequence[str]) -> str:
    """The array program of the model in ``forms`` (same lowering as the C source).

    Temporaries are deleted after their last use, so numpy keeps only the live ones.

    Raises:
        ModelstoreError: the lowered code has a construct without an array translation.
    """
    from modelstore._native.codegen import lower_model

    lowered = lower_model(forms, parameter_names)
    source = (
        "# Generated by modelstore from the model's lowered form (as the C source); do not edit.\n"
        f"# {len(lowered.parameter_names)} parameters in {lowered.n_slots} slots of `par`;"
        " complex ones take (re, im).\n"
    ) + _function_source(
        FUNCTION_NAME, lowered.parameters, lowered.temps, [("result", lowered.result)], "result"
    )
    if "polarimetry" in forms:  # 1.4.0 on
        from modelstore._native.multi import lower_polarimetry

        polar = lower_polarimetry(forms, parameter_names)
        results = ("intensity", "ax", "ay", "az")
        outputs = list(zip(results, polar.outputs, strict=True))
        source += "\n\n" + _function_source(
            POLARIMETRY_FUNCTION, polar.parameters, polar.temps, outputs, f"({', '.join(results)})"
        )
    return source


def _function_source(
    name: str,
    parameters: Sequence[tuple[str, int, bool]],
    temps: Sequence[Any],
    outputs: Sequence[tuple[str, str]],
    returns: str,
) -> str:
    """One straight-line function: unpack ``par``, the temporaries, the outputs, ``return``.

    Temporaries are deleted after their last use, so numpy keeps only the live ones.
    """
    lines = [
        f"{local}_re = par[{first}]\n{local}_im = par[{first + 1}]"
        if cplx
        else f"{local} = par[{first}]"
        for local, first, cplx in parameters
    ]
    statements = [(t.name, _translate(t.code)) for t in temps]
    statements += [(output, _translate(code)) for output, code in outputs]
    last_use: dict[str, int] = {}
    for k, (_, code) in enumerate(statements):
        for temp in re.findall(r"\ba[0-9]+\b", code):
            last_use[temp] = k
    dead_after: dict[int, list[str]] = {}
    for temp, k in last_use.items():
        dead_after.setdefault(k, []).append(temp)
    for k, (target, code) in enumerate(statements):
        lines.append(f"{target} = {code}")
        if k in dead_after and k < len(statements) - 1:
            lines.append(f"del {', '.join(sorted(dead_after[k], key=lambda n: int(n[1:])))}")
    body = "\n".join("    " + line for text in lines for line in text.split("\n"))
    return f"def {name}({', '.join(ARGUMENTS)}):\n{body}\n    return {returns}\n"
