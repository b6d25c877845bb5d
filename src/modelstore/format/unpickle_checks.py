"""What one model-pickle load may hand to sympy, hash and build: the unpickler's checks.

One :class:`LoadChecks` serves one load (``modelstore.format.unpickle``). It judges

* what an admitted sympy class is handed: walked through tuples, lists, sets and dicts at any
  depth (iteratively), it may hold only numbers and sympy objects (a name class's first argument
  may be text; a number class takes only integers, an operation or a function only sympy
  expressions and numbers, as they are pickled), exact numbers of at most
  ``MAX_NUMBER_BITS`` and no keyword argument but a Symbol's True/False assumptions; a
  ``Float`` only as sympy pickles a finite double: ``((sign, hex mantissa, exponent, bits),)``
  with a mantissa of at most 53 bits in a double's range, and ``precision=53``;
* what the unpickler hashes (dict keys, set items, arguments of the container builtins): CPython
  hashes nested tuples recursively in C, so a key 10**6 tuples deep would crash the interpreter,
  and a few shared tuples stand for exponentially many. Every walk refuses containers nested
  more than ``MAX_NESTING`` deep, and a load may walk ``MAX_CONTAINER_ITEMS`` items in all
  (a shared container counted each time it occurs);
* what it builds: every sympy object is interned (one object per structure, so that comparing
  two objects never walks twin copies of a shared subexpression, which is exponential), its
  tree is measured (shared subexpressions counted each time, as sympy's printers and
  ``lambdify`` will visit them) and may have at most ``MAX_TREE_NODES`` nodes, and the classes
  whose constructors walk their arguments' trees (``Max``, ``Min``, ``Dict`` sort them,
  ``Indexed`` asks ``is_number``) take no containers and may walk ``MAX_TRAVERSED_NODES``
  nodes per load.

Published pickles hand no containers to sympy, hash none, use no ``Max``/``Min``/``Dict`` and
hold intensities of at most about 160,000 tree nodes (ls-couplings 1.4.0).
"""

from __future__ import annotations

from typing import Any

from modelstore.errors import UnsafePickleError

__all__ = [
    "EXPRESSION_CLASSES",
    "LOGIC_CLASSES",
    "MAX_CONTAINER_ITEMS",
    "MAX_NESTING",
    "MAX_NUMBER_BITS",
    "MAX_TRAVERSED_NODES",
    "MAX_TREE_NODES",
    "LoadChecks",
    "refused",
]

MAX_NESTING = 100
"""Containers (tuples, lists, sets, dicts) may nest at most this deep where they are walked."""
MAX_CONTAINER_ITEMS = 100_000
"""Container items one load may walk, a shared container counted each time it occurs."""
MAX_NUMBER_BITS = 1 << 16
"""An exact number handed to sympy, or an exact integer power, may have this many bits."""
MAX_TREE_NODES = 4_000_000
"""Nodes of one built object's tree (25 times the largest published intensity)."""
MAX_TRAVERSED_NODES = 1_000_000
"""Tree nodes that the constructors of one load may walk (sorting, ``is_number``)."""

_NAME_CLASSES = frozenset({"Symbol", "Str"})  # take a name: a str first argument is expected
# sympy.core.numbers: pickled as Integer(p), Rational(p, q) or a singleton with no arguments;
# handed anything else, they format it into their error message (printing a whole tree)
_NUMBER_CLASSES = frozenset(
    {"Integer", "Rational", "Half", "ImaginaryUnit", "NegativeOne", "One", "Zero"}
    | {"Pi", "Exp1", "NaN", "Infinity", "NegativeInfinity"}
)
_WALKING_CLASSES = frozenset({"Max", "Min", "Dict", "Indexed", "And", "Or"})  # walk arg trees
_SINGLETONS = frozenset({"BooleanTrue", "BooleanFalse"})  # pickled with no arguments
_HEX_DIGITS = frozenset("0123456789abcdef")

EXPRESSION_CLASSES = frozenset(
    {"Add", "Mul", "Pow", "Max", "Min", "Abs", "arg", "conjugate", "im", "re", "exp", "log"}
    | {"acos", "asin", "atan", "atan2", "cos", "sin", "tan", "cosh", "sinh", "tanh"}
    | {"Equality", "GreaterThan", "LessThan", "StrictGreaterThan", "StrictLessThan", "Unequality"}
)
"""Operations, functions and comparisons: they take sympy expressions and numbers only."""
LOGIC_CLASSES = frozenset({"Piecewise", "ExprCondPair", "And", "Or", "Not"})
"""Piecewise, its pairs and the logic of conditions: they take sympy objects only."""
_CONTAINERS = (tuple, list, set, frozenset, dict)
_TEXT = (str, bytes, bytearray)


