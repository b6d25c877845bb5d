"""The array program: a model's intensity as straight-line Python over an array namespace.

Published from 1.3.0 on (role ``array-source``), it is printed from the same lowered form as
the C source (:func:`modelstore.backends._native.codegen.lower_model`): real and imaginary parts
split,
the half-angle rewrite, the same common subexpressions. It runs on numpy or ``jax.numpy``
unchanged, so the JAX and numpy evaluators need neither sympy nor the pickle, and JAX traces a
few thousand array operations instead of lambdifying a 40,000-node expression.

The file is code, so it is never executed as it comes: :func:`compile_array_program` parses it
and admits only one function of fixed signature whose body assigns arithmetic of its own names,
numbers, ``par[k]`` and calls of allow-listed ``xp`` functions. Anything else (imports,
attributes other than ``xp.<function>``, other calls, loops, dunder names) is refused before
compilation, and the code runs with no builtins.
"""

from __future__ import annotations

import ast
import re
from typing import TYPE_CHECKING, Any

from modelstore.errors import IntegrityError, ModelstoreError

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

__all__ = ["ARRAY_FUNCTIONS", "compile_array_program", "generate_array_source"]

FUNCTION_NAME = "intensity"
POLARIMETRY_FUNCTION = "polarimetry"  # 1.4.0 on: a second function, returning (I, ax, ay, az)
POLARIMETRY_RESULTS = 4
ARGUMENTS = ("sigma1", "sigma2", "par", "xp")
# C function -> array-namespace function (numpy and jax.numpy spell them alike)
_C_FUNCTIONS = {
    "fabs": "abs", "sqrt": "sqrt", "exp": "exp", "log": "log", "sin": "sin", "cos": "cos",
    "tan": "tan", "asin": "arcsin", "acos": "arccos", "atan": "arctan", "sinh": "sinh",
    "cosh": "cosh", "tanh": "tanh", "atan2": "arctan2", "pow": "power", "copysign": "copysign",
}  # fmt: skip
ARRAY_FUNCTIONS = frozenset({*_C_FUNCTIONS.values(), "where", "nan"})
_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,80}$")
_MAX_SOURCE_BYTES = 64 << 20

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
    from modelstore.backends._native.codegen import lower_model

    lowered = lower_model(forms, parameter_names)
    source = (
        "# Generated by modelstore from the model's lowered form (as the C source); do not edit.\n"
        f"# {len(lowered.parameter_names)} parameters in {lowered.n_slots} slots of `par`;"
        " complex ones take (re, im).\n"
    ) + _function_source(
        FUNCTION_NAME, lowered.parameters, lowered.temps, [("result", lowered.result)], "result"
    )
    if "polarimetry" in forms:  # 1.4.0 on
        from modelstore.backends._native.multi import lower_polarimetry

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


# -- validation and compilation --------------------------------------------------------------


def _refuse(where: str, node: ast.AST, why: str) -> IntegrityError:
    line = getattr(node, "lineno", "?")
    return IntegrityError(f"{where}: line {line}: {why}; the array program is refused")


def _check_expression(node: ast.expr, where: str) -> None:
    stack: list[ast.AST] = [node]
    while stack:
        n = stack.pop()
        if isinstance(n, ast.BinOp):
            if not isinstance(n.op, (ast.Add, ast.Sub, ast.Mult, ast.Div)):
                raise _refuse(where, n, f"operator {type(n.op).__name__} is not allowed")
            stack += [n.left, n.right]
        elif isinstance(n, ast.UnaryOp):
            if not isinstance(n.op, (ast.USub, ast.UAdd)):
                raise _refuse(where, n, f"operator {type(n.op).__name__} is not allowed")
            stack.append(n.operand)
        elif isinstance(n, ast.Compare):
            allowed = (ast.Lt, ast.LtE, ast.Gt, ast.GtE, ast.Eq, ast.NotEq)
            if len(n.ops) != 1 or not isinstance(n.ops[0], allowed):
                raise _refuse(where, n, "only single comparisons are allowed")
            stack += [n.left, *n.comparators]
        elif isinstance(n, ast.Call):
            if n.keywords or not _is_xp(n.func) or n.func.attr == "nan":  # type: ignore[attr-defined]
                raise _refuse(where, n, "only calls of allow-listed xp functions are allowed")
            stack += n.args
        elif isinstance(n, ast.Attribute):
            if not _is_xp(n) or n.attr != "nan":
                raise _refuse(where, n, "only xp.nan may be read as an attribute")
        elif isinstance(n, ast.Subscript):
            indexes_par = isinstance(n.value, ast.Name) and n.value.id == "par"
            if not (
                indexes_par and isinstance(n.slice, ast.Constant) and type(n.slice.value) is int
            ):
                raise _refuse(where, n, "only par[<integer>] may be indexed")
        elif isinstance(n, ast.Name):
            if not _NAME_RE.match(n.id) or n.id == "xp":
                raise _refuse(where, n, f"name {n.id!r} is not allowed")
        elif isinstance(n, ast.Constant):
            if type(n.value) not in (int, float):
                raise _refuse(where, n, "only numeric constants are allowed")
        else:
            raise _refuse(where, n, f"{type(n).__name__} is not allowed")


