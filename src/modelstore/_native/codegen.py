"""Generate C99 source that evaluates a model's intensity, from its sympy expressions.

Semantics follow numpy, as upstream's lambdified functions do: every intermediate is typed
real or complex by following the expression (numpy's dtype promotion), so a real ``sqrt`` of a
negative number gives NaN and a complex one does not.

Speed comes from the math and from the layout, not from unsafe flags:

* the helicity angles enter only as ``cos``/``sin`` of half-integer multiples of
  ``θ = ±acos(z)``; these are rewritten exactly as polynomials in ``cos(θ/2) = sqrt((1+z)/2)``
  and ``sin(θ/2) = ±sqrt((1-z)/2)``, with ``z`` replaced by NaN where ``|z| > 1`` (where
  ``acos`` gives NaN), which removes all trigonometric calls;
* complex values are split into real and imaginary parts, so the generated code is plain
  real arithmetic that the compiler vectorises across events (``#pragma omp simd``) over
  blocks of events; the few remaining libm calls run in scalar loops between the vector loops;
* expressions that depend only on parameters are computed once per call.

Symbol names never become C identifiers by themselves: parameters are read from a packed
``par`` array into locals with mangled names (``p<k>_<letters and digits>``), which cannot
clash with C keywords, ``complex.h`` names or sympy's ``I``.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from modelstore.errors import ModelstoreError

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

__all__ = [
    "BLOCK",
    "NATIVE_ABI",
    "SUPPORTED_ABIS",
    "LoweredModel",
    "generate_c_source",
    "lower_model",
    "mangle",
    "parameter_signature",
]

NATIVE_ABI = 4
# 2: 1.1.0 sources (AVX2 dispatch); 3: AVX-512 too, ms_isa(); 4: ms_evaluate_polarimetry too
SUPPORTED_ABIS = (2, 3, 4)
INTENSITY_ABI = 3  # what an intensity-only source (no polarimetry forms) declares
BLOCK = 64
_IDENTIFIER_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_TEMP_RE = re.compile(r"\b(a[0-9]+)\b")


def mangle(index: int, name: str) -> str:
    """A safe, unique C identifier for parameter number ``index`` called ``name``."""
    if not name or any(ord(c) < 32 or ord(c) == 127 for c in name):
        msg = f"parameter name {name!r} contains control characters; refusing to generate C"
        raise ModelstoreError(msg)
    body = re.sub(r"[^A-Za-z0-9]+", "_", name).strip("_")[:40]
    identifier = f"p{index}_{body}" if body else f"p{index}"
    if not _IDENTIFIER_RE.match(identifier):  # cannot happen, but never emit an unchecked name
        msg = f"cannot mangle {name!r} into a C identifier"
        raise ModelstoreError(msg)
    return identifier


def parameter_signature(names: Sequence[str], is_complex: Sequence[bool]) -> str:
    """Digest of the ordered parameter list; the library and the manifest must agree on it."""
    text = "\n".join(f"{n}\t{'c' if c else 'r'}" for n, c in zip(names, is_complex, strict=True))
    return hashlib.sha256(text.encode()).hexdigest()


def _c_string(text: str) -> str:
    out = []
    for byte in text.encode("utf-8"):
        ch = chr(byte)
        out.append(ch if (ch.isalnum() or ch in " _-+.,:;()[]{}^/") else f"\\{byte:03o}")
    return '"' + "".join(out) + '"'


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


_ZERO = _Value(None, None, False)


@dataclass
class _Temp:
    name: str
    code: str
    level: int  # -1: parameters only; 0..: vector loop number
    call: bool  # a libm call, computed in a scalar loop before vector loop `level`


class _Emitter:
    """Turns sympy nodes into straight-line real C code in temporaries, tracking levels."""

    def __init__(self) -> None:
        import sympy as sp

        self.sp = sp
        self.temps: list[_Temp] = []
        self.by_name: dict[str, _Temp] = {}
        self.levels: dict[str, int] = {"sigma1": 0, "sigma2": 0}
        self.symbols: dict[Any, _Value] = {}
        self._memo: dict[tuple[str, bool], _Real] = {}

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
            return _Value(None if self._prod(a.re, b.re) is None else _Real(self._prod(a.re, b.re)), None, cplx)
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
            denominator = self.temp(b.re.code)
            re_ = None if a.re is None else _Real(f"({a.re.code} / {denominator.code})")
            im = None if a.im is None else _Real(f"({a.im.code} / {denominator.code})")
            return _Value(re_, im, cplx)
        a, b = self.materialize(a), self.materialize(b)
        br = b.re.code if b.re is not None else None
        bi = b.im.code
        norm = self.temp(f"{br} * {br} + {bi} * {bi}" if br else f"{bi} * {bi}")
        # (ar + i ai) / (br + i bi) = ((ar br + ai bi) + i (ai br - ar bi)) / (br² + bi²)
        re_terms = [self._prod(a.re, b.re), self._prod(a.im, b.im)]
        im_terms = [self._prod(a.im, b.re), None if a.re is None else f"-({a.re.code} * {bi})"]
        num_re, num_im = self._sum(re_terms), self._sum(im_terms)
        return _Value(
            None if num_re is None else _Real(f"({num_re.code} / {norm.code})"),
            None if num_im is None else _Real(f"({num_im.code} / {norm.code})"),
            cplx,
        )

    def sqrt(self, value: _Value) -> _Value:
        if not value.cplx:
            return _Value(None if value.re is None else _Real(f"sqrt({value.re.code})"), None, False)
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
        return result

    # sympy nodes

    def value(self, expr: Any) -> _Value:  # noqa: C901, PLR0911, PLR0912
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
                return _Value(_Real(f"{sa.code} * {cb.code}"), _Real(f"{ca.code} * {sb.code}"), True)
            return _Value(_Real(f"{ca.code} * {cb.code}"), _Real(f"-({sa.code} * {sb.code})"), True)
        msg = f"no C translation for {name} of a complex argument"
        raise ModelstoreError(msg)

    def _product(self, factors: Sequence[Any]) -> _Value:
        """Real factors first, complex ones last, one division for all negative powers."""
        numerator, denominator = [], []
        for factor in factors:
            if factor.is_Pow and factor.exp.is_Number and factor.exp.is_negative:
                denominator.append(self._power(factor.base, -factor.exp))
            else:
                numerator.append(self.value(factor))
        if any(v.re is None and v.im is None for v in numerator):
            return _Value(None, None, any(v.cplx for v in numerator + denominator))

        def multiply(values: list[_Value]) -> _Value:
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

        top = multiply(numerator)
        if not denominator:
            return top
        return self.div(top, multiply(denominator))

    def _power(self, base: Any, exponent: Any) -> _Value:
        sp = self.sp
        if isinstance(base, sp.Abs) and exponent == 2:
            v = self.value(base.args[0])
            v = self.materialize(v)
            parts = [f"{p.code} * {p.code}" for p in (v.re, v.im) if p is not None]
            return _Value(_Real("(" + " + ".join(parts) + ")") if parts else None, None, False)
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


# -- the half-angle rewrite --------------------------------------------------------------------


def _rewrite_angles(intensity: Any, variables: Mapping[Any, Any]) -> tuple[Any, list[tuple[Any, Any, Any]], dict[Any, Any]]:
    """Replace cos/sin of half-integer multiples of ``θ = ±acos(z)`` by half-angle polynomials.

    Returns the rewritten expression, ``(θ, sign, z)`` for each rewritten angle (whose
    half-angle symbols are ``c_θ``, ``s_θ``), and the variables that must still be computed.
    """
    import sympy as sp

    zeros = {symbol: 0 for symbol, expr in variables.items() if expr == 0}
    intensity = intensity.xreplace(zeros)
    halves: dict[Any, tuple[Any, Any]] = {}
    angles = []
    for symbol, expr in variables.items():
        if symbol in zeros:
            continue
        sign, core = (-1, -expr) if expr.could_extract_minus_sign() else (1, expr)
        if isinstance(core, sp.acos):
            c = sp.Dummy(f"c_{symbol}", real=True)
            s = sp.Dummy(f"s_{symbol}", real=True)
            halves[symbol] = (c, s)
            angles.append((symbol, sign, core.args[0]))

    def replace(node: Any) -> Any:
        coefficient, angle = node.args[0].as_coeff_Mul()
        if angle not in halves or not (2 * coefficient).is_Integer:
            return None
        n = int(2 * coefficient)
        c, s = halves[angle]
        re_, im = sp.expand((c + sp.I * s) ** abs(n)).as_real_imag()
        if isinstance(node, sp.cos):
            return re_
        return im if n >= 0 else -im

    def is_trig_of_angle(node: Any) -> bool:
        return isinstance(node, (sp.cos, sp.sin)) and replace(node) is not None

    intensity = intensity.replace(is_trig_of_angle, replace)
    remaining = {s: e for s, e in variables.items() if s in intensity.free_symbols}
    used = [(symbol, sign, z) for symbol, sign, z in angles if set(halves[symbol]) & intensity.free_symbols]
    return intensity, [(halves[s], sign, z) for s, sign, z in used], remaining


# -- the C file --------------------------------------------------------------------------------


def _loops(emitter: _Emitter, result: str, outputs: Sequence[tuple[str, str]] | None = None) -> str:
    """The body of the block function: vector loops and scalar call loops, level by level.

    ``outputs`` holds ``(array name, code)`` pairs, all written in the last vector loop; by
    default the one output ``out`` with code ``result``.
    """
    outputs = [("out", result)] if outputs is None else list(outputs)
    temps = [t for t in emitter.temps if t.level >= 0]
    loop_of = {}
    for t in temps:
        loop_of[t.name] = ("call" if t.call else "vec", t.level)
    result_loop = ("vec", max([emitter.level_of(code) for _, code in outputs] + [0]))
    uses: dict[str, set[tuple[str, int]]] = {t.name: set() for t in temps}
    for t in temps:
        for name in _TEMP_RE.findall(t.code):
            if name in uses:
                uses[name].add(loop_of[t.name])
    for _, code in outputs:
        for name in _TEMP_RE.findall(code):
            if name in uses:
                uses[name].add(result_loop)
    arrays = {t.name for t in temps if t.call or any(u != loop_of[t.name] for u in uses[t.name])}

    def ref(code: str) -> str:
        code = _TEMP_RE.sub(lambda m: f"{m.group(1)}[j]" if m.group(1) in arrays else m.group(1), code)
        return re.sub(r"\bsigma([12])\b", r"s\1[j]", code)

    lines = []
    if arrays:
        lines.append(f"double {', '.join(f'{n}[{BLOCK}]' for n in sorted(arrays, key=lambda n: int(n[1:])))};")
    max_level = max([t.level for t in temps] + [result_loop[1]])
    for level in range(max_level + 1):
        calls = [t for t in temps if t.call and t.level == level]
        if calls:
            lines.append("for (size_t j = 0; j < m; ++j) {")
            lines.extend(f"    {t.name}[j] = {ref(t.code)};" for t in calls)
            lines.append("}")
        vector = [t for t in temps if not t.call and t.level == level]
        is_last = level == result_loop[1]
        if vector or is_last:
            lines.append("#pragma omp simd")
            lines.append("for (size_t j = 0; j < m; ++j) {")
            for t in vector:
                if t.name in arrays:
                    lines.append(f"    {t.name}[j] = {ref(t.code)};")
                else:
                    lines.append(f"    const double {t.name} = {ref(t.code)};")
            if is_last:
                lines.extend(f"    {name}[j] = {ref(code)};" for name, code in outputs)
            lines.append("}")
    return "\n".join("    " + line for line in lines)


@dataclass
class LoweredModel:
    """A model as straight-line real code: what the C file and the array program are printed from.

    ``parameters`` holds ``(local name, first slot, is complex)`` in the packed order; complex
    parameters are read as ``<local>_re``/``<local>_im``. ``temps`` are in evaluation order
    (level -1: parameters only); ``result`` is the code of the intensity.
    """

    parameter_names: list[str]
    parameters: list[tuple[str, int, bool]]
    n_slots: int
    temps: list[_Temp]
    result: str
    emitter: _Emitter


def lower_model(forms: Mapping[str, Any], parameter_names: Sequence[str]) -> LoweredModel:
    """Lower the model in ``forms`` to straight-line real code (typed as numpy would).

    ``parameter_names`` fixes the order of the packed parameter array (the manifest's order).
    Complex parameters take two slots (real, imaginary), real ones one.

    Raises:
        ModelstoreError: the names do not match the model, or the expression has a node
            without a translation.
    """
    import sympy as sp

    defaults = forms["parameter_defaults"]
    by_name = {str(symbol): symbol for symbol in defaults}
    if sorted(by_name) != sorted(parameter_names):
        msg = "the parameter names given do not match the model's parameters"
        raise ModelstoreError(msg)
    emitter = _Emitter()
    parameters = []
    slot = 0
    for k, name in enumerate(parameter_names):
        symbol = by_name[name]
        local = mangle(k, name)
        cplx = isinstance(defaults[symbol], complex)
        parameters.append((local, slot, cplx))
        if cplx:
            emitter.symbols[symbol] = _Value(emitter.temp(f"{local}_re + 0.0"), emitter.temp(f"{local}_im + 0.0"), True)
            slot += 2
        else:
            emitter.symbols[symbol] = _Value(emitter.temp(f"{local} + 0.0"), None, False)
            slot += 1

    s1, s2 = sp.symbols("sigma1 sigma2", nonnegative=True)
    emitter.symbols[s1] = _Value(_Real("sigma1"), None, False)
    emitter.symbols[s2] = _Value(_Real("sigma2"), None, False)
    ((s3, s3_expr),) = forms["sigma3"].items()
    emitter.symbols[s3] = emitter.materialize(emitter.value(s3_expr))

    intensity, angles, remaining = _rewrite_angles(forms["intensity_expr"], forms["variables"])
    for (c, s), sign, z in angles:
        z_value = emitter.value(z)
        if z_value.cplx:
            msg = "a helicity angle's cosine is complex; cannot rewrite it"
            raise ModelstoreError(msg)
        zc = emitter.temp(z_value.re.code)
        # acos(z) is NaN for |z| > 1 (and for NaN z): keep that, as upstream does.
        guarded = emitter.temp(f"((fabs({zc.code}) <= 1.0) ? {zc.code} : NAN)")
        emitter.symbols[c] = _Value(emitter.temp(f"sqrt((1.0 + {guarded.code}) * 0.5)"), None, False)
        half_sin = emitter.temp(f"sqrt((1.0 - {guarded.code}) * 0.5)")
        emitter.symbols[s] = _Value(half_sin if sign > 0 else emitter.temp(f"(-{half_sin.code})"), None, False)
    for symbol, expr in remaining.items():
        emitter.symbols[symbol] = emitter.materialize(emitter.value(expr))

    replacements, (reduced,) = sp.cse([intensity], order="none", list=True)
    for symbol, expr in replacements:
        emitter.symbols[symbol] = emitter.materialize(emitter.value(expr))
    result = emitter.value(reduced)
    if result.re is None:
        msg = "the intensity is identically zero"
        raise ModelstoreError(msg)
    result_code = emitter.temp(result.re.code).code
    return LoweredModel(list(parameter_names), parameters, slot, emitter.temps, result_code, emitter)


def generate_c_source(forms: Mapping[str, Any], parameter_names: Sequence[str]) -> str:
    """C source of ``ms_evaluate`` for the model in ``forms`` (the pickled dict of a version).

    ``parameter_names`` fixes the order of the packed parameter array (the manifest's order).
    Complex parameters take two slots (real, imaginary), real ones one. Forms with polarimetry
    (1.4.0 on) give ABI 4: ``ms_evaluate_polarimetry`` too (:mod:`modelstore._native.multi`).
    """
    if "polarimetry" in forms:
        from modelstore._native.multi import generate_polarimetry_c_source

        return generate_polarimetry_c_source(forms, parameter_names)
    return intensity_c_source(forms, parameter_names, INTENSITY_ABI)


def intensity_c_source(forms: Mapping[str, Any], parameter_names: Sequence[str], abi: int) -> str:
    """The intensity-only C file (``ms_evaluate``) declaring native ABI ``abi``."""
    lowered = lower_model(forms, parameter_names)
    emitter, result_code, slot = lowered.emitter, lowered.result, lowered.n_slots
    kinds = [cplx for _, _, cplx in lowered.parameters]
    param_lines = [
        f"const double {local}_re = par[{first}], {local}_im = par[{first + 1}];"
        if cplx
        else f"const double {local} = par[{first}];"
        for local, first, cplx in lowered.parameters
    ]

    setup = [t for t in emitter.temps if t.level < 0]
    signature = parameter_signature(parameter_names, kinds)
    names_table = ",\n    ".join(_c_string(n) for n in parameter_names)
    n_params = len(parameter_names)
    nl = "\n    "
    unpack = nl.join(f"const double {t.name} = st->v[{k}]; (void){t.name};" for k, t in enumerate(setup))
    body = unpack + "\n" + _loops(emitter, result_code)
    return f"""\
/* Generated by modelstore (native ABI {abi}); do not edit.
 * Intensity of one published model at arrays of sigma1 = m^2(K pi), sigma2 = m^2(p K).
 * {n_params} parameters in {slot} double slots; complex ones take (re, im).
 * {len(emitter.temps)} temporaries, {len(setup)} of them computed once per call; events are
 * processed in blocks of {BLOCK}, in vector loops (omp simd) and scalar loops for libm calls,
 * compiled for AVX-512, AVX2 and portable code and chosen at run time (ms_isa).
 */
#include <math.h>
#include <stddef.h>

static const char *const ms_parameter_names[] = {{
    {names_table}
}};

int ms_abi(void) {{ return {abi}; }}
int ms_n_parameters(void) {{ return {n_params}; }}
int ms_n_slots(void) {{ return {slot}; }}
const char *ms_parameter_name(int k) {{
    return (k >= 0 && k < {n_params}) ? ms_parameter_names[k] : 0;
}}
const char *ms_signature(void) {{ return "{signature}"; }}

typedef struct {{ double v[{max(len(setup), 1)}]; }} ms_setup_t;

/* Everything that depends on the parameters alone, once per call. */
static void ms_prepare(const double *par, ms_setup_t *st)
{{
    {nl.join(param_lines)}
    {nl.join(f"const double {t.name} = {t.code};" for t in setup)}
    {nl.join(f"st->v[{k}] = {t.name};" for k, t in enumerate(setup))}
}}

#if defined(__GNUC__) && defined(__x86_64__)
#define MS_X86_DISPATCH 1
/* The same code compiled for AVX-512 and AVX2, chosen at run time. Vectorising across events
 * does not change the order of operations within an event (no FMA contraction, no
 * reassociation), so every variant gives bit-identical results. */
__attribute__((target("avx512f")))
static void ms_block_avx512(const double *restrict s1, const double *restrict s2,
                            double *restrict out, size_t m, const ms_setup_t *st)
{{
    {body}
}}

__attribute__((target("avx2")))
static void ms_block_avx2(const double *restrict s1, const double *restrict s2,
                          double *restrict out, size_t m, const ms_setup_t *st)
{{
    {body}
}}
#endif

static void ms_block(const double *restrict s1, const double *restrict s2,
                     double *restrict out, size_t m, const ms_setup_t *st)
{{
    {body}
}}

/* 0: portable code, 1: AVX2, 2: AVX-512; the best the processor has, at most the limit. */
static int ms_isa_limit = 2;

void ms_set_isa_limit(int level) {{ ms_isa_limit = level; }}

int ms_isa(void)
{{
    int level = 0;
#ifdef MS_X86_DISPATCH
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2")) level = 1;
    if (__builtin_cpu_supports("avx512f")) level = 2;
#endif
    return level < ms_isa_limit ? level : (ms_isa_limit < 0 ? 0 : ms_isa_limit);
}}

void ms_evaluate(const double *s1, const double *s2, double *out, size_t n,
                 const double *par, int n_threads)
{{
    ms_setup_t st;
    ms_prepare(par, &st);
    const int isa = ms_isa();
    if (n_threads < 1) n_threads = 1;
    const size_t n_blocks = (n + {BLOCK} - 1) / {BLOCK};
#pragma omp parallel for num_threads(n_threads) schedule(static) if(n > 4096)
    for (size_t b = 0; b < n_blocks; ++b) {{
        const size_t start = b * {BLOCK};
        const size_t m = (n - start < {BLOCK}) ? n - start : {BLOCK};
#ifdef MS_X86_DISPATCH
        if (isa == 2) {{
            ms_block_avx512(s1 + start, s2 + start, out + start, m, &st);
            continue;
        }}
        if (isa == 1) {{
            ms_block_avx2(s1 + start, s2 + start, out + start, m, &st);
            continue;
        }}
#endif
        ms_block(s1 + start, s2 + start, out + start, m, &st);
    }}
}}
"""
