"""Generate C99 source that evaluates a model's intensity, from its sympy expressions.

The generated code follows numpy's semantics as upstream's lambdified functions do:
every intermediate is typed real or complex by following the expression (as numpy's dtype
promotion does), so a real ``sqrt`` of a negative number gives NaN and a complex one does not.

Symbol names never become C identifiers by themselves: parameters are read from a packed
``par`` array, and the locals holding them get mangled names (``p<k>_<letters and digits>``),
which cannot clash with C keywords, ``complex.h`` names or sympy's ``I``.
"""

from __future__ import annotations

import hashlib
import re
from typing import TYPE_CHECKING, Any

from modelstore.errors import ModelstoreError

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

__all__ = ["NATIVE_ABI", "generate_c_source", "mangle", "parameter_signature"]

NATIVE_ABI = 1
_IDENTIFIER_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_EVENT_INPUTS = ("sigma1", "sigma2")


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


class _Printer:
    """Prints sympy nodes as C, tracking whether each value is real or complex."""

    def __init__(self, symbol_c: Mapping[Any, tuple[str, bool]]) -> None:
        import sympy as sp

        self.sp = sp
        self.symbol_c = dict(symbol_c)  # symbol -> (C expression, is_complex)

    def is_complex(self, expr: Any) -> bool:
        return self.print(expr)[1]

    def print(self, expr: Any) -> tuple[str, bool]:  # noqa: C901, PLR0911, PLR0912
        sp = self.sp
        if expr in self.symbol_c:
            return self.symbol_c[expr]
        if expr is sp.I:
            return "I_", True
        if expr.is_Integer or expr.is_Rational or expr.is_Float:
            return _float(float(expr)), False
        if isinstance(expr, (sp.Symbol, sp.Indexed)):
            msg = f"symbol {expr} has no value in the generated C code"
            raise ModelstoreError(msg)
        if expr.is_Add or expr.is_Mul:
            parts = [self.print(a) for a in expr.args]
            op = " + " if expr.is_Add else " * "
            return "(" + op.join(p[0] for p in parts) + ")", any(p[1] for p in parts)
        if expr.is_Pow:
            return self._pow(*expr.args)
        if isinstance(expr, sp.Abs):
            arg, cplx = self.print(expr.args[0])
            return (f"cabs({arg})" if cplx else f"fabs({arg})"), False
        if isinstance(expr, (sp.re, sp.im)):
            arg, cplx = self.print(expr.args[0])
            if not cplx:
                return (arg if isinstance(expr, sp.re) else "0.0"), False
            return (f"creal({arg})" if isinstance(expr, sp.re) else f"cimag({arg})"), False
        if isinstance(expr, sp.conjugate):
            arg, cplx = self.print(expr.args[0])
            return (f"conj({arg})" if cplx else arg), cplx
        functions = {
            sp.exp: "exp", sp.log: "log", sp.sin: "sin", sp.cos: "cos", sp.tan: "tan",
            sp.asin: "asin", sp.acos: "acos", sp.atan: "atan", sp.sinh: "sinh",
            sp.cosh: "cosh", sp.tanh: "tanh",
        }  # fmt: skip
        if type(expr) in functions:
            arg, cplx = self.print(expr.args[0])
            name = functions[type(expr)]
            return (f"c{name}({arg})" if cplx else f"{name}({arg})"), cplx
        msg = f"no C translation for {type(expr).__name__} in {str(expr)[:80]}"
        raise ModelstoreError(msg)

    def _pow(self, base: Any, exponent: Any) -> tuple[str, bool]:
        sp = self.sp
        b, bc = self.print(base)
        if exponent.is_Integer and abs(int(exponent)) <= 4:
            n = int(exponent)
            if n == 0:
                return "1.0", False
            product = "(" + " * ".join([b] * abs(n)) + ")"
            return (product if n > 0 else f"(1.0 / {product})"), bc
        if exponent == sp.Rational(1, 2):
            return (f"csqrt({b})" if bc else f"sqrt({b})"), bc
        if exponent == sp.Rational(-1, 2):
            return (f"(1.0 / csqrt({b}))" if bc else f"(1.0 / sqrt({b}))"), bc
        e, ec = self.print(exponent)
        if bc or ec:
            return f"cpow({b}, {e})", True
        return f"pow({b}, {e})", False