def _is_xp(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id == "xp"
        and node.attr in ARRAY_FUNCTIONS
    )


def _check_program(tree: ast.Module, where: str) -> None:
    names = (FUNCTION_NAME, POLARIMETRY_FUNCTION)
    if not 1 <= len(tree.body) <= len(names) or not all(
        isinstance(f, ast.FunctionDef) for f in tree.body
    ):
        raise _refuse(where, tree, "expected one function definition (two from 1.4.0 on)")
    for func, name in zip(tree.body, names, strict=False):
        _check_function(func, name, where)  # type: ignore[arg-type]


def _is_result_tuple(node: ast.expr | None) -> bool:
    return (
        isinstance(node, ast.Tuple)
        and len(node.elts) == POLARIMETRY_RESULTS
        and all(
            isinstance(e, ast.Name) and _NAME_RE.match(e.id) and e.id not in ARGUMENTS
            for e in node.elts
        )
    )


def _check_function(func: ast.FunctionDef, name: str, where: str) -> None:
    a = func.args
    if (
        func.name != name
        or func.decorator_list
        or func.returns is not None
        or a.posonlyargs or a.vararg or a.kwonlyargs or a.kwarg or a.defaults
        or tuple(arg.arg for arg in a.args) != ARGUMENTS
        or any(arg.annotation is not None for arg in a.args)
    ):  # fmt: skip
        raise _refuse(where, func, f"expected `def {name}({', '.join(ARGUMENTS)}):`")
    protected = set(ARGUMENTS)
    for k, statement in enumerate(func.body):
        last = k == len(func.body) - 1
        if isinstance(statement, ast.Assign) and not last:
            if len(statement.targets) != 1 or not isinstance(statement.targets[0], ast.Name):
                raise _refuse(where, statement, "only assignments to one name are allowed")
            target = statement.targets[0].id
            if not _NAME_RE.match(target) or target in protected:
                raise _refuse(where, statement, f"cannot assign to {target!r}")
            _check_expression(statement.value, where)
        elif isinstance(statement, ast.Delete) and not last:
            for deleted in statement.targets:
                if not isinstance(deleted, ast.Name) or deleted.id in protected:
                    raise _refuse(where, statement, "only local names may be deleted")
        elif (
            isinstance(statement, ast.Return)
            and last
            and name == FUNCTION_NAME
            and statement.value is not None
        ):
            _check_expression(statement.value, where)
        elif isinstance(statement, ast.Return) and last and name == POLARIMETRY_FUNCTION:
            if not _is_result_tuple(statement.value):
                raise _refuse(
                    where,
                    statement,
                    f"{name} must return a tuple of {POLARIMETRY_RESULTS} local names",
                )
        else:
            raise _refuse(where, statement, f"{type(statement).__name__} is not allowed here")


def compile_array_program(
    source: str, where: str = "array program", function: str = FUNCTION_NAME
) -> Callable[..., Any]:
    """Validate the array program ``source`` against the allow-list, then compile it.

    Returns the function ``intensity(sigma1, sigma2, par, xp)``, or with
    ``function="polarimetry"`` the second function of a 1.4.0 program, which returns
    ``(intensity, ax, ay, az)``.

    Raises:
        IntegrityError: the source is not a valid array program (it names the line and the
            construct that is not allowed).
    """
    if len(source) > _MAX_SOURCE_BYTES:
        msg = f"{where}: larger than {_MAX_SOURCE_BYTES} bytes; refused"
        raise IntegrityError(msg)
    try:
        tree = ast.parse(source, filename=where)
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        msg = f"{where}: not valid Python ({type(exc).__name__}); the array program is refused"
        raise IntegrityError(msg) from None
    _check_program(tree, where)
    namespace: dict[str, Any] = {"__builtins__": {}}
    if function not in namespace_names(tree):
        msg = f"{where}: has no function {function!r} (polarimetry is published from 1.4.0 on)"
        raise IntegrityError(msg)
    exec(compile(tree, where, "exec"), namespace)  # noqa: S102 (validated: arithmetic only)
    return namespace[function]


def namespace_names(tree: ast.Module) -> list[str]:
    """Names of the functions a validated program defines."""
    return [f.name for f in tree.body if isinstance(f, ast.FunctionDef)]