def _float_problem(args: tuple[Any, ...], kwargs: Any) -> str | None:
    """What is wrong with ``Float(*args, **kwargs)`` as sympy pickles a finite double, if anything.

    sympy pickles ``Float`` as ``Float((sign, mantissa in hex, exponent, bit count),
    precision=53)``; anything else (a string to parse, another precision, a mantissa or an
    exponent beyond a double's) is refused before sympy sees it.
    """
    if kwargs != {"precision": 53} or type(kwargs["precision"]) is not int:
        return "other keyword arguments than precision=53 (a double)"
    if len(args) != 1 or type(args[0]) is not tuple or len(args[0]) != 4:
        return "something else than one (sign, mantissa, exponent, bits) tuple"
    sign, mantissa, exponent, bits = args[0]
    if type(sign) is not int or sign not in (0, 1):
        return "a sign that is not 0 or 1"
    if type(mantissa) is not str or not 0 < len(mantissa) <= 14 or set(mantissa) - _HEX_DIGITS:
        return "a mantissa that is not at most 14 hexadecimal digits"
    if type(bits) is not int or bits != int(mantissa, 16).bit_length() or bits > 53:
        return "a bit count that is not the mantissa's (at most 53)"
    if type(exponent) is not int or not -1074 <= exponent <= 1024 - bits:
        return "an exponent outside a double's range"
    return None


def refused(message: str) -> UnsafePickleError:
    """The error for a refused pickle: ``refused: message`` (the caller raises it).

    Never raises.
    """
    return UnsafePickleError(f"refused: {message}")


def _bits(value: Any) -> int:
    """Bits of an exact number (a Python int, or a sympy Integer/Rational); 0 for anything else."""
    if isinstance(value, int):
        return value.bit_length()
    p, q = getattr(value, "p", None), getattr(value, "q", None)
    if isinstance(p, int) and isinstance(q, int):
        return max(p.bit_length(), q.bit_length(), 1)
    return 0


def _children(container: Any) -> Any:
    if isinstance(container, dict):
        return [x for item in container.items() for x in item]
    return container


def _any_leaf(value: Any) -> str | None:
    return None


