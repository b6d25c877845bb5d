"""Read sympy ``srepr`` text without ``eval``: an allow-list parser that builds sympy objects.

``srepr`` text is Python syntax, and evaluating it runs arbitrary code (sympy issues #10805,
#24990). This parser accepts only calls of allow-listed sympy classes with literal arguments,
builds each object directly, and refuses anything else: attribute access, other names,
operators, lambdas, comprehensions, dunder names, unbounded nesting and huge numbers.
The parser is iterative, so nesting depth is limited by ``MAX_DEPTH``, not by Python's stack.
"""

from __future__ import annotations

import re
from typing import Any

from modelstore.errors import SreprParseError

__all__ = ["MAX_DEPTH", "parse_srepr"]

MAX_DEPTH = 500
MAX_INPUT_CHARS = 64 << 20
MAX_STRING_CHARS = 10_000
MAX_INT_DIGITS = 40
MAX_EXPONENT = 1_000
MAX_FLOAT_PRECISION = 1_000
# Each literal is small, but powers of numbers multiply sizes, and nesting multiplies again:
# Pow(Pow(Pow(Integer(10), Integer(1000)), Integer(1000)), Integer(1000)) is 71 characters and
# a 10**(10**9) that sympy would compute for ever. So every power whose base holds numbers is
# priced (bits of the base's numbers times the exponent) before sympy evaluates it, one power
# may cost at most MAX_POWER_BITS and a whole parse at most MAX_TOTAL_POWER_BITS.
MAX_POWER_BITS = 1 << 16
MAX_TOTAL_POWER_BITS = 1 << 22
# Sums and products are priced too: Add and Mul add up (multiply) the numbers among their
# arguments, the coefficients of product terms and the exponents of a common base, and each
# step costs about the size of the running result times the next number. An Add of 1,500
# Rationals with 40-digit denominators (82 KB of text) took 32 s, 2,000 of them 100 s. So each
# Add/Mul may combine numbers of at most MAX_ARITHMETIC_BITS bits (summed over what it
# combines, which bounds the running result), and a whole parse at most
# MAX_TOTAL_ARITHMETIC_BITS. Published srepr files combine at most 54 bits in one Add/Mul and
# 189,136 bits in one parse (ls-couplings 1.0.0's intensity, 2.3 MB): limits 75x and 11x that.
MAX_ARITHMETIC_BITS = 1 << 12
MAX_MINMAX_ARGUMENTS = 16  # Max/Min of n arguments: 50 took 2.6 s, 200 took 54 s
MAX_TOTAL_ARITHMETIC_BITS = 1 << 21

