"""The shape of a model's forms as a pickle holds them, checked before anyone uses them.

An allow-listed pickle can still hold the wrong things in the right classes (``variables``
mapping a symbol to ``1``, ``intensity_expr`` a list, a default that is text); without a check
they surface later as tracebacks deep in an evaluator, or as text that a sympy call would
``sympify`` (``eval``). Each refusal is one line naming the key and the type found.
"""

from __future__ import annotations

import numbers
from typing import Any

from modelstore.errors import UnsafePickleError

__all__ = ["REQUIRED_KEYS", "check_forms_shape", "plain_number"]

REQUIRED_KEYS = ("intensity_expr", "variables", "parameter_defaults", "sigma3")
"""The keys every model's forms hold (1.4.0 adds ``amplitudes`` and ``polarimetry``)."""


def _type(value: Any) -> str:
    return type(value).__name__


def _mapping(forms: dict[str, Any], key: str, keys: Any, values: Any, expected: str) -> None:
    """Refuse ``forms[key]`` unless it is a dict of ``keys`` instances to ``values`` instances."""
    mapping = forms[key]
    if not isinstance(mapping, dict):
        msg = f"{key} is a {_type(mapping)}, expected a dict of {expected}"
        raise UnsafePickleError(msg)
    for k, v in mapping.items():
        if not isinstance(k, keys):
            msg = f"{key} has a key of type {_type(k)}, expected a dict of {expected}"
            raise UnsafePickleError(msg)
        if not isinstance(v, values):
            msg = f"{key} has a value of type {_type(v)}, expected a dict of {expected}"
            raise UnsafePickleError(msg)


def plain_number(value: Any) -> int | float | complex | None:
    """``value`` as a Python int, float or complex if it is a number, else None.

    Python and numpy numbers and sympy's ``Integer``, ``Rational`` and ``Float`` (numbers in
    the sense of the ``numbers`` module) qualify; ``bool`` and sympy expressions do not (nothing
    is evaluated). Finiteness is the caller's to check.

    Never raises.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    if isinstance(value, numbers.Complex):
        return complex(value)
    return None


def _polarimetry(forms: dict[str, Any], expr: type) -> None:
    polarimetry = forms["polarimetry"]
    if not isinstance(polarimetry, dict):
        msg = f"polarimetry is a {_type(polarimetry)}, expected a dict"
        raise UnsafePickleError(msg)
    intensity = polarimetry.get("intensity")
    if not isinstance(intensity, expr):
        msg = f"polarimetry's intensity is a {_type(intensity)}, expected a sympy expression"
        raise UnsafePickleError(msg)
    numerators = polarimetry.get("alpha_numerators")
    if not isinstance(numerators, (tuple, list)) or len(numerators) != 3:
        msg = f"polarimetry's alpha_numerators is a {_type(numerators)}, expected 3 expressions"
        raise UnsafePickleError(msg)
    for numerator in numerators:
        if not isinstance(numerator, expr):
            found = _type(numerator)
            msg = f"polarimetry's alpha_numerators holds a {found}, expected 3 expressions"
            raise UnsafePickleError(msg)


def _check(forms: Any) -> dict[str, Any]:
    import sympy as sp

    if not isinstance(forms, dict):
        msg = f"not a model's dict (the pickle holds a {_type(forms)})"
        raise UnsafePickleError(msg)
    missing = [key for key in REQUIRED_KEYS if key not in forms]
    if missing:
        msg = f"not a model's dict (no {', '.join(missing)}; expected keys {list(REQUIRED_KEYS)})"
        raise UnsafePickleError(msg)
    forms = dict(forms)
    if not isinstance(forms["intensity_expr"], sp.Expr):
        msg = f"intensity_expr is a {_type(forms['intensity_expr'])}, expected a sympy expression"
        raise UnsafePickleError(msg)
    symbols_to_exprs = "sympy symbols to sympy expressions"
    _mapping(forms, "variables", sp.Symbol, sp.Expr, symbols_to_exprs)
    _mapping(forms, "sigma3", sp.Symbol, sp.Expr, symbols_to_exprs)
    if len(forms["sigma3"]) != 1:
        msg = f"sigma3 has {len(forms['sigma3'])} entries, expected one (σ3 in terms of σ1, σ2)"
        raise UnsafePickleError(msg)
    defaults = "sympy symbols or indexed symbols to numbers"
    _mapping(forms, "parameter_defaults", (sp.Symbol, sp.Indexed), object, defaults)
    plain = {}
    for symbol, value in forms["parameter_defaults"].items():
        number = plain_number(value)
        if number is None:
            msg = f"parameter_defaults has a value of type {_type(value)}, expected a number"
            raise UnsafePickleError(msg)
        plain[symbol] = number
    forms["parameter_defaults"] = plain
    if "amplitudes" in forms:
        _mapping(forms, "amplitudes", sp.Indexed, sp.Expr, "indexed symbols to expressions")
    if "polarimetry" in forms:
        _polarimetry(forms, sp.Expr)
    return forms


def check_forms_shape(forms: Any, where: str = "model pickle") -> dict[str, Any]:
    """``forms`` as a new plain dict if it has the shape of a model's forms.

    ``parameter_defaults`` becomes a plain dict whose values are int, float or complex (sympy
    numbers are converted); other keys keep their values.

    Raises:
        UnsafePickleError: ``forms`` is not a dict, lacks a required key, or a form has the
            wrong type (one line: ``where``, the key and the type found).
    """
    try:
        return _check(forms)
    except UnsafePickleError as exc:
        msg = f"{where}: {exc}"
        raise UnsafePickleError(msg) from None
