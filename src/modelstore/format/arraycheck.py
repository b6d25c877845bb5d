"""The array program's allow-list: what a published ``array-source`` may contain, and compiling it.

The file is code, so it is never executed as it comes: :func:`compile_array_program` parses it
and admits only one function of fixed signature (two from 1.4.0 on) whose body assigns
arithmetic of its own names, float constants, ``par[k]`` and calls of allow-listed ``xp``
functions. Anything else (imports, attributes other than ``xp.<function>``, other calls, loops,
dunder names) is refused before compilation, and the code runs with no builtins.

Every value a program computes is a float array or a numpy/JAX scalar, never a Python integer:
constants are floats (integers appear only as ``par[<integer>]`` indices; published programs have
no other integer literal), a comparison may only be the condition of ``xp.where`` (Python's
``True + True`` is integer arithmetic), each ``xp`` function takes its fixed number of
arguments (``xp.where(c)`` returns a tuple, and ``t + t`` doubles it), and a name is read only
after the function assigned it (so it never resolves to the program's own functions). Its run
time is therefore bounded by its size, which is bounded before anything is compiled.
"""

from __future__ import annotations

import ast
import re
from typing import TYPE_CHECKING, Any

from modelstore.errors import IntegrityError

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = [
    "ARGUMENTS",
    "FUNCTION_NAME",
    "POLARIMETRY_FUNCTION",
    "XP_FUNCTIONS",
    "compile_array_program",
]

FUNCTION_NAME = "intensity"
POLARIMETRY_FUNCTION = "polarimetry"  # 1.4.0 on: a second function, returning (I, ax, ay, az)
POLARIMETRY_RESULTS = 4
ARGUMENTS = ("sigma1", "sigma2", "par", "xp")
# array-namespace function -> number of arguments (numpy and jax.numpy spell them alike)
XP_FUNCTIONS = {
    "abs": 1, "sqrt": 1, "exp": 1, "log": 1, "sin": 1, "cos": 1, "tan": 1, "arcsin": 1,
    "arccos": 1, "arctan": 1, "sinh": 1, "cosh": 1, "tanh": 1, "arctan2": 2, "power": 2,
    "copysign": 2, "where": 3,
}  # fmt: skip
_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,80}$")
# The size budget, checked before compilation (CPython's compiler recurses over the tree: a
# 1,500-term sum raised RecursionError). The 18 distinct published programs (1.3.0, 1.4.0)
# reach at most 107,697 characters, 2,905 lines, 14,766 expression nodes and an expression
# nesting depth of 23 (ls-couplings 1.4.0); the limits are 9.7x, 5.6x, 8.9x and 5.6x that.
MAX_SOURCE_CHARS = 1 << 20
MAX_LINES = 1 << 14
MAX_NODES = 1 << 17
MAX_NESTING = 128
MAX_PAR_INDEX = 1 << 12  # published programs index par[0] to par[117]


def _refuse(where: str, node: ast.AST, why: str) -> IntegrityError:
    line = getattr(node, "lineno", "?")
    return IntegrityError(f"{where}: line {line}: {why}; the array program is refused")