_TOKEN_RE = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<number>-?[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?)
  | (?P<string>'(?:[^'\\\n]|\\.){0,%d}'|"(?:[^"\\\n]|\\.){0,%d}")
  | (?P<punct>[(),=])
    """
    % (MAX_STRING_CHARS, MAX_STRING_CHARS),
    re.VERBOSE,
)
_ESCAPE_RE = re.compile(r"\\(x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|.)")
_SIMPLE_ESCAPES = {"\\": "\\", "'": "'", '"': '"', "n": "\n", "t": "\t", "r": "\r", "0": "\0"}


def _unescape(body: str, position: int) -> str:
    def replace(match: re.Match[str]) -> str:
        esc = match.group(1)
        if esc[0] in "xuU" and len(esc) > 1:
            return chr(int(esc[1:], 16))
        if esc in _SIMPLE_ESCAPES:
            return _SIMPLE_ESCAPES[esc]
        msg = f"unknown escape sequence \\{esc} in string at offset {position}"
        raise SreprParseError(msg)

    return _ESCAPE_RE.sub(replace, body)


class _Literal:
    """A literal argument (string, number or bool) waiting to be consumed by a constructor."""

    __slots__ = ("value",)

    def __init__(self, value: str | int | float | bool) -> None:
        self.value = value


def _sympy_tables() -> tuple[dict[str, Any], dict[str, Any], frozenset[str]]:
    import sympy as sp
    from sympy.core.assumptions import _assume_defined
    from sympy.core.symbol import Str
    from sympy.functions.elementary.piecewise import ExprCondPair

    functions = {
        cls.__name__: cls
        for cls in (
            sp.Add, sp.Mul, sp.Pow, sp.Abs, sp.exp, sp.log, sp.sin, sp.cos, sp.tan,
            sp.asin, sp.acos, sp.atan, sp.atan2, sp.sinh, sp.cosh, sp.tanh, sp.sign,
            sp.conjugate, sp.re, sp.im, sp.arg, sp.Heaviside, sp.Max, sp.Min,
            sp.Piecewise, ExprCondPair, sp.Tuple, sp.Indexed,
            sp.Eq, sp.Ne, sp.LessThan, sp.StrictLessThan, sp.GreaterThan,
            sp.StrictGreaterThan, sp.And, sp.Or, sp.Not,
        )
    }  # fmt: skip
    constants = {
        "I": sp.I, "pi": sp.pi, "E": sp.E, "oo": sp.oo, "zoo": sp.zoo, "nan": sp.nan,
        "true": sp.true, "false": sp.false,
    }  # fmt: skip
    literal_builders = {"Symbol": sp.Symbol, "Integer": sp.Integer, "Rational": sp.Rational,
                        "Float": sp.Float, "Str": Str, "IndexedBase": sp.IndexedBase}  # fmt: skip
    functions.update(literal_builders)
    return functions, constants, frozenset(_assume_defined)


_TABLES: tuple[dict[str, Any], dict[str, Any], frozenset[str]] | None = None
# Classes whose arguments may be other than expressions (labels, conditions, pairs).
_STRUCTURAL = frozenset(
    {"Indexed", "IndexedBase", "Piecewise", "ExprCondPair", "Tuple", "And", "Or", "Not"}
)


def _tables() -> tuple[dict[str, Any], dict[str, Any], frozenset[str]]:
    global _TABLES  # noqa: PLW0603
    if _TABLES is None:
        _TABLES = _sympy_tables()
    return _TABLES


def _int_literal(arg: object, where: str) -> int:
    if (
        not isinstance(arg, _Literal)
        or not isinstance(arg.value, int)
        or isinstance(arg.value, bool)
    ):
        msg = f"{where}: expected an integer literal"
        raise SreprParseError(msg)
    return arg.value


def _power_bits(base: Any, exponent: Any) -> int:
    """An upper estimate of the bits sympy may compute for ``base ** exponent`` (0 if none)."""
    import math

    import sympy as sp

    if not exponent.is_Number or exponent.is_zero:
        return 0
    try:
        magnitude = abs(float(exponent))
    except (TypeError, OverflowError, ValueError):
        return MAX_TOTAL_POWER_BITS + 1
    if math.isnan(magnitude) or magnitude == math.inf:
        return 0  # oo/nan exponents give symbolic results, nothing is computed
    numbers = [base] if base.is_Rational else base.atoms(sp.Rational)
    bits = sum(int(a.p).bit_length() + int(a.q).bit_length() for a in numbers)
    return int(bits * math.ceil(magnitude))


def _rational_bits(number: Any) -> int:
    return int(number.p).bit_length() + int(number.q).bit_length() if number.is_Rational else 0


class _Budget:
    """What one parse may still spend on powers and on sums/products of numbers (in bits)."""

    __slots__ = ("arithmetic", "memo", "power")

    def __init__(self) -> None:
        self.power = MAX_TOTAL_POWER_BITS
        self.arithmetic = MAX_TOTAL_ARITHMETIC_BITS
        # id -> (object, bits) of the sums and products already priced; the object is kept so
        # its id is not reused during the parse
        self.memo: dict[int, tuple[Any, int]] = {}

    def _memoized(self, expression: Any, parts: Any) -> int:
        hit = self.memo.get(id(expression))
        if hit is None:
            hit = self.memo[id(expression)] = (expression, sum(parts))
        return hit[1]

    def sum_bits(self, term: Any) -> int:
        """Bits of the numbers ``Add`` adds up from one argument: a number, the coefficient
        of a product, those of a sum's terms (a sum argument is flattened into the Add)."""
        if term.is_Add:
            return self._memoized(term, (self._coefficient_bits(t) for t in term.args))
        return self._coefficient_bits(term)

    @staticmethod
    def _coefficient_bits(term: Any) -> int:
        if term.is_Mul and term.args:
            return _rational_bits(term.args[0])
        return _rational_bits(term)

    def product_bits(self, factor: Any) -> int:
        """Bits of the numbers ``Mul`` combines from one argument: a number, those of a
        product's factors (flattened into the Mul), the coefficients of a sum (a number is
        distributed over it), and a power's numeric base and exponent (the exponents of a
        common base are added up, numeric bases with a common exponent multiplied)."""
        if factor.is_Mul:
            return self._memoized(factor, (self._factor_bits(f) for f in factor.args))
        return self._factor_bits(factor)

    def _factor_bits(self, factor: Any) -> int:
        if factor.is_Rational:
            return _rational_bits(factor)
        if factor.is_Add:
            return self.sum_bits(factor)
        if factor.is_Mul:  # not made by evaluation; one level is priced
            return sum(_rational_bits(f) for f in factor.args)
        base, exponent = factor.as_base_exp()
        return _rational_bits(base) + self.sum_bits(exponent)


