"""Allow-listed unpickling of a model's verified pickle.

A matching digest proves only that the bytes are the ones the manifest names, and a local
folder may be unsigned: whoever hands over the folder chooses both. So a model pickle is read
by a restricted unpickler that admits only the globals a model pickle needs (a few sympy classes,
``complex``, containers, and a stand-in for the one upstream class the published 1.0.0-1.2.0
pickles hold). Anything else is refused with :class:`UnsafePickleError`, naming the global,
before it is imported or called.

Constructing an admitted sympy class still runs its constructor, and some sympy constructors
turn strings into expressions with ``eval`` (``sympify``). So every admitted class is reached
through a guard that checks everything it is handed first (:mod:`modelstore.format.unpickle_checks`:
text is refused at any depth of nested containers, except a name for ``Symbol`` and ``Str``;
only numbers and sympy objects pass; huge numbers and powers are refused), then builds it.
Operations and functions are rebuilt with ``evaluate=False``: a pickle records finished
objects, so nothing is recomputed, and a pickle cannot make sympy compute (``exp(n*log(10))``
is ``10**n``). Each object built is interned and its tree measured (``unpickle_checks``).

The unpickler is pickle's pure-Python one with these opcodes changed (what model pickles hold
was read from every published one with ``pickletools``):

* BUILD (which calls ``__setstate__``, and sympy's sets any slot, e.g. a ``Tuple``'s
  ``_args``) is refused except on the ``ParameterValues`` stand-in;
* REDUCE, NEWOBJ and NEWOBJ_EX call only what the allow-list resolved (no object built
  earlier in the stream), with a tuple of arguments;
* SETITEM(S), APPEND(S) and ADDITEMS fill only plain dicts, lists and sets;
* INST, OBJ, EXT1/2/4, PERSID, BINPERSID, NEXT_BUFFER and READONLY_BUFFER are refused;
* whatever gets hashed (dict keys, set items, arguments of the container builtins) is
  checked first (nesting and size: CPython hashes nested tuples recursively in C).

The loaded dict's shape is checked last (see :func:`load_model_pickle`).
"""

from __future__ import annotations

import io
import pickle
from typing import Any, ClassVar

from modelstore.errors import UnsafePickleError
from modelstore.format.unpickle_checks import EXPRESSION_CLASSES, LOGIC_CLASSES, LoadChecks, refused

__all__ = ["ALLOWED_GLOBALS", "load_model_pickle"]

