"""Checks of a model's forms before anything is published: each problem is one line.

The forms are the seed's dict (``intensity_expr``, ``variables``, ``parameter_defaults``,
``sigma3``; optionally ``amplitudes`` and ``polarimetry``). Before a publish they must be sympy
objects, hold no free symbol other than σ1, σ2, σ3, the kinematic variables and the declared
parameters, and their masses ``m0``..``m3`` must leave a Dalitz region (``m0 > m1 + m2 + m3``).
σ1, σ2 and σ3 are matched by name: symbols of those names with other assumptions are replaced by
the canonical ``Symbol("sigmaK", nonnegative=True)`` that every evaluator binds.
"""

from __future__ import annotations

import math
import pickletools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from modelstore.errors import InvalidInputError, UnsafePickleError
from modelstore.format.forms_shape import REQUIRED_KEYS, plain_number

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

__all__ = [
    "MASS_NAMES",
    "REQUIRED_KEYS",
    "CheckedForms",
    "check_forms",
    "load_forms_pickle",
    "pickle_globals",
]

POLARIMETRY_KEYS = ("amplitudes", "polarimetry")
MASS_NAMES = ("m0", "m1", "m2", "m3")
_MAX_LISTED = 12


@dataclass(frozen=True)
class CheckedForms:
    """Forms that passed :func:`check_forms`: canonical σ symbols, plain-number parameters."""

    forms: dict[str, Any]
    masses: tuple[float, float, float, float]

    @property
    def has_polarimetry(self) -> bool:
        return "polarimetry" in self.forms


def _sigmas() -> tuple[Any, Any, Any]:
    import sympy as sp

    return sp.symbols("sigma1:4", nonnegative=True)


def _finite_number(value: Any, where: str) -> int | float | complex:
    """A parameter value as a Python int, float or complex (finite), whatever type it came as.

    A sympy number expression (``3 - I/2``, ``sqrt(2)``) is evaluated first: these are the
    publisher's own objects.
    """
    import sympy as sp

    number = None
    if isinstance(value, sp.Basic) and value.is_number and not isinstance(value, sp.Number):
        try:
            evaluated = complex(value)
        except (TypeError, ValueError):
            evaluated = complex(math.nan)
        number = evaluated.real if value.is_extended_real else evaluated
    elif value is not None:
        number = plain_number(value)
    if number is not None and math.isfinite(abs(number)):
        return number
    msg = f"{where} is {type(value).__name__} {str(value)[:40]!r}: expected a finite number"
    raise InvalidInputError(msg)


def _require_expr(value: Any, where: str) -> None:
    import sympy as sp

    if not isinstance(value, sp.Basic):
        msg = (
            f"{where} is a {type(value).__module__}.{type(value).__name__}, not a sympy expression"
        )
        raise InvalidInputError(msg)


def _require_dict(forms: Mapping[str, Any], key: str, where: str) -> dict[Any, Any]:
    value = forms[key]
    if not isinstance(value, dict):
        msg = f"{where}: {key} must be a dict, got {type(value).__name__}"
        raise InvalidInputError(msg)
    return value


def _symbol_list(symbols: Iterable[Any]) -> str:
    names = sorted(str(s) for s in symbols)
    more = f", ... ({len(names)} in all)" if len(names) > _MAX_LISTED else ""
    return ", ".join(names[:_MAX_LISTED]) + more


def _stray(expr: Any, allowed: set[Any]) -> set[Any]:
    """Free symbols of ``expr`` outside ``allowed`` (labels and indices of allowed Indexed too)."""
    return {s for s in expr.free_symbols if s not in allowed}


def _allowed_with_parts(symbols: Iterable[Any]) -> set[Any]:
    import sympy as sp

    allowed = set(symbols)
    for symbol in list(allowed):
        if isinstance(symbol, sp.Indexed):
            allowed |= symbol.base.free_symbols
            for index in symbol.indices:
                allowed |= getattr(index, "free_symbols", set())
    return allowed


def _canonical_sigmas(forms: dict[str, Any]) -> dict[str, Any]:
    """Replace symbols named sigma1..3 that are not the canonical ones (other assumptions)."""
    import sympy as sp

    canonical = {str(s): s for s in _sigmas()}
    found: set[Any] = set()

    def collect(value: Any) -> None:
        if isinstance(value, sp.Basic):
            found.update(s for s in value.free_symbols if isinstance(s, sp.Symbol))
        elif isinstance(value, dict):
            for k, v in value.items():
                collect(k)
                collect(v)
        elif isinstance(value, tuple | list):
            for v in value:
                collect(v)

    collect(forms)
    swap = {s: canonical[s.name] for s in found if s.name in canonical and s != canonical[s.name]}
    if not swap:
        return forms

    def replace(value: Any) -> Any:
        if isinstance(value, sp.Basic):
            return value.xreplace(swap)
        if isinstance(value, dict):
            return {replace(k): replace(v) for k, v in value.items()}
        if isinstance(value, tuple | list):
            return type(value)(replace(v) for v in value)
        return value

    return {key: replace(value) for key, value in forms.items()}