class LoadChecks:
    """The checks and what is left of the budgets of one load (see the module docstring)."""

    def __init__(self) -> None:
        from sympy import Basic, Expr

        self.basic, self.expr = Basic, Expr
        self.items_left = MAX_CONTAINER_ITEMS
        self.traversals_left = MAX_TRAVERSED_NODES
        # id -> (object, its canonical object, its tree size); the object is kept alive
        self.seen: dict[int, tuple[Any, Any, int]] = {}
        self.canonical: dict[tuple[Any, ...], Any] = {}  # (type, content or arg ids) -> object

    # ---- containers ----

    def _sympy_leaf(self, value: Any) -> str | None:
        """Why ``value`` may not reach a sympy constructor, or None."""
        if isinstance(value, _TEXT):
            return "text (sympy would eval it)"
        if isinstance(value, (int, float, complex, self.basic)):
            bits = _bits(value)
            if bits > MAX_NUMBER_BITS:
                return f"an exact number of {bits} bits (at most {MAX_NUMBER_BITS})"
            return None
        return f"an object of type {type(value).__name__}"

    def _walk(self, value: Any, leaf: Any) -> str | None:
        """Why ``value`` is refused (``leaf`` judges each non-container), or None.

        Iterative post-order walk, each distinct container once: finds what ``leaf`` refuses
        at any depth, and measures nesting depth and the items a recursive consumer would
        visit (shared containers counted each time), both bounded.
        """
        if not isinstance(value, _CONTAINERS):
            return leaf(value)
        measured: dict[int, tuple[int, int]] = {}  # id -> (nesting depth, items below)
        open_ids: set[int] = set()  # containers being walked: each an ancestor of the current
        todo: list[tuple[Any, bool]] = [(value, False)]
        while todo:
            node, closing = todo.pop()
            key = id(node)
            if closing:
                depth, items = 0, 1
                for child in _children(node):
                    if isinstance(child, _CONTAINERS):
                        child_depth, child_items = measured[id(child)]
                        depth, items = max(depth, child_depth), items + child_items
                    else:
                        items += 1
                if depth + 1 > MAX_NESTING:
                    return f"containers nested more than {MAX_NESTING} deep"
                if items > self.items_left:
                    return f"containers of more than {MAX_CONTAINER_ITEMS} items in all"
                measured[key] = (depth + 1, items)
                open_ids.discard(key)
                continue
            if key in measured:
                continue
            open_ids.add(key)
            todo.append((node, True))
            for child in _children(node):
                if isinstance(child, _CONTAINERS):
                    if id(child) in open_ids:
                        return "a container that holds itself"
                    if id(child) not in measured:
                        todo.append((child, False))
                elif (problem := leaf(child)) is not None:
                    return problem
        self.items_left -= measured[id(value)][1]
        return None

    def hashable(self, values: Any, what: str) -> None:
        """Refuse ``values`` before they are hashed (as keys, set items, container arguments).

        Raises:
            UnsafePickleError: a container in ``values`` nests too deep, holds itself, or
                exhausts the load's container items.
        """
        for value in values:
            if isinstance(value, _CONTAINERS) and (problem := self._walk(value, _any_leaf)):
                raise refused(f"{what} holds {problem}")

    # ---- sympy objects ----

    def _adopt(self, obj: Any) -> tuple[Any, Any, int]:
        """``(obj, its canonical object, its tree size)``, registering ``obj``'s whole tree.

        Two objects get one canonical object when they have the same type and the same hashable
        content (what sympy's ``==`` compares) with sympy parts replaced by their canonical
        objects: so they are equal, and twins of one structure become one object.
        """
        entry = self.seen.get(id(obj))
        if entry is not None and entry[0] is obj:
            return entry
        todo: list[tuple[Any, bool]] = [(obj, False)]
        while todo:
            node, closing = todo.pop()
            entry = self.seen.get(id(node))
            if entry is not None and entry[0] is node:
                continue
            content = node._hashable_content()
            parts = [x for x in (*node.args, *content) if isinstance(x, self.basic)]
            if parts and not closing:
                todo.append((node, True))
                todo.extend((part, False) for part in parts)
                continue
            # sympy parts by the id of their canonical object (kept alive here), in a 1-tuple
            key = (type(node), *((id(self.seen[id(x)][1]),) if isinstance(x, self.basic) else x
                                 for x in content))  # fmt: skip
            size = 1 + sum(self.seen[id(arg)][2] for arg in node.args)
            self.seen[id(node)] = (node, self.canonical.setdefault(key, node), size)
        return self.seen[id(obj)]

    def arguments(self, where: str, name: str, args: tuple[Any, ...], kwargs: Any) -> None:
        """Refuse what the sympy class ``name`` may not be handed (``where`` names it).

        Raises:
            UnsafePickleError: text or another object where the class takes none (a number
                class takes only integers, an operation or function only expressions and
                numbers), a keyword argument, a huge exact number or power, a container handed
                to a class that walks its arguments, or arguments whose trees would take the
                load past ``MAX_TRAVERSED_NODES``.
        """
        if name == "Float":
            if (problem := _float_problem(args, kwargs)) is not None:
                raise refused(f"{where} called with {problem}")
            return
        if kwargs and name != "Symbol":
            raise refused(f"{where} called with keyword arguments")
        if not all(isinstance(v, bool) for v in kwargs.values()):
            raise refused(f"{where} called with an assumption that is not True or False")
        if name in _NUMBER_CLASSES and not all(type(a) is int for a in args):
            raise refused(f"{where} called with something else than integers")
        if name in _SINGLETONS and args:
            raise refused(f"{where} called with arguments (it takes none)")
        if name in LOGIC_CLASSES:
            for arg in args:
                if not isinstance(arg, self.basic):
                    msg = f"{where} called with a {type(arg).__name__} (it takes sympy objects)"
                    raise refused(msg)
        if name in EXPRESSION_CLASSES:
            for arg in args:
                if not isinstance(arg, self.expr) and type(arg) not in (int, float, complex):
                    msg = f"{where} called with a {type(arg).__name__} (it takes expressions)"
                    raise refused(msg)
        if name in _WALKING_CLASSES and any(isinstance(a, _CONTAINERS) for a in args):
            raise refused(f"{where} called with a container (it takes sympy objects)")
        start = 1 if name in _NAME_CLASSES and args and type(args[0]) is str else 0
        for arg in args[start:]:
            if (problem := self._walk(arg, self._sympy_leaf)) is not None:
                raise refused(f"{where} called with {problem}")
        if name == "Pow" and len(args) == 2:
            exponent = getattr(args[1], "p", None) if getattr(args[1], "q", None) == 1 else None
            if isinstance(exponent, int) and _bits(args[0]) * abs(exponent) > MAX_NUMBER_BITS:
                msg = f"{where} of an exact number to the power {exponent} is too large"
                raise refused(msg)
        if name in _WALKING_CLASSES:
            cost = sum(self._adopt(a)[2] if isinstance(a, self.basic) else 1 for a in args)
            if cost > self.traversals_left:
                msg = f"{where} would walk more than {MAX_TRAVERSED_NODES} tree nodes in all"
                raise refused(msg)
            self.traversals_left -= cost

    def built(self, where: str, obj: Any) -> Any:
        """The object to use for ``obj``, just built: an equal one built before, if any.

        Raises:
            UnsafePickleError: ``obj``'s tree has more than ``MAX_TREE_NODES`` nodes.
        """
        if not isinstance(obj, self.basic):
            return obj
        _, canonical, size = self._adopt(obj)
        if size > MAX_TREE_NODES:
            msg = f"{where} builds a tree of more than {MAX_TREE_NODES} nodes"
            raise refused(msg)
        return canonical
