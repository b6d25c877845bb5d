"""Straight-line real code for sympy expressions, typed as numpy would type them.

The emitter splits complex values into real and imaginary parts and names every intermediate
(``a<k>``); ``modelstore._native.lowering`` drives it, ``codegen`` prints C
from its output.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from modelstore.errors import ModelstoreError

if TYPE_CHECKING:
    from collections.abc import Sequence

NATIVE_ABI = 4
# 2: 1.1.0 sources (AVX2 dispatch); 3: AVX-512 too, ms_isa(); 4: ms_evaluate_polarimetry too
SUPPORTED_ABIS = (2, 3, 4)
INTENSITY_ABI = 3  # what an intensity-only source (no polarimetry forms) declares
# How a model is lowered to real code. 1: every version published before lowering 2 (the
# array program always); 2: fewer square roots and divisions in the C source (half-angle
# powers without roots, one reciprocal per denominator), recorded in the manifest's provenance
# as ``native_lowering``; 3: also ``1/x`` shared by the reciprocals of common subexpressions
# that are powers of ``x`` (``t = x²``: ``1/t = (1/x)²``); 4: the code of 3, with a header
# that names the axes by particle number (σ1 = m²(23), σ2 = m²(31)) and no reference subsystem,
# not LHCb's particles. A published C source regenerates byte for byte with its own lowering.
LOWERINGS = (1, 2, 3, 4)
LATEST_LOWERING = 4
BLOCK = 64
_TEMP_RE = re.compile(r"\b(a[0-9]+)\b")


def _float(value: float) -> str:
    text = repr(float(value))
    if text in ("inf", "-inf", "nan"):
        return {"inf": "INFINITY", "-inf": "(-INFINITY)", "nan": "NAN"}[text]
    return text if ("." in text or "e" in text) else text + ".0"


# -- values: real scalars, or complex ones as (re, im) parts -----------------------------------


@dataclass(frozen=True)
class _Real:
    code: str


@dataclass(frozen=True)
class _Value:
    """A value of the expression: ``re``/``im`` parts (None means exactly zero).

    ``cplx`` is numpy's dtype of the value (complex or real), which decides the semantics of
    ``sqrt`` and friends, independently of whether the imaginary part happens to be zero.
    """

    re: _Real | None
    im: _Real | None
    cplx: bool

    def _with(self, cplx: bool) -> _Value:
        return _Value(self.re, self.im, cplx)


_ZERO = _Value(None, None, False)


@dataclass
class _Temp:
    name: str
    code: str
    level: int  # -1: parameters only; 0..: vector loop number
    call: bool  # a libm call, computed in a scalar loop before vector loop `level`


class _Emitter:
    """Turns sympy nodes into straight-line real C code in temporaries, tracking levels."""

    def __init__(self, lowering: int = 1) -> None:
        import sympy as sp

        if lowering not in LOWERINGS:
            msg = f"unknown lowering {lowering!r}; this modelstore knows {LOWERINGS}"
            raise ModelstoreError(msg)
        self.sp = sp
        self.lowering = lowering
        self.temps: list[_Temp] = []
        self.by_name: dict[str, _Temp] = {}
        self.levels: dict[str, int] = {"sigma1": 0, "sigma2": 0}
        self.symbols: dict[Any, _Value] = {}
        self._memo: dict[tuple[str, bool], _Real] = {}
        self.powers: dict[Any, tuple[Any, int]] = {}  # lowering 3: symbol -> (x, k) for x**k

    # temporaries

    def level_of(self, code: str) -> int:
        level = -1
        for name in _TEMP_RE.findall(code):
            level = max(level, self.by_name[name].level)
        if re.search(r"\bsigma[12]\b", code):
            level = max(level, 0)
        return level

    def temp(self, code: str, call: bool = False) -> _Real:
        if _TEMP_RE.fullmatch(code) or _is_number(code):
            return _Real(code)
        key = (code, call)
        if key in self._memo:
            return self._memo[key]
        level = self.level_of(code)
        if call and level >= 0:
            level += 1
        name = f"a{len(self.temps)}"
        temp = _Temp(name, code, level, call and level >= 0)
        self.temps.append(temp)
        self.by_name[name] = temp
        result = _Real(name)
        self._memo[key] = result
        return result

    def call(self, function: str, *args: _Real) -> _Real:
        return self.temp(f"{function}({', '.join(a.code for a in args)})", call=True)

    def materialize(self, value: _Value) -> _Value:
        re_ = None if value.re is None else self.temp(value.re.code)
        im = None if value.im is None else self.temp(value.im.code)
        return _Value(re_, im, value.cplx)

    # arithmetic on parts

    @staticmethod
    def _sum(terms: list[str]) -> _Real | None:
        terms = [t for t in terms if t]
        if not terms:
            return None
        return _Real("(" + " + ".join(terms) + ")")

    def add(self, values: Sequence[_Value]) -> _Value:
        return _Value(
            self._sum([v.re.code for v in values if v.re is not None]),
            self._sum([v.im.code for v in values if v.im is not None]),
            any(v.cplx for v in values),
        )

    @staticmethod
    def _prod(a: _Real | None, b: _Real | None) -> str | None:
        if a is None or b is None:
            return None
        return f"{a.code} * {b.code}"

    def mul(self, a: _Value, b: _Value) -> _Value:
        cplx = a.cplx or b.cplx
        if a.im is None and b.im is None:
            return _Value(
                None if self._prod(a.re, b.re) is None else _Real(self._prod(a.re, b.re)),  # type: ignore[arg-type]
                None,
                cplx,
            )
        a, b = self.materialize(a), self.materialize(b)
        rr, ii = self._prod(a.re, b.re), self._prod(a.im, b.im)
        ri, ir = self._prod(a.re, b.im), self._prod(a.im, b.re)
        re_terms = [t for t in (rr, None if ii is None else f"-({ii})") if t]
        return _Value(self._sum(re_terms), self._sum([t for t in (ri, ir) if t]), cplx)

    def scale(self, value: _Value, factor: str) -> _Value:
        """Multiply by a real C expression ``factor`` (no materialisation needed)."""
        re_ = None if value.re is None else _Real(f"{value.re.code} * {factor}")
        im = None if value.im is None else _Real(f"{value.im.code} * {factor}")
        return _Value(re_, im, value.cplx)

    def div(self, a: _Value, b: _Value) -> _Value:
        cplx = a.cplx or b.cplx
        if b.re is None and b.im is None:
            msg = "division by an expression that is identically zero"
            raise ModelstoreError(msg)
        if b.im is None:
            denominator = self.temp(b.re.code)  # type: ignore[union-attr]
            if self.lowering >= 2:  # one division per denominator, then products
                return self.scale(a, self.reciprocal(denominator).code)._with(cplx)
            re_ = None if a.re is None else _Real(f"({a.re.code} / {denominator.code})")
            im = None if a.im is None else _Real(f"({a.im.code} / {denominator.code})")
            return _Value(re_, im, cplx)
        a, b = self.materialize(a), self.materialize(b)
        br = b.re.code if b.re is not None else None
        bi = b.im.code  # type: ignore[union-attr]
        norm = self.temp(f"{br} * {br} + {bi} * {bi}" if br else f"{bi} * {bi}")
        # (ar + i ai) / (br + i bi) = ((ar br + ai bi) + i (ai br - ar bi)) / (br² + bi²)
        re_terms = [self._prod(a.re, b.re), self._prod(a.im, b.im)]
        im_terms = [self._prod(a.im, b.re), None if a.re is None else f"-({a.re.code} * {bi})"]
        num_re, num_im = self._sum(re_terms), self._sum(im_terms)  # type: ignore[arg-type]
        if self.lowering >= 2:
            return self.scale(_Value(num_re, num_im, cplx), self.reciprocal(norm).code)
        return _Value(
            None if num_re is None else _Real(f"({num_re.code} / {norm.code})"),
            None if num_im is None else _Real(f"({num_im.code} / {norm.code})"),
            cplx,
        )

    def reciprocal(self, denominator: _Real) -> _Real:
        """``1 / denominator`` as a temporary (once per call where it depends on parameters)."""
        return self.temp(f"(1.0 / {denominator.code})")

    def sqrt(self, value: _Value) -> _Value:
        if not value.cplx:
            return _Value(
                None if value.re is None else _Real(f"sqrt({value.re.code})"), None, False
            )
        v = self.materialize(value)
        a = v.re.code if v.re is not None else "0.0"
        b = v.im.code if v.im is not None else "0.0"
        # numpy's complex sqrt (principal branch), written with selects so that it vectorises
        t = self.temp(f"sqrt((fabs({a}) + sqrt({a} * {a} + {b} * {b})) * 0.5)")
        q = self.temp(f"(({t.code} == 0.0) ? {b} : {b} / (2.0 * {t.code}))")
        re_ = _Real(f"(({a} >= 0.0) ? {t.code} : fabs({q.code}))")
        im = _Real(f"(({a} >= 0.0) ? {q.code} : copysign({t.code}, {b}))")
        return _Value(re_, im, True)

    def integer_power(self, value: _Value, n: int) -> _Value:
        if n == 0:
            return _Value(_Real("1.0"), None, value.cplx)
        value = self.materialize(value)
        if value.im is None:
            base = value.re.code if value.re is not None else "0.0"
            return _Value(_Real("(" + " * ".join([base] * n) + ")"), None, value.cplx)
        result = None
        power = value
        while n:
            if n & 1:
                result = power if result is None else self.materialize(self.mul(result, power))
            n >>= 1
            if n:
                power = self.materialize(self.mul(power, power))
        return result  # type: ignore[return-value]

    # sympy nodes

    def value(self, expr: Any) -> _Value:
        sp = self.sp
        if expr in self.symbols:
            return self.symbols[expr]
        if expr is sp.I:
            return _Value(None, _Real("1.0"), True)
        if expr.is_Number:
            if expr == 0:
                return _ZERO
            return _Value(_Real(_float(float(expr))), None, False)
        if isinstance(expr, (sp.Symbol, sp.Indexed)):
            msg = f"symbol {expr} has no value in the generated C code"
            raise ModelstoreError(msg)
        if expr.is_Add:
            return self.add([self.value(a) for a in expr.args])
        if expr.is_Mul:
            return self._product(expr.args)
        if expr.is_Pow:
            return self._power(expr.base, expr.exp)
        if isinstance(expr, sp.Abs):
            v = self.value(expr.args[0])
            if v.im is None:
                return _Value(None if v.re is None else _Real(f"fabs({v.re.code})"), None, False)
            v = self.materialize(v)
            parts = [f"{p.code} * {p.code}" for p in (v.re, v.im) if p is not None]
            return _Value(_Real(f"sqrt({' + '.join(parts)})"), None, False)
        if isinstance(expr, sp.conjugate):
            v = self.value(expr.args[0])
            return _Value(v.re, None if v.im is None else _Real(f"(-{v.im.code})"), v.cplx)
        if isinstance(expr, (sp.re, sp.im)):
            v = self.value(expr.args[0])
            return _Value(v.re if isinstance(expr, sp.re) else v.im, None, False)
        if isinstance(expr, sp.Piecewise):
            return self.piecewise(expr)
        functions = {
            sp.exp: "exp", sp.log: "log", sp.sin: "sin", sp.cos: "cos", sp.tan: "tan",
            sp.asin: "asin", sp.acos: "acos", sp.atan: "atan", sp.sinh: "sinh",
            sp.cosh: "cosh", sp.tanh: "tanh",
        }  # fmt: skip
        if type(expr) in functions:
            v = self.value(expr.args[0])
            name = functions[type(expr)]
            if not v.cplx:
                arg = v.re if v.re is not None else _Real("0.0")
                return _Value(self.call(name, arg), None, False)
            return self._complex_function(name, v)
        msg = f"no C translation for {type(expr).__name__} in {str(expr)[:80]}"
        raise ModelstoreError(msg)

    def piecewise(self, expr: Any) -> _Value:
        """numpy's ``select(conditions, pieces, default=nan)``, as sympy's lambdify prints a
        ``Piecewise``: the first piece whose condition holds, NaN where none does. Every piece is
        computed (as numpy computes them), then chosen part by part with selects (blends once
        vectorised): ``ComplexSqrt`` unfolded, ``(I*sqrt(-x), x < 0), (sqrt(x), True)``, is
        an ``i·sqrt(-x)`` below 0 and a ``sqrt(x)`` above.

        Raises:
            ModelstoreError: a condition that is not a comparison of real values (or And, Or,
                Not of such), or a piece without a C translation.
        """
        pieces = [(self.materialize(self.value(e)), c) for e, c in expr.args]
        cplx = any(v.cplx for v, _ in pieces)
        chosen = ["NAN", "NAN"] if cplx else ["NAN"]  # where no condition holds
        for v, condition in reversed(pieces):
            parts = [p.code if p is not None else "0.0" for p in (v.re, v.im)]
            chosen = [
                self.temp(self._select(condition, part, other)).code
                for part, other in zip(parts, chosen, strict=False)
            ]
        re_, im = (None if c == "0.0" else _Real(c) for c in [*chosen, "0.0"][:2])
        return _Value(re_, im, cplx)

    _COMPARISONS: ClassVar[dict[str, str]] = {
        "StrictLessThan": "<", "LessThan": "<=", "StrictGreaterThan": ">", "GreaterThan": ">=",
        "Equality": "==", "Unequality": "!=",
    }  # fmt: skip

    def _select(self, condition: Any, a: str, b: str) -> str:
        """C for ``condition ? a : b``, with numpy's truth values (a comparison with NaN is
        false, ``Not`` of it true)."""
        sp = self.sp
        if condition == sp.true:
            return a
        if condition == sp.false:
            return b
        if isinstance(condition, sp.Not):
            return self._select(condition.args[0], b, a)
        if isinstance(condition, sp.And):  # c1 ? (c2 ? a : b) : b
            for c in reversed(condition.args):
                a = self.temp(self._select(c, a, b)).code
            return a
        if isinstance(condition, sp.Or):  # c1 ? a : (c2 ? a : b)
            for c in reversed(condition.args):
                b = self.temp(self._select(c, a, b)).code
            return b
        op = self._COMPARISONS.get(type(condition).__name__)
        if op is not None:
            sides = [self.value(side) for side in (condition.lhs, condition.rhs)]
            if not any(side.cplx for side in sides):
                lhs, rhs = (side.re.code if side.re is not None else "0.0" for side in sides)
                return f"(({lhs} {op} {rhs}) ? {a} : {b})"
        msg = (
            f"no C translation for the condition {str(condition)[:80]} (comparisons of real"
            " values, And, Or and Not of them)"
        )
        raise ModelstoreError(msg)

    def _complex_function(self, name: str, v: _Value) -> _Value:
        v = self.materialize(v)
        a = v.re or _Real("0.0")
        b = v.im or _Real("0.0")
        if name == "exp":
            magnitude = self.call("exp", a)
            return _Value(
                _Real(f"{magnitude.code} * {self.call('cos', b).code}"),
                _Real(f"{magnitude.code} * {self.call('sin', b).code}"),
                True,
            )
        if name == "log":
            modulus = self.temp(f"sqrt({a.code} * {a.code} + {b.code} * {b.code})")
            return _Value(self.call("log", modulus), self.call("atan2", b, a), True)
        if name in ("sin", "cos"):
            sa, ca = self.call("sin", a), self.call("cos", a)
            sb, cb = self.call("sinh", b), self.call("cosh", b)
            if name == "sin":
                return _Value(
                    _Real(f"{sa.code} * {cb.code}"), _Real(f"{ca.code} * {sb.code}"), True
                )
            return _Value(_Real(f"{ca.code} * {cb.code}"), _Real(f"-({sa.code} * {sb.code})"), True)
        msg = f"no C translation for {name} of a complex argument"
        raise ModelstoreError(msg)

    def _product(self, factors: Sequence[Any]) -> _Value:
        """Real factors first, complex ones last, one division for all negative powers."""
        numerator, denominator = [], []
        negative = [f for f in factors if f.is_Pow and f.exp.is_Number and f.exp.is_negative]
        single = self._reciprocal_power(negative[0]) if len(negative) == 1 else None
        for factor in factors:
            if single is not None and factor is negative[0]:
                numerator.append(single)
            elif factor.is_Pow and factor.exp.is_Number and factor.exp.is_negative:
                denominator.append(self._power(factor.base, -factor.exp))
            else:
                numerator.append(self.value(factor))
        if any(v.re is None and v.im is None for v in numerator):
            return _Value(None, None, any(v.cplx for v in numerator + denominator))

        top = self._multiply(numerator)
        if not denominator:
            return top
        return self.div(top, self._multiply(denominator))

    def bind(self, symbol: Any, expr: Any) -> None:
        """Give ``symbol`` (a common subexpression, a variable) the value of ``expr``.

        From lowering 3 on, a symbol bound to a power ``x**k`` (k a positive integer) is
        remembered, so that ``symbol**-n`` is written ``(1/x)**(k n)``: one division for ``x``
        and all its powers (:meth:`_reciprocal_power`).
        """
        self.symbols[symbol] = self.materialize(self.value(expr))
        if self.lowering >= 3 and expr.is_Pow and expr.exp.is_Integer and expr.exp > 0:
            self.powers[symbol] = (expr.base, int(expr.exp))

    def _reciprocal_power(self, factor: Any) -> _Value | None:
        """Lowering 2: ``x**-k`` (x real, the product's only divisor) as ``(1/x)**k``, so that
        ``1/x`` is shared by every ``x**-k`` of the model; lowering 3: also where ``x`` is a
        symbol bound to a power of another (:meth:`bind`). None where that does not apply."""
        exponent = -factor.exp
        if self.lowering < 2 or not exponent.is_Integer or exponent > 16:
            return None
        k, base = int(exponent), self.value(factor.base)
        root, power = factor.base, k
        while root in self.powers and power * self.powers[root][1] <= 16:
            root, times = self.powers[root]
            power *= times
        if root is not factor.base:
            inner = self.value(root)
            if inner.im is None and inner.re is not None:
                k, base = power, inner
        if base.im is not None or base.re is None:
            return None
        inverse = _Value(self.reciprocal(self.temp(base.re.code)), None, base.cplx)
        return self.integer_power(inverse, k)

    def _multiply(self, values: list[_Value]) -> _Value:
        """From lowering 2 on, the factors that depend on parameters alone are multiplied first,
        in one temporary computed once per call."""
        if self.lowering >= 2:
            fixed = [v for v in values if self._level(v) < 0]
            if len(fixed) >= 2:
                part = self.materialize(self._multiply_in_order(fixed))
                values = [part, *(v for v in values if self._level(v) >= 0)]
        return self._multiply_in_order(values)

    def _level(self, value: _Value) -> int:
        return max(self.level_of(p.code) for p in (value.re, value.im, _Real("1.0")) if p)

    def _multiply_in_order(self, values: list[_Value]) -> _Value:
        reals = [v for v in values if v.im is None]
        real_code = " * ".join(v.re.code for v in reals if v.re is not None)
        cplx = any(v.cplx for v in values)
        complexes = [v for v in values if v.im is not None]
        if not complexes:
            return _Value(_Real(f"({real_code or '1.0'})"), None, cplx)
        result = complexes[0]
        for v in complexes[1:]:
            result = self.mul(result, v)
        if real_code:
            result = self.scale(result, f"({real_code})")
        return _Value(result.re, result.im, cplx)

    def _power(self, base: Any, exponent: Any) -> _Value:
        sp = self.sp
        if isinstance(base, sp.Abs) and exponent == 2:
            v = self.value(base.args[0])
            v = self.materialize(v)
            parts = [f"{p.code} * {p.code}" for p in (v.re, v.im) if p is not None]
            return _Value(_Real("(" + " + ".join(parts) + ")") if parts else None, None, False)
        if exponent.is_Integer and exponent < 0:
            inverse = self._reciprocal_power(sp.Pow(base, exponent, evaluate=False))
            if inverse is not None:
                return inverse
        v = self.value(base)
        if exponent.is_Integer and abs(int(exponent)) <= 16:
            n = int(exponent)
            result = self.integer_power(v, abs(n))
            return result if n >= 0 else self.div(_Value(_Real("1.0"), None, False), result)
        if exponent.is_Rational and exponent.q == 2 and abs(exponent.p) <= 33:
            root = self.materialize(self.sqrt(v))
            k = abs(int(exponent.p)) // 2
            result = root if k == 0 else self.mul(self.integer_power(v, k), root)
            return result if exponent > 0 else self.div(_Value(_Real("1.0"), None, False), result)
        e = self.value(exponent)
        if v.cplx or e.cplx:
            msg = f"no C translation for a complex power {base}**{exponent}"
            raise ModelstoreError(msg)
        return _Value(self.call("pow", v.re or _Real("0.0"), e.re or _Real("0.0")), None, False)


def _is_number(code: str) -> bool:
    try:
        float(code)
    except ValueError:
        return False
    return True