_SYMPY_CLASSES = {
    "sympy.core.add": ("Add",),
    "sympy.core.mul": ("Mul",),
    "sympy.core.power": ("Pow",),
    "sympy.core.numbers": (
        "Float", "Half", "ImaginaryUnit", "Integer", "NegativeOne", "One", "Rational", "Zero",
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
    # Piecewise (ampform's ComplexSqrt unfolded) and its conditions
    "sympy.functions.elementary.piecewise": ("ExprCondPair", "Piecewise"),
    "sympy.core.relational": (
        "Equality", "GreaterThan", "LessThan", "StrictGreaterThan", "StrictLessThan", "Unequality",
    ),
    "sympy.logic.boolalg": ("And", "BooleanFalse", "BooleanTrue", "Not", "Or"),
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

# operations and functions are rebuilt with evaluate=False: as recorded, never recomputed
_UNEVALUATED = EXPRESSION_CLASSES | LOGIC_CLASSES - {"ExprCondPair"}
_REFUSED_OPCODES = {
    pickle.INST: "INST (calls a class found by name)",
    pickle.OBJ: "OBJ (calls a class from the stack)",
    pickle.EXT1: "EXT1 (the copyreg extension registry)",
    pickle.EXT2: "EXT2 (the copyreg extension registry)",
    pickle.EXT4: "EXT4 (the copyreg extension registry)",
    pickle.PERSID: "PERSID (persistent ids)",
    pickle.BINPERSID: "BINPERSID (persistent ids)",
    pickle.NEXT_BUFFER: "NEXT_BUFFER (out-of-band buffers)",
    pickle.READONLY_BUFFER: "READONLY_BUFFER (out-of-band buffers)",
}


class ParameterValuesCompat(dict):
    """Reads the state of ``ampform.helicity.ParameterValues`` (a mapping kept in one attribute)."""

    def __setstate__(self, state: Any) -> None:
        values = state.get("_ParameterValues__parameters") if isinstance(state, dict) else None
        if not isinstance(values, dict):
            msg = "ampform.helicity.ParameterValues: unexpected pickled state"
            raise UnsafePickleError(msg)
        self.update(values)


def _guard(module: str, name: str, cls: type, checks: LoadChecks) -> type:
    """A type standing for ``cls`` in the pickle: it checks the arguments, then builds ``cls``
    (an equal object built before, if any)."""
    where = f"{module}.{name}"
    options = {"evaluate": False} if name in _UNEVALUATED else {}

    def __new__(_guard_cls: type, *args: Any, **kwargs: Any) -> Any:  # noqa: N807
        checks.arguments(where, name, args, kwargs)
        return checks.built(where, cls.__new__(cls, *args, **kwargs, **options))

    return type(f"Guarded{name}", (), {"__new__": __new__, "__module__": __name__})


def _target(module: str, name: str) -> Any:
    """The object ``module.name`` stands for, once it is known to be on the allow-list."""
    if (module, name) in _COMPAT:
        return globals()[_COMPAT[(module, name)]]
    import importlib

    return getattr(importlib.import_module(module), name)


def _setitems(checks: LoadChecks, target: Any, items: list[Any]) -> None:
    if type(target) is not dict:
        raise refused(f"SETITEM(S) on a {type(target).__name__}; only plain dicts take items")
    checks.hashable(items[0::2], "a dict key")
    for i in range(0, len(items), 2):
        target[items[i]] = items[i + 1]


def _extend(target: Any, items: list[Any]) -> None:
    if type(target) is not list:
        raise refused(f"APPEND(S) on a {type(target).__name__}; only plain lists take items")
    target.extend(items)


class _RestrictedUnpickler(pickle._Unpickler):
    """pickle's pure-Python unpickler with the opcodes of the module docstring changed."""

    # a copy: the changes below stay ours (typeshed lists none of these internals)
    dispatch: ClassVar[dict[int, Any]] = dict(vars(pickle._Unpickler)["dispatch"])
    stack: list[Any]
    append: Any
    pop_mark: Any

    def __init__(self, file: io.BytesIO) -> None:
        super().__init__(file)
        self.checks = LoadChecks()
        self.resolved: dict[tuple[str, str], Any] = {}
        # what REDUCE/NEWOBJ may call: id -> (object, its name, whether its arguments get hashed)
        self.callables: dict[int, tuple[Any, str, bool]] = {}

    def find_class(self, module: str, name: str) -> Any:
        key = (module, name)
        if key in self.resolved:
            return self.resolved[key]
        if type(module) is not str or type(name) is not str or key not in ALLOWED_GLOBALS:
            msg = f"it references {module}.{name}, which is not on the allow-list"
            raise refused(msg)
        if module == "builtins" or key in _COMPAT:
            found = _target(module, name)
        else:
            found = _guard(module, name, _target(module, name), self.checks)
        self.resolved[key] = found
        self.callables[id(found)] = (
            found,
            name,
            found is ParameterValuesCompat or module == "builtins",
        )
        return found

    def persistent_load(self, pid: Any) -> Any:
        raise refused("it uses persistent ids")

    def _callable(self, func: Any, args: Any, kwargs: Any, opcode: str) -> None:
        known, name, hashes = self.callables.get(id(func), (None, "", False))
        if known is not func:
            msg = f"{opcode} calls a {type(func).__name__}; only allow-listed classes are called"
            raise refused(msg)
        if type(args) is not tuple or type(kwargs) is not dict:
            raise refused(f"{opcode} with arguments that are not a tuple (and a dict)")
        if hashes:
            self.checks.hashable((*args, *kwargs.values()), f"a call of {name}")

    def load_reduce(self) -> None:
        args = self.stack.pop()
        func = self.stack[-1]
        self._callable(func, args, {}, "REDUCE")
        self.stack[-1] = func(*args)

    def load_newobj(self) -> None:
        args = self.stack.pop()
        cls = self.stack.pop()
        self._callable(cls, args, {}, "NEWOBJ")
        self.append(cls.__new__(cls, *args))

    def load_newobj_ex(self) -> None:
        kwargs = self.stack.pop()
        args = self.stack.pop()
        cls = self.stack.pop()
        self._callable(cls, args, kwargs, "NEWOBJ_EX")
        self.append(cls.__new__(cls, *args, **kwargs))

    def load_build(self) -> None:
        state = self.stack.pop()
        target = self.stack[-1]
        if type(target) is not ParameterValuesCompat:
            msg = (
                f"BUILD (pickle's __setstate__) on a {type(target).__name__}; only the"
                " stand-in for ampform's ParameterValues takes a state"
            )
            raise refused(msg)
        target.__setstate__(state)

    def load_setitem(self) -> None:
        value = self.stack.pop()
        key = self.stack.pop()
        _setitems(self.checks, self.stack[-1], [key, value])

    def load_setitems(self) -> None:
        items = self.pop_mark()
        _setitems(self.checks, self.stack[-1], items)

    def load_dict(self) -> None:
        items = self.pop_mark()
        target: dict[Any, Any] = {}
        _setitems(self.checks, target, items)
        self.append(target)

    def load_append(self) -> None:
        value = self.stack.pop()
        _extend(self.stack[-1], [value])

    def load_appends(self) -> None:
        items = self.pop_mark()
        _extend(self.stack[-1], items)

    def load_additems(self) -> None:
        items = self.pop_mark()
        target = self.stack[-1]
        if type(target) is not set:
            raise refused(f"ADDITEMS on a {type(target).__name__}; only plain sets take items")
        self.checks.hashable(items, "a set item")
        target.update(items)

    def load_frozenset(self) -> None:
        items = self.pop_mark()
        self.checks.hashable(items, "a frozenset item")
        self.append(frozenset(items))


def _refuser(why: str) -> Any:
    def refuse_opcode(self: _RestrictedUnpickler) -> None:
        raise refused(f"the opcode {why} has no place in a model pickle")

    return refuse_opcode


_RestrictedUnpickler.dispatch.update(
    {
        pickle.REDUCE[0]: _RestrictedUnpickler.load_reduce,
        pickle.NEWOBJ[0]: _RestrictedUnpickler.load_newobj,
        pickle.NEWOBJ_EX[0]: _RestrictedUnpickler.load_newobj_ex,
        pickle.BUILD[0]: _RestrictedUnpickler.load_build,
        pickle.SETITEM[0]: _RestrictedUnpickler.load_setitem,
        pickle.SETITEMS[0]: _RestrictedUnpickler.load_setitems,
        pickle.DICT[0]: _RestrictedUnpickler.load_dict,
        pickle.APPEND[0]: _RestrictedUnpickler.load_append,
        pickle.APPENDS[0]: _RestrictedUnpickler.load_appends,
        pickle.ADDITEMS[0]: _RestrictedUnpickler.load_additems,
        pickle.FROZENSET[0]: _RestrictedUnpickler.load_frozenset,
    }
    | {opcode[0]: _refuser(why) for opcode, why in _REFUSED_OPCODES.items()}
)


def load_model_pickle(data: bytes, where: str = "model pickle") -> dict[str, Any]:
    """Unpickle a model's forms with the allow-list; return a plain dict of checked shape.

    The dict holds ``intensity_expr`` (a sympy expression), ``variables`` and ``sigma3``
    (dicts of sympy symbols to sympy expressions, ``sigma3`` of one entry) and
    ``parameter_defaults`` (a plain dict of symbols or indexed symbols to int, float or
    complex, whatever class the pickle stored it as; sympy numbers become int or float).
    ``amplitudes`` and ``polarimetry`` (from 1.4.0) are checked when present; other keys are
    kept as they are.

    Raises:
        UnsafePickleError: the pickle references a global outside the allow-list, calls an
            admitted class with text or objects where it takes none, uses an opcode or a
            state that a model pickle does not need, is malformed, or does not hold a
            model's forms of the shape above (one line naming the key and what was found).
    """
    from modelstore.format.forms_shape import check_forms_shape

    try:
        forms = _RestrictedUnpickler(io.BytesIO(data)).load()
    except UnsafePickleError as exc:
        msg = f"{where}: {exc}"
        raise UnsafePickleError(msg) from None
    except Exception as exc:  # a malformed stream, or sympy refusing arguments
        # only text and numbers of the error: printing an object it holds may print a whole tree
        words = " ".join(str(a) for a in exc.args if isinstance(a, (str, int))).split()
        detail = " ".join(words)[:200]
        msg = f"{where}: not a readable model pickle ({type(exc).__name__}: {detail})"
        raise UnsafePickleError(msg) from None
    return check_forms_shape(forms, where)