def _charge_arithmetic(name: str, args: list[Any], where: str, budget: _Budget) -> None:
    if name == "Add":
        cost = sum(budget.sum_bits(a) for a in args)
    else:
        cost = sum(budget.product_bits(a) for a in args)
    if cost > MAX_ARITHMETIC_BITS or cost > budget.arithmetic:
        what = "sum" if name == "Add" else "product"
        msg = (
            f"{where}: this {what} would combine numbers of {cost} bits (at most"
            f" {min(MAX_ARITHMETIC_BITS, budget.arithmetic)} allowed; each Add/Mul may combine"
            f" {MAX_ARITHMETIC_BITS}, a whole expression {MAX_TOTAL_ARITHMETIC_BITS})"
        )
        raise SreprParseError(msg)
    budget.arithmetic -= cost


def _build(name: str, args: list[Any], kwargs: dict[str, Any], offset: int, budget: _Budget) -> Any:
    import sympy as sp

    functions, _, assumptions = _tables()
    where = f"{name}(...) at offset {offset}"
    if name == "Symbol":
        if (
            len(args) != 1
            or not isinstance(args[0], _Literal)
            or not isinstance(args[0].value, str)
        ):
            msg = f"{where}: Symbol takes one string"
            raise SreprParseError(msg)
        for key, value in kwargs.items():
            if (
                key not in assumptions
                or not isinstance(value, _Literal)
                or not isinstance(value.value, bool)
            ):
                msg = f"{where}: {key}= is not a sympy assumption with a True/False value"
                raise SreprParseError(msg)
        return sp.Symbol(args[0].value, **{k: v.value for k, v in kwargs.items()})
    if name in ("Max", "Min"):  # sympy compares every pair of arguments: cost ~ n² to n³
        count = sum(len(a.args) if type(a).__name__ == name else 1 for a in args)
        if count > MAX_MINMAX_ARGUMENTS:
            msg = f"{where}: {count} arguments (at most {MAX_MINMAX_ARGUMENTS}, flattened)"
            raise SreprParseError(msg)
    if kwargs and name != "Float":
        msg = f"{where}: keyword arguments are only allowed for Symbol and Float"
        raise SreprParseError(msg)
    if name == "Integer":
        if len(args) != 1:
            raise SreprParseError(f"{where}: Integer takes one integer")
        return sp.Integer(_int_literal(args[0], where))
    if name == "Rational":
        if len(args) != 2:
            raise SreprParseError(f"{where}: Rational takes two integers")
        p, q = (_int_literal(a, where) for a in args)
        if q == 0:
            raise SreprParseError(f"{where}: zero denominator")
        return sp.Rational(p, q)
    if name == "Float":
        if len(args) != 1 or not isinstance(args[0], _Literal) or isinstance(args[0].value, bool):
            raise SreprParseError(f"{where}: Float takes one number or numeric string")
        if set(kwargs) - {"precision"}:
            raise SreprParseError(f"{where}: Float takes only precision=")
        precision = 53
        if "precision" in kwargs:
            precision = _int_literal(kwargs["precision"], where)
            if not 1 <= precision <= MAX_FLOAT_PRECISION:
                raise SreprParseError(f"{where}: precision {precision} out of range")
        value = args[0].value
        if isinstance(value, str) and not re.fullmatch(
            r"[-+]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]{1,4})?", value
        ):
            raise SreprParseError(f"{where}: {value!r} is not a decimal number")
        return sp.Float(value, precision=precision)
    if name == "Str":
        if (
            len(args) != 1
            or not isinstance(args[0], _Literal)
            or not isinstance(args[0].value, str)
        ):
            raise SreprParseError(f"{where}: Str takes one string")
        return sp.core.symbol.Str(args[0].value)
    for arg in args:
        if not isinstance(arg, sp.Basic):
            msg = f"{where}: argument {arg.value!r} must be a sympy object, not a literal"
            raise SreprParseError(msg)
        if name not in _STRUCTURAL and not isinstance(arg, sp.Expr):
            msg = f"{where}: argument of type {type(arg).__name__} is not an expression"
            raise SreprParseError(msg)
    if name == "Pow" and len(args) == 2:
        base, exponent = args
        if base.is_Number and exponent.is_Number and abs(exponent) > MAX_EXPONENT:
            msg = f"{where}: exponent {exponent} of a number is too large to evaluate"
            raise SreprParseError(msg)
        cost = _power_bits(base, exponent)
        if cost > MAX_POWER_BITS or cost > budget.power:
            msg = (
                f"{where}: evaluating this power would make numbers of about {cost} bits (at"
                f" most {min(MAX_POWER_BITS, budget.power)} allowed; nested powers multiply sizes)"
            )
            raise SreprParseError(msg)
        budget.power -= cost
    elif name in ("Add", "Mul"):
        _charge_arithmetic(name, args, where, budget)
    from sympy.tensor.indexed import IndexException  # not a ValueError: e.g. Indexed(I)

    try:
        if name == "exp":  # exp(n*log(b)) would evaluate to b**n, unpriced: keep it as written
            return sp.exp(*args, evaluate=False)
        return functions[name](*args)
    except (
        TypeError,
        ValueError,
        ArithmeticError,
        IndexError,
        AttributeError,
        IndexException,
    ) as exc:
        msg = f"{where}: sympy refused the arguments ({type(exc).__name__}: {exc})"
        raise SreprParseError(msg) from None