def _check_expression(node: ast.expr, where: str, assigned: set[str], budget: list[int]) -> None:
    """Walk ``node`` without recursion, within the node budget and the nesting limit."""
    stack: list[tuple[ast.AST, int]] = [(node, 1)]
    conditions: set[int] = set()  # ids of the comparisons that are conditions of xp.where
    while stack:
        n, depth = stack.pop()
        budget[0] -= 1
        if budget[0] < 0:
            raise _refuse(where, n, f"more than {MAX_NODES} expression nodes")
        if depth > MAX_NESTING:
            raise _refuse(where, n, f"an expression nested deeper than {MAX_NESTING} levels")
        operands: list[ast.expr]
        if isinstance(n, ast.BinOp):
            if not isinstance(n.op, (ast.Add, ast.Sub, ast.Mult, ast.Div)):
                raise _refuse(where, n, f"operator {type(n.op).__name__} is not allowed")
            operands = [n.left, n.right]
        elif isinstance(n, ast.UnaryOp):
            if not isinstance(n.op, (ast.USub, ast.UAdd)):
                raise _refuse(where, n, f"operator {type(n.op).__name__} is not allowed")
            operands = [n.operand]
        elif isinstance(n, ast.Call):
            operands = _call_arguments(n, where)
            if isinstance(operands[0], ast.Compare) and n.func.attr == "where":  # type: ignore[attr-defined]
                conditions.add(id(operands[0]))
        elif isinstance(n, ast.Attribute):
            if not (isinstance(n.value, ast.Name) and n.value.id == "xp" and n.attr == "nan"):
                raise _refuse(where, n, "only xp.nan may be read as an attribute")
            continue
        elif isinstance(n, ast.Subscript):
            index = n.slice.value if isinstance(n.slice, ast.Constant) else None
            if not (
                isinstance(n.value, ast.Name)
                and n.value.id == "par"
                and type(index) is int
                and 0 <= index < MAX_PAR_INDEX
            ):
                why = f"only par[k] with an integer 0 <= k < {MAX_PAR_INDEX} may be indexed"
                raise _refuse(where, n, why)
            continue
        elif isinstance(n, ast.Name):
            if n.id not in assigned:
                raise _refuse(where, n, f"name {n.id!r} is read before it is assigned")
            continue
        elif isinstance(n, ast.Constant):
            if type(n.value) is not float:
                raise _refuse(where, n, "only float constants are allowed (integers: par[k])")
            continue
        elif isinstance(n, ast.Compare):
            # only as a condition: its Python bool would be an integer (True + True == 2)
            if id(n) not in conditions:
                raise _refuse(where, n, "a comparison may only be the condition of xp.where")
            allowed = (ast.Lt, ast.LtE, ast.Gt, ast.GtE, ast.Eq, ast.NotEq)
            if len(n.ops) != 1 or not isinstance(n.ops[0], allowed):
                raise _refuse(where, n, "only single comparisons are allowed")
            operands = [n.left, *n.comparators]
        else:
            raise _refuse(where, n, f"{type(n).__name__} is not allowed")
        for operand in operands:
            stack.append((operand, depth + 1))


def _call_arguments(call: ast.Call, where: str) -> list[ast.expr]:
    """The arguments of an allow-listed ``xp`` call with its number of arguments."""
    func = call.func
    if (
        call.keywords
        or not isinstance(func, ast.Attribute)
        or not isinstance(func.value, ast.Name)
        or func.value.id != "xp"
        or func.attr not in XP_FUNCTIONS
    ):
        raise _refuse(where, call, "only calls of allow-listed xp functions are allowed")
    if len(call.args) != XP_FUNCTIONS[func.attr]:
        raise _refuse(where, call, f"xp.{func.attr} takes {XP_FUNCTIONS[func.attr]} arguments")
    return list(call.args)


def _check_program(tree: ast.Module, where: str) -> None:
    """The allow-list and the node budget (shared by the functions), statement by statement."""
    names = (FUNCTION_NAME, POLARIMETRY_FUNCTION)
    if not 1 <= len(tree.body) <= len(names) or not all(
        isinstance(f, ast.FunctionDef) for f in tree.body
    ):
        raise _refuse(where, tree, "expected one function definition (two from 1.4.0 on)")
    budget = [MAX_NODES]
    for func, name in zip(tree.body, names, strict=False):
        _check_function(func, name, where, budget)  # type: ignore[arg-type]


