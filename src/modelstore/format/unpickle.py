"""Allow-listed unpickling of a model's verified pickle.

A matching digest proves only that the bytes are the ones the manifest names, and a local
folder may be unsigned: whoever hands over the folder chooses both. So a model pickle is read
by a restricted unpickler that admits only the globals a model pickle needs (a few sympy classes,
``complex``, and a stand-in for the one upstream class the published 1.0.0-1.2.0 pickles hold).
Anything else is refused with :class:`UnsafePickleError`, naming the global, before it is
imported or called.

Constructing an admitted sympy class still runs its constructor, and some sympy constructors
turn strings into expressions with ``eval`` (``sympify``). Every admitted class is therefore
reached through a guard that refuses text arguments except where the class takes a name
(``Symbol``, ``Str``), and refuses integer powers whose result would be huge.
"""

from __future__ import annotations

import io
import pickle
from typing import Any

from modelstore.errors import UnsafePickleError

__all__ = ["ALLOWED_GLOBALS", "load_model_pickle"]

_SYMPY_CLASSES = {
    "sympy.core.add": ("Add",),
    "sympy.core.mul": ("Mul",),
    "sympy.core.power": ("Pow",),
    "sympy.core.numbers": (
        "Half", "ImaginaryUnit", "Integer", "NegativeOne", "One", "Rational", "Zero",
        "Pi", "Exp1", "NaN", "Infinity", "NegativeInfinity",
    ),
    "sympy.core.symbol": ("Str", "Symbol"),
    "sympy.core.containers": ("Tuple", "Dict"),
    "sympy.functions.elementary.complexes": ("Abs", "arg", "conjugate", "im", "re"),
    "sympy.functions.elementary.exponential": ("exp", "log"),
    "sympy.functions.elementary.miscellaneous": ("Max", "Min"),
    "sympy.functions.elementary.trigonometric": (
        "acos", "asin", "atan", "atan2", "cos", "sin", "tan",
    ),
    "sympy.functions.elementary.hyperbolic": ("cosh", "sinh", "tanh"),
    "sympy.tensor.indexed": ("Indexed", "IndexedBase"),
}  # fmt: skip
_BUILTINS = ("complex", "dict", "frozenset", "list", "set", "tuple")
# Published 1.0.0-1.2.0 pickles hold `parameter_defaults` as an ampform ParameterValues.
_COMPAT = {("ampform.helicity", "ParameterValues"): "ParameterValuesCompat"}

ALLOWED_GLOBALS: frozenset[tuple[str, str]] = frozenset(
    {(module, name) for module, names in _SYMPY_CLASSES.items() for name in names}
    | {("builtins", name) for name in _BUILTINS}
    | set(_COMPAT)
)
"""Every ``(module, name)`` a model pickle may reference."""

_NAME_CLASSES = frozenset({"Symbol", "Str"})  # take a name: a str first argument is expected
_MAX_POWER_BITS = 1 << 16  # an exact integer power may have at most this many bits


class ParameterValuesCompat(dict):
    """Reads the state of ``ampform.helicity.ParameterValues`` (a mapping kept in one attribute)."""

    def __setstate__(self, state: Any) -> None:
        values = state.get("_ParameterValues__parameters") if isinstance(state, dict) else None
        if not isinstance(values, dict):
            msg = "ampform.helicity.ParameterValues: unexpected pickled state"
            raise UnsafePickleError(msg)
        self.update(values)


def _has_text(value: Any, depth: int = 0) -> bool:
    if isinstance(value, (str, bytes, bytearray)):
        return True
    if depth < 4 and isinstance(value, (tuple, list, set, frozenset)):
        return any(_has_text(v, depth + 1) for v in value)
    if depth < 4 and isinstance(value, dict):
        return any(_has_text(k, depth + 1) or _has_text(v, depth + 1) for k, v in value.items())
    return False


def _bits(value: Any) -> int:
    p, q = getattr(value, "p", None), getattr(value, "q", None)
    if isinstance(p, int) and isinstance(q, int):
        return max(p.bit_length(), q.bit_length(), 1)
    return 0


def _check_arguments(module: str, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    where = f"{module}.{name}"
    checked = args[1:] if name in _NAME_CLASSES and args and isinstance(args[0], str) else args
    if _has_text(checked) or any(_has_text(v) or not isinstance(v, bool) for v in kwargs.values()):
        msg = f"refused: {where} called with text or unexpected arguments"
        raise UnsafePickleError(msg)
    if name == "Pow" and len(args) == 2:
        exponent = getattr(args[1], "p", None) if getattr(args[1], "q", None) == 1 else None
        if isinstance(exponent, int) and _bits(args[0]) * abs(exponent) > _MAX_POWER_BITS:
            msg = f"refused: {where} of an exact number to the power {exponent} is too large"
            raise UnsafePickleError(msg)


def _guard(module: str, name: str, cls: type) -> type:
    """A type standing for ``cls`` in the pickle: it checks the arguments, then builds ``cls``."""

    def __new__(_guard_cls: type, *args: Any, **kwargs: Any) -> Any:  # noqa: N807
        _check_arguments(module, name, args, kwargs)
        return cls.__new__(cls, *args, **kwargs)

    return type(f"Guarded{name}", (), {"__new__": __new__, "__module__": __name__})


_GUARDS: dict[tuple[str, str], Any] = {}


def _resolve(module: str, name: str) -> Any:
    key = (module, name)
    if key in _GUARDS:
        return _GUARDS[key]
    if key not in ALLOWED_GLOBALS:
        msg = f"refused: it references {module}.{name}, which is not on the allow-list"
        raise UnsafePickleError(msg)
    if key in _COMPAT:
        target: Any = globals()[_COMPAT[key]]
    elif module == "builtins":
        import builtins

        target = getattr(builtins, name)
    else:
        import importlib

        target = _guard(module, name, getattr(importlib.import_module(module), name))
    _GUARDS[key] = target
    return target


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        return _resolve(module, name)

    def persistent_load(self, pid: Any) -> Any:
        msg = "refused: it uses persistent ids"
        raise UnsafePickleError(msg)


def load_model_pickle(data: bytes, where: str = "model pickle") -> dict[str, Any]:
    """Unpickle a model's forms with the allow-list; return a plain dict.

    ``parameter_defaults`` comes back as a plain dict of sympy symbols to numbers, whatever
    class the pickle stored it as.

    Raises:
        UnsafePickleError: the pickle references a global outside the allow-list, calls an
            admitted class with text where it takes none, or is not a model's dict.
    """
    try:
        forms = _RestrictedUnpickler(io.BytesIO(data)).load()
    except UnsafePickleError as exc:
        msg = f"{where}: {exc}"
        raise UnsafePickleError(msg) from None
    except Exception as exc:  # a malformed stream: any error of the pickle machinery
        msg = f"{where}: not a readable model pickle ({type(exc).__name__}: {exc})"
        raise UnsafePickleError(msg) from None
    required = {"intensity_expr", "variables", "parameter_defaults", "sigma3"}
    if not isinstance(forms, dict) or not required <= forms.keys():
        msg = f"{where}: not a model's dict (expected keys {sorted(required)})"
        raise UnsafePickleError(msg)
    forms = dict(forms)
    forms["parameter_defaults"] = dict(forms["parameter_defaults"])
    return forms