def generate_c_source(forms: Mapping[str, Any], parameter_names: Sequence[str]) -> str:
    """C source of ``ms_evaluate`` for the model in ``forms`` (the pickled dict of a version).

    ``parameter_names`` fixes the order of the packed parameter array (the manifest's order).
    Complex parameters take two slots (real, imaginary), real ones one.
    """
    import sympy as sp

    defaults = forms["parameter_defaults"]
    by_name = {str(symbol): symbol for symbol in defaults}
    if sorted(by_name) != sorted(parameter_names):
        msg = "the parameter names given do not match the model's parameters"
        raise ModelstoreError(msg)
    symbol_c: dict[Any, tuple[str, bool]] = {}
    param_lines, kinds = [], []
    slot = 0
    for k, name in enumerate(parameter_names):
        symbol = by_name[name]
        local = mangle(k, name)
        cplx = isinstance(defaults[symbol], complex)
        kinds.append(cplx)
        if cplx:
            param_lines.append(f"    const double complex {local} = par[{slot}] + par[{slot + 1}] * I_;")
            slot += 2
        else:
            param_lines.append(f"    const double {local} = par[{slot}];")
            slot += 1
        symbol_c[symbol] = (local, cplx)

    s1, s2 = sp.symbols("sigma1 sigma2", nonnegative=True)
    symbol_c[s1] = ("sigma1", False)
    symbol_c[s2] = ("sigma2", False)
    ((s3, s3_expr),) = forms["sigma3"].items()
    kinematics = [(s3, s3_expr), *forms["variables"].items()]
    event_symbols = {s1, s2}
    assignments = []
    for k, (symbol, expr) in enumerate(kinematics):
        assignments.append((symbol, expr, f"v{k}"))
        event_symbols.add(symbol)

    replacements, (reduced,) = sp.cse([forms["intensity_expr"]], order="none", list=True)
    for k, (symbol, expr) in enumerate(replacements):
        assignments.append((symbol, expr, f"t{k}"))

    printer = _Printer(symbol_c)
    setup_lines, event_lines = [], []
    for symbol, expr, local in assignments:
        depends = bool(expr.free_symbols & event_symbols)
        code, cplx = printer.print(expr)
        ctype = "double complex" if cplx else "double"
        (event_lines if depends else setup_lines).append(f"const {ctype} {local} = {code};")
        printer.symbol_c[symbol] = (local, cplx)
        if depends:
            event_symbols.add(symbol)
    result, cplx = printer.print(reduced)
    result_line = f"out[i] = creal({result});" if cplx else f"out[i] = {result};"
    signature = parameter_signature(parameter_names, kinds)
    names_table = ",\n    ".join(_c_string(n) for n in parameter_names)
    indent = "\n" + " " * 8
    return f"""\
/* Generated by modelstore (native ABI {NATIVE_ABI}); do not edit.
 * Intensity of one published model at arrays of sigma1 = m^2(K pi), sigma2 = m^2(p K).
 * {len(parameter_names)} parameters in {slot} double slots; complex ones take (re, im).
 */
#include <complex.h>
#include <math.h>
#include <stddef.h>

static const double complex I_ = _Complex_I;
static const char *const ms_parameter_names[] = {{
    {names_table}
}};

int ms_abi(void) {{ return {NATIVE_ABI}; }}
int ms_n_parameters(void) {{ return {len(parameter_names)}; }}
int ms_n_slots(void) {{ return {slot}; }}
const char *ms_parameter_name(int k) {{
    return (k >= 0 && k < {len(parameter_names)}) ? ms_parameter_names[k] : 0;
}}
const char *ms_signature(void) {{ return "{signature}"; }}

void ms_evaluate(const double *s1, const double *s2, double *out, size_t n,
                 const double *par, int n_threads)
{{
{chr(10).join(param_lines)}
    {(chr(10) + "    ").join(setup_lines)}
    if (n_threads < 1) n_threads = 1;
#pragma omp parallel for num_threads(n_threads) schedule(static) if(n > 4096)
    for (size_t i = 0; i < n; ++i) {{
        const double sigma1 = s1[i];
        const double sigma2 = s2[i];
        {indent.join(event_lines)}
        {result_line}
    }}
}}
"""