def _check_function(func: ast.FunctionDef, name: str, where: str, budget: list[int]) -> None:
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
    # the names the body may read: its arguments but xp (only as xp.<function>), then what it
    # assigns; neither builtins nor the module's functions are ever reached
    assigned = {"sigma1", "sigma2", "par"}
    for k, statement in enumerate(func.body):
        last = k == len(func.body) - 1
        if isinstance(statement, ast.Assign) and not last:
            if len(statement.targets) != 1 or not isinstance(statement.targets[0], ast.Name):
                raise _refuse(where, statement, "only assignments to one name are allowed")
            target = statement.targets[0].id
            if not _NAME_RE.match(target) or target in ARGUMENTS:
                raise _refuse(where, statement, f"cannot assign to {target!r}")
            _check_expression(statement.value, where, assigned, budget)
            assigned.add(target)
        elif isinstance(statement, ast.Delete) and not last:
            for deleted in statement.targets:
                if not isinstance(deleted, ast.Name) or deleted.id in ARGUMENTS:
                    raise _refuse(where, statement, "only local names may be deleted")
                if deleted.id not in assigned:
                    raise _refuse(where, statement, f"{deleted.id!r} is deleted but not assigned")
                assigned.remove(deleted.id)
        elif (
            isinstance(statement, ast.Return)
            and last
            and name == FUNCTION_NAME
            and statement.value is not None
        ):
            _check_expression(statement.value, where, assigned, budget)
        elif isinstance(statement, ast.Return) and last and name == POLARIMETRY_FUNCTION:
            result = statement.value
            returnable = assigned - set(ARGUMENTS)
            if not (
                isinstance(result, ast.Tuple)
                and len(result.elts) == POLARIMETRY_RESULTS
                and all(isinstance(e, ast.Name) and e.id in returnable for e in result.elts)
            ):
                why = f"{name} must return a tuple of {POLARIMETRY_RESULTS} assigned local names"
                raise _refuse(where, statement, why)
        else:
            raise _refuse(where, statement, f"{type(statement).__name__} is not allowed here")


def compile_array_program(
    source: str, where: str = "array program", function: str = FUNCTION_NAME
) -> Callable[..., Any]:
    """Validate the array program ``source`` against the allow-list, then compile it.

    Returns the function ``intensity(sigma1, sigma2, par, xp)``, or with
    ``function="polarimetry"`` the second function of a 1.4.0 program, which returns
    ``(intensity, ax, ay, az)``. A float division by zero or a ``par`` index beyond the packed
    parameters, when the function runs, raises IntegrityError too.

    Raises:
        IntegrityError: the source is not a valid array program, one line naming ``where``
            (and the line and construct that is not allowed, or the budget it exceeds).
    """
    if len(source) > MAX_SOURCE_CHARS or source.count("\n") > MAX_LINES:
        msg = (
            f"{where}: larger than {MAX_SOURCE_CHARS} characters or {MAX_LINES} lines;"
            " the array program is refused"
        )
        raise IntegrityError(msg)
    try:
        tree = ast.parse(source, filename=where)
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        msg = f"{where}: not valid Python ({type(exc).__name__}); the array program is refused"
        raise IntegrityError(msg) from None
    _check_program(tree, where)  # iterative, so it also guards compile() against deep trees
    if function not in [f.name for f in tree.body if isinstance(f, ast.FunctionDef)]:
        msg = f"{where}: has no function {function!r} (polarimetry is published from 1.4.0 on)"
        raise IntegrityError(msg)
    namespace: dict[str, Any] = {"__builtins__": {}}
    try:
        code = compile(tree, where, "exec")
        exec(code, namespace)  # noqa: S102 (validated: float arithmetic only)
    except (SyntaxError, ValueError, TypeError, RecursionError, MemoryError) as exc:
        msg = f"{where}: cannot be compiled ({type(exc).__name__}); the array program is refused"
        raise IntegrityError(msg) from None
    return _guarded(namespace[function], where)


def _guarded(program: Callable[..., Any], where: str) -> Callable[..., Any]:
    """``program`` with the errors a validated program can still raise as IntegrityError."""

    def run(sigma1: Any, sigma2: Any, par: Any, xp: Any) -> Any:
        try:
            return program(sigma1, sigma2, par, xp)
        except (ZeroDivisionError, IndexError) as exc:
            msg = f"{where}: failed when run ({type(exc).__name__}: {exc}); the program is faulty"
            raise IntegrityError(msg) from None

    return run