def parse_srepr(text: str) -> Any:
    """Build the sympy object that ``text`` (an ``srepr`` string) describes.

    Raises SreprParseError for anything outside the allow-list; never evaluates code.

    >>> import sympy as sp
    >>> x = sp.Symbol("x", positive=True)
    >>> parse_srepr(sp.srepr(sp.sqrt(x) + 1)) == sp.sqrt(x) + 1
    True

    Raises:
        SreprParseError: anything outside the allow-list, malformed text, or beyond the budgets.
    """
    if not isinstance(text, str):
        raise SreprParseError(f"expected str, got {type(text).__name__}")
    if len(text) > MAX_INPUT_CHARS:
        raise SreprParseError(f"input of {len(text)} characters exceeds {MAX_INPUT_CHARS}")
    functions, constants, _ = _tables()
    # Each frame: [name, args, kwargs, pending keyword, offset]
    stack: list[list[Any]] = []
    result: list[Any] = []
    budget = _Budget()
    expect_value = True  # a value may start here
    pending_name: tuple[str, int] | None = None
    pos = 0
    n = len(text)

    def emit(value: Any) -> None:
        if stack:
            frame = stack[-1]
            if frame[3] is not None:
                if frame[3] in frame[2]:
                    raise SreprParseError(f"keyword {frame[3]}= given twice at offset {pos}")
                frame[2][frame[3]] = value
                frame[3] = None
            elif frame[2]:
                raise SreprParseError(f"positional argument after keyword argument at offset {pos}")
            else:
                frame[1].append(value)
        else:
            if result:
                raise SreprParseError(f"unexpected second expression at offset {pos}")
            result.append(value)

    def flush_name() -> None:
        nonlocal pending_name
        if pending_name is None:
            return
        name, offset = pending_name
        pending_name = None
        if name in ("True", "False"):
            emit(_Literal(name == "True"))
        elif name in constants:
            emit(constants[name])
        else:
            raise SreprParseError(f"name {name!r} at offset {offset} is not an allowed constant")

    while pos < n:
        match = _TOKEN_RE.match(text, pos)
        if match is None:
            raise SreprParseError(f"unexpected character {text[pos]!r} at offset {pos}")
        kind = match.lastgroup
        token = match.group()
        start = pos
        pos = match.end()
        if kind == "ws":
            continue
        if kind == "name":
            if pending_name is not None or not expect_value:
                raise SreprParseError(f"unexpected name {token!r} at offset {start}")
            pending_name = (token, start)
            expect_value = False
        elif kind == "number":
            if pending_name is not None or not expect_value:
                raise SreprParseError(f"unexpected number at offset {start}")
            digits = token.lstrip("-")
            if "." in token or "e" in token or "E" in token:
                if len(token) > 64:
                    raise SreprParseError(f"float literal too long at offset {start}")
                emit(_Literal(float(token)))
            else:
                if len(digits) > MAX_INT_DIGITS:
                    raise SreprParseError(
                        f"integer literal of {len(digits)} digits at offset {start}"
                    )
                emit(_Literal(int(token)))
            expect_value = False
        elif kind == "string":
            if pending_name is not None or not expect_value:
                raise SreprParseError(f"unexpected string at offset {start}")
            emit(_Literal(_unescape(token[1:-1], start)))
            expect_value = False
        elif token == "(":
            if pending_name is None:
                raise SreprParseError(f"'(' without a class name at offset {start}")
            name, offset = pending_name
            pending_name = None
            if name not in functions:
                raise SreprParseError(f"{name!r} at offset {offset} is not an allowed sympy class")
            if len(stack) >= MAX_DEPTH:
                raise SreprParseError(f"nesting deeper than {MAX_DEPTH} levels at offset {start}")
            stack.append([name, [], {}, None, offset])
            expect_value = True
        elif token == "=":
            if pending_name is None or not stack or stack[-1][3] is not None:
                raise SreprParseError(f"unexpected '=' at offset {start}")
            key, offset = pending_name
            if key.startswith("_"):
                raise SreprParseError(f"keyword {key!r} at offset {offset} is not allowed")
            pending_name = None
            stack[-1][3] = key
            expect_value = True
        elif token in ",)":
            flush_name()
            if not stack:
                raise SreprParseError(f"unexpected {token!r} at offset {start}")
            frame = stack[-1]
            if frame[3] is not None or (expect_value and (token == "," or frame[1] or frame[2])):
                raise SreprParseError(f"missing value before {token!r} at offset {start}")
            if token == ",":
                expect_value = True
                continue
            stack.pop()
            emit(_build(frame[0], frame[1], frame[2], frame[4], budget))
            expect_value = False
    flush_name()
    if stack:
        raise SreprParseError(f"unbalanced parentheses: {len(stack)} left open at end of input")
    if not result or isinstance(result[0], _Literal):
        raise SreprParseError("the input does not describe a sympy expression")
    return result[0]