def _check_masses(defaults: Mapping[Any, Any], where: str) -> tuple[float, float, float, float]:
    by_name = {str(symbol): value for symbol, value in defaults.items()}
    missing = [name for name in MASS_NAMES if name not in by_name]
    if missing:
        msg = (
            f"{where}: parameter_defaults lacks {', '.join(missing)}: the masses m0 (decaying"
            " particle) and m1, m2, m3 (final state) define the Dalitz region"
        )
        raise InvalidInputError(msg)
    masses = []
    for name in MASS_NAMES:
        value = by_name[name]
        if isinstance(value, complex) or not value >= 0:
            msg = f"{where}: mass {name} = {value} is not a non-negative real number"
            raise InvalidInputError(msg)
        masses.append(float(value))
    m0, m1, m2, m3 = masses
    if not m0 > m1 + m2 + m3:
        msg = (
            f"{where}: the masses leave no Dalitz region: m0 = {m0:g} is not above"
            f" m1 + m2 + m3 = {m1 + m2 + m3:g}"
        )
        raise InvalidInputError(msg)
    return m0, m1, m2, m3


def _check_polarimetry(forms: dict[str, Any], allowed: set[Any], where: str) -> None:
    import sympy as sp

    present = [k for k in POLARIMETRY_KEYS if k in forms]
    if not present:
        return
    if len(present) == 1:
        msg = f"{where}: polarimetry forms need both 'amplitudes' and 'polarimetry', got {present}"
        raise InvalidInputError(msg)
    amplitudes = _require_dict(forms, "amplitudes", where)
    polarimetry = _require_dict(forms, "polarimetry", where)
    numerators = polarimetry.get("alpha_numerators")
    if set(polarimetry) != {"intensity", "alpha_numerators"} or not (
        isinstance(numerators, tuple | list) and len(numerators) == 3
    ):
        msg = f"{where}: polarimetry must be {{'intensity': I, 'alpha_numerators': (Nx, Ny, Nz)}}"
        raise InvalidInputError(msg)
    for symbol, expr in amplitudes.items():
        if not isinstance(symbol, sp.Indexed):
            msg = f"{where}: amplitude key {str(symbol)[:60]!r} is not an Indexed symbol"
            raise InvalidInputError(msg)
        _require_expr(expr, f"{where}: amplitudes[{symbol}]")
        stray = _stray(expr, allowed)
        if stray:
            msg = f"{where}: amplitudes[{symbol}] has undeclared symbols: {_symbol_list(stray)}"
            raise InvalidInputError(msg)
    structured = _allowed_with_parts(set(allowed) | set(amplitudes))
    for name, expr in [("intensity", polarimetry["intensity"])] + [
        (f"alpha_numerators[{i}]", n) for i, n in enumerate(numerators)
    ]:
        _require_expr(expr, f"{where}: polarimetry {name}")
        stray = _stray(expr, structured)
        if stray:
            msg = f"{where}: polarimetry {name} has undeclared symbols: {_symbol_list(stray)}"
            raise InvalidInputError(msg)


def check_forms(forms: Any, where: str = "forms") -> CheckedForms:
    """Check a model's forms for publishing; return them with canonical σ symbols.

    Raises:
        InvalidInputError: not a dict, a missing key, a non-sympy object, a parameter value
            that is not a finite number, free symbols other than σ1, σ2, σ3, the variables and
            the declared parameters (listed), masses m0..m3 that leave no Dalitz region, or a
            floating-point constant (sympy Float) in an expression that is not a double.
    """
    import sympy as sp

    if not isinstance(forms, dict):
        msg = f"{where}: expected the dict of forms, got {type(forms).__name__}"
        raise InvalidInputError(msg)
    missing = [key for key in REQUIRED_KEYS if key not in forms]
    if missing:
        msg = f"{where}: missing keys {missing} (the forms are {list(REQUIRED_KEYS)})"
        raise InvalidInputError(msg)
    extra = sorted(str(k) for k in forms if k not in REQUIRED_KEYS + POLARIMETRY_KEYS)
    if extra:
        msg = f"{where}: unexpected keys {extra}"
        raise InvalidInputError(msg)
    _require_expr(forms["intensity_expr"], f"{where}: intensity_expr")
    for key in ("variables", "parameter_defaults", "sigma3"):
        for symbol, value in _require_dict(forms, key, where).items():
            _require_expr(symbol, f"{where}: a key of {key}")
            if key != "parameter_defaults":
                _require_expr(value, f"{where}: {key}[{symbol}]")
    forms = _canonical_sigmas(dict(forms))
    defaults = {
        symbol: _finite_number(value, f"{where}: parameter {symbol}")
        for symbol, value in forms["parameter_defaults"].items()
    }
    names = [str(symbol) for symbol in defaults]
    if len(set(names)) != len(names):
        msg = f"{where}: two parameters print to the same name"
        raise InvalidInputError(msg)
    forms["parameter_defaults"] = defaults
    masses = _check_masses(defaults, where)

    s1, s2, s3 = _sigmas()
    sigma3 = forms["sigma3"]
    if list(sigma3) != [s3]:
        msg = f"{where}: sigma3 must be {{sigma3: its expression in sigma1, sigma2}}"
        raise InvalidInputError(msg)
    parameters = _allowed_with_parts(defaults)
    stray = _stray(sigma3[s3], parameters | {s1, s2})
    if stray:
        msg = f"{where}: sigma3 has undeclared symbols: {_symbol_list(stray)}"
        raise InvalidInputError(msg)
    kinematic = parameters | {s1, s2, s3}
    for symbol, expr in forms["variables"].items():
        if not isinstance(symbol, sp.Symbol) or symbol in kinematic:
            msg = f"{where}: variable {str(symbol)[:60]!r} is not a new symbol"
            raise InvalidInputError(msg)
        stray = _stray(expr, kinematic)
        if stray:
            msg = f"{where}: variable {symbol} has undeclared symbols: {_symbol_list(stray)}"
            raise InvalidInputError(msg)
    allowed = kinematic | set(forms["variables"])
    stray = _stray(forms["intensity_expr"], allowed)
    if stray:
        msg = (
            f"{where}: the intensity has free symbols that are neither sigma1, sigma2, a"
            f" variable nor a declared parameter: {_symbol_list(stray)}"
        )
        raise InvalidInputError(msg)
    _check_polarimetry(forms, allowed, where)
    _check_floats(forms, where)
    return CheckedForms(forms, masses)


def _check_floats(forms: Mapping[str, Any], where: str) -> None:
    """Floating-point constants (sympy ``Float``) must be doubles, as the pickle stores them."""
    import sympy as sp

    expressions = [forms["intensity_expr"], *forms["variables"].values(), *forms["sigma3"].values()]
    expressions += list(forms.get("amplitudes", {}).values())
    floats = set().union(*(e.atoms(sp.Float) for e in expressions))
    wide = sorted({str(f) for f in floats if not _is_double(f)})
    if wide:
        msg = (
            f"{where}: the expressions hold floating-point constants that are not doubles"
            f" ({', '.join(wide[:5])}): the published pickle holds 53-bit floats; write each as"
            " sympy.Float(float(x)), exactly (sympy.Rational('0.3')), or make it a parameter"
        )
        raise InvalidInputError(msg)


def _is_double(number: Any) -> bool:
    """Whether a sympy ``Float`` is exactly a finite double (53 bits, a double's range)."""
    import sympy as sp

    value = float(number)
    return (
        number._prec == 53  # sympy keeps the precision there
        and math.isfinite(value)
        and sp.Float(value, precision=53) == number
    )


def pickle_globals(data: bytes) -> list[tuple[str, str]]:
    """The ``(module, name)`` globals a pickle names, read from its opcodes (nothing executed).

    Never raises (an unreadable stream gives the globals found before the damage).
    """
    found: list[tuple[str, str]] = []
    strings: list[Any] = []  # recent pushes: text, or None for anything else
    memo: dict[int, Any] = {}
    try:
        for opcode, arg, _ in pickletools.genops(data):
            name = opcode.name
            if name in ("SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE"):
                strings.append(arg)
            elif name == "MEMOIZE":
                memo[len(memo)] = strings[-1] if strings else None
            elif name in ("BINPUT", "LONG_BINPUT", "PUT"):
                memo[int(str(arg))] = strings[-1] if strings else None
            elif name in ("BINGET", "LONG_BINGET", "GET"):
                strings.append(memo.get(int(str(arg))))
            elif name == "GLOBAL":
                module, _, attr = str(arg).partition(" ")
                found.append((module, attr))
            elif name == "STACK_GLOBAL":
                if (
                    len(strings) >= 2
                    and isinstance(strings[-2], str)
                    and isinstance(strings[-1], str)
                ):
                    found.append((strings[-2], strings[-1]))
            else:
                strings.append(None)
            del strings[:-4]
    except Exception:
        return found
    return found


def load_forms_pickle(data: bytes, where: str = "forms pickle") -> dict[str, Any]:
    """Unpickle forms with the allow-listed unpickler; explain refused ampform classes.

    Raises:
        UnsafePickleError: the pickle names a global outside the allow-list (for an ampform or
            ampform-dpd class, the message says that ``doit()`` unfolds it), or is no forms dict.
    """
    from modelstore.format.unpickle import ALLOWED_GLOBALS, load_model_pickle

    try:
        return load_model_pickle(data, where)
    except UnsafePickleError:
        foreign = [g for g in pickle_globals(data) if g not in ALLOWED_GLOBALS]
        unfolded = [g for g in foreign if g[0].split(".")[0] in ("ampform", "ampform_dpd")]
        if not unfolded:
            raise
        module, name = unfolded[0]
        how = (
            f"replace {name} by its definition before pickling (doit() keeps it;"
            " modelstore.publish.ampform_adapter.unfold_definitions(expr) gives its Piecewise)"
            if name == "ComplexSqrt"
            else f"call doit() on the expressions before pickling (doit() unfolds {name} into"
            " plain sympy)"
        )
        msg = (
            f"{where}: refused: it references {module}.{name}, an ampform/ampform-dpd class that"
            f" is not unfolded; {how}"
        )
        raise UnsafePickleError(msg) from None
