"""Threats 13 and 21: a red-team campaign against the model unpickler, from a fixed seed.

Hostile model pickles are generated the way issue 18's review attacked the unpickler: text
hidden in containers nested at many depths and handed to every admitted class (by REDUCE,
NEWOBJ and NEWOBJ_EX, as arguments or keyword arguments), BUILD on admitted classes and on
plain objects, a ParameterValues state of text, huge numbers and numbers sympy would compute
with, very long and very deep expressions, small pickles of exponentially large shared trees
(sorted by Max/Min/Dict, built twice and compared as dict keys), forms of the wrong shape,
and random corruptions of a valid pickle. Every text in
them is Python that creates a canary file if evaluated. Each input goes to
:func:`load_model_pickle` directly (not through a registry folder: users' own pickles reach it
too) under ``test_fuzz``'s per-input budget of time and memory, and must give only modelstore's
own errors, within the budget, and never create the canary. Inputs that carry text to a class,
use BUILD or have the wrong shape must be refused.

The default run tries a few inputs of three kinds; ``pytest -m slow`` runs the whole campaign.
"""

from __future__ import annotations

import pickle
import random
import struct
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sympy as sp
from hostile_pickles import (
    EMPTY_DICT,
    EMPTY_LIST,
    MARK,
    NEWOBJ,
    POP,
    REDUCE,
    SETITEM,
    TUPLE,
    TUPLE1,
    canary_code,
    dict_of,
    get,
    glob,
    integer,
    model_pickle,
    put,
    real,
    symbol,
    sympy,
    text,
    tup,
)
from test_fuzz import within_budget

from modelstore.errors import ModelstoreError
from modelstore.format.unpickle import ALLOWED_GLOBALS, load_model_pickle

SEED = 20_240_618
SYMPY_CLASSES = sorted((name, module) for module, name in ALLOWED_GLOBALS if "sympy" in module)
MODULES = dict(SYMPY_CLASSES)
APPEND, EMPTY_SET, ADDITEMS, FROZENSET, NEWOBJ_EX = b"a", b"\x8f", b"\x90", b"\x91", b"\x92"
LIST, DICT, BUILD = b"l", b"d", b"b"


def sympy_class_of(name: str) -> bytes:
    return glob(MODULES[name], name)


# ---- hostile fragments (each leaves one object on the pickle stack) ----


def nest(leaf: bytes, rng: random.Random, depth: int) -> bytes:
    """``leaf`` in ``depth`` containers, each of a random kind (as value, key or member)."""
    prefixes, suffixes = [], []
    hashable = True  # text and tuples/frozensets of hashables can be keys and set members
    for _ in range(depth):
        kinds = ["tuple", "tuple1", "list", "list_mark", "dict_value", "dict_mark"]
        if hashable:
            kinds += ["dict_key", "set", "frozenset"]
        kind = rng.choice(kinds)
        prefix, suffix = {
            "tuple": (MARK, TUPLE),
            "tuple1": (b"", TUPLE1),
            "list": (EMPTY_LIST, APPEND),
            "list_mark": (MARK, LIST),
            "dict_value": (EMPTY_DICT + integer(0), SETITEM),
            "dict_mark": (MARK + integer(0), DICT),
            "dict_key": (EMPTY_DICT, integer(0) + SETITEM),
            "set": (EMPTY_SET + MARK, ADDITEMS),
            "frozenset": (MARK, FROZENSET),
        }[kind]
        prefixes.append(prefix)
        suffixes.append(suffix)
        hashable = hashable and kind in ("tuple", "tuple1", "frozenset")
    return b"".join(reversed(prefixes)) + leaf + b"".join(suffixes)


def depth_of(rng: random.Random) -> int:
    return rng.choice([1, 2, 4, 5, 6, 20, 99, 100, 101, 1_000, 10_000, 20_000])


# how many arguments each admitted class takes as pickled (None: any number)
ARITY = {name: 1 for name, _ in SYMPY_CLASSES} | {
    "Add": None, "Mul": None, "Tuple": None, "Max": None, "Min": None, "Indexed": None,
    "Pow": 2, "atan2": 2, "Rational": 2, "Dict": None,
    "Half": 0, "ImaginaryUnit": 0, "NegativeOne": 0, "One": 0, "Zero": 0, "Pi": 0, "Exp1": 0,
    "NaN": 0, "Infinity": 0, "NegativeInfinity": 0,
    "Piecewise": None, "ExprCondPair": 2, "And": None, "Or": None, "BooleanTrue": 0,
    "BooleanFalse": 0, "Equality": 2, "Unequality": 2, "LessThan": 2, "StrictLessThan": 2,
    "GreaterThan": 2, "StrictGreaterThan": 2,
}  # fmt: skip
# these sympify their arguments leniently (text is eval'd): the review's targets
LENIENT = ["Tuple", "Indexed", "IndexedBase", "Dict", "ExprCondPair", "Piecewise"]


def handed_to_a_class(hostile: bytes, rng: random.Random) -> bytes:
    """An admitted class given ``hostile`` among the arguments it takes, by a random opcode."""
    takers = [name for name, arity in ARITY.items() if arity != 0]
    name = rng.choice(LENIENT) if rng.random() < 0.5 else rng.choice(takers)
    cls = glob(MODULES[name], name)
    how = rng.choice(["REDUCE", "NEWOBJ", "NEWOBJ_EX"]) if rng.random() < 0.9 else "kwarg"
    if how == "kwarg":
        return (
            sympy_class_of("Symbol") + tup(text("s")) + dict_of((text("real"), hostile)) + NEWOBJ_EX
        )
    count = ARITY[name] or rng.randint(1, 3)
    args = [symbol(f"a{k}") for k in range(count - 1)]
    args.insert(rng.randint(0, len(args)), hostile)
    if name == "Indexed":
        args.insert(0, sympy("IndexedBase", symbol("A")))
    if how == "NEWOBJ_EX":
        return cls + tup(*args) + EMPTY_DICT + NEWOBJ_EX
    return cls + tup(*args) + (REDUCE if how == "REDUCE" else NEWOBJ)


def nested_text(rng: random.Random, canary: Path) -> tuple[bytes, bool]:
    hidden = nest(text(canary_code(canary)), rng, depth_of(rng))
    return model_pickle(handed_to_a_class(hidden, rng)), True


def _instances() -> list[sp.Basic]:
    x, y = sp.symbols("x y")
    base = sp.IndexedBase("A")
    return [
        x + 1, 2 * x, x**2, sp.S.Half, sp.I, sp.Integer(7), sp.Rational(1, 3), sp.pi, sp.E,
        sp.nan, sp.oo, sp.core.symbol.Str("s"), x, sp.Tuple(x), sp.Dict({x: 1}), sp.Max(x, y),
        sp.atan2(y, x), base[x], base, sp.exp(x), sp.cos(x), sp.Abs(x), sp.tanh(x), sp.log(x),
    ]  # fmt: skip


INSTANCES = _instances()


class _Stated:
    """Pickles as ``cls(*args)`` then BUILD ``state``."""

    def __init__(self, cls: type, args: tuple, state: object) -> None:
        self.cls, self.args, self.state = cls, args, state

    def __reduce__(self) -> tuple:
        return (self.cls, self.args, self.state)


def build_state(rng: random.Random, canary: Path) -> tuple[bytes, bool]:
    code = canary_code(canary)
    obj = rng.choice([*INSTANCES, {}, [], (1,), 1j])
    if isinstance(obj, sp.Basic):
        cls = type(obj)
        args = (
            obj.__getnewargs_ex__()[0]
            if hasattr(obj, "__getnewargs_ex__")
            else obj.__getnewargs__()
        )
    else:
        cls, args = type(obj), (obj,)
    # sympy's __setstate__ sets each item of a dict state as an attribute; _args is the review's
    slot = rng.choice(["_args"] * 6 + ["_mhash", "_assumptions", "name", "label"])
    value = rng.choice([(code,)] * 4 + [code, [code], {code: code}, 0])
    state = {slot: value} if rng.random() < 0.9 else (None, {slot: value})
    intensity = _Stated(cls, args, state)
    key = rng.choice(["intensity_expr", "variables", "parameter_defaults"])
    x, s3 = sp.Symbol("x"), sp.Symbol("sigma3")
    forms = {
        "intensity_expr": x,
        "variables": {sp.Symbol("t"): sp.acos(x)},
        "parameter_defaults": {x: 1.0},
        "sigma3": {s3: 1 - x},
    }
    forms[key] = intensity if key == "intensity_expr" else {x: intensity}
    return pickle.dumps(forms, protocol=rng.choice([2, 4, 5])), True


def parameter_values_stuffed(rng: random.Random, canary: Path) -> tuple[bytes, bool]:
    """The one class that takes a state, given text or containers instead of numbers."""
    code = text(canary_code(canary))
    pv = glob("ampform.helicity", "ParameterValues") + tup() + NEWOBJ
    values = rng.choice([dict_of((symbol("x"), code)), dict_of((code, real(1.0))), code, tup()])
    state = dict_of((text("_ParameterValues__parameters"), values))
    return model_pickle(parameter_defaults=pv + state + BUILD), True


def big_int(rng: random.Random) -> int:
    bits = rng.choice([64, 4_000, 65_000, 65_537, 200_000, 1 << 20])
    return rng.getrandbits(bits) | (1 << (bits - 1))


def huge_numbers(rng: random.Random, canary: Path) -> tuple[bytes, bool]:
    n = big_int(rng)
    small = rng.choice([2, 10, 10**4, 10**12, 2**64])
    num = rng.choice([sympy("Integer", integer(n)), sympy("Rational", integer(n), integer(3))])
    cases = [
        num,
        sympy("Rational", integer(n), integer(big_int(rng))),
        sympy("Pow", sympy("Integer", integer(small)), sympy("Integer", integer(small))),
        sympy("Pow", num, sympy("Rational", integer(1), integer(3))),
        # exp(n*log(b)) is b**n to sympy; sin(n*pi) reduces n mod 2
        sympy("exp", sympy("Mul", sympy("Integer", integer(small)), sympy("log", num))),
        sympy("sin", sympy("Mul", num, glob("sympy.core.numbers", "Pi") + tup() + NEWOBJ)),
        # one big number multiplied by itself many times (memo: a small pickle)
        num + put(1) + POP + sympy("Mul", *[get(1)] * rng.choice([2, 100, 10_000])),
        call_builtin(
            "complex", real(rng.choice([1e308, float("inf"), float("nan")])), real(-1e308)
        ),
        b"I" + str(n).encode() + b"\n" if n.bit_length() < 20_000 else b"I1\n",  # text int
        b"\x8b" + struct.pack("<I", 1 << 30) + b"\x01\x02",  # LONG4 declaring a GB it lacks
    ]
    return model_pickle(rng.choice(cases)), False


def call_builtin(name: str, *args: bytes) -> bytes:
    return glob("builtins", name) + tup(*args) + REDUCE


def long_expressions(rng: random.Random, canary: Path) -> tuple[bytes, bool]:
    n = rng.choice([10, 1_000, 10_000])
    kind = rng.choice(["wide", "distinct", "deep", "deep key", "shared", "long name"])
    add = glob("sympy.core.add", "Add") + put(2) + POP
    x = symbol("x") + put(1) + POP
    if kind == "wide":  # Add(x, x, ..., x) of one memoized symbol
        body = x + sympy("Add", *[get(1)] * n)
    elif kind == "distinct":
        body = sympy("Add", *[symbol(f"x{k}") for k in range(n)])
    elif kind in ("deep", "deep key"):  # Add(Add(Add(x, x), x), x): a chain n deep
        body = x + add + (get(2) + MARK) * n + get(1) + (get(1) + TUPLE + REDUCE) * n
        if kind == "deep key":  # hashed as a dict key
            return model_pickle(variables=dict_of((body, symbol("x")))), False
    elif kind == "shared":  # a(k+1) = Add(a(k), a(k)): 2**200 leaves in 200 objects
        body = symbol("x") + put(10) + POP + add
        for k in range(200):
            body += get(2) + MARK + get(10 + k) * 2 + TUPLE + REDUCE + put(11 + k) + POP
        body += get(210)
    else:
        body = sympy("Symbol", text("x" * rng.choice([10_000, 1 << 20, 4 << 20])))
    return model_pickle(body), False


def tower(rng: random.Random, levels: int, first: int) -> bytes:
    """``levels`` levels of ``cls(a, a)`` over the level below (memo slots from ``first``)."""
    name = rng.choice(["Add", "Mul", "Pow", "Tuple", "atan2", "Max"])
    body = symbol("x") + put(first) + POP
    for k in range(levels):
        body += sympy(name, get(first + k), get(first + k)) + put(first + k + 1) + POP
    return body


def shared_trees(rng: random.Random, canary: Path) -> tuple[bytes, bool]:
    """Small pickles standing for huge trees: sorted (Max, Min, Dict), asked is_number
    (Indexed over a Tuple), or built twice and compared as dict keys."""
    levels = rng.choice([8, 16, 18, 19, 20, 21, 22, 40, 200])
    built = tower(rng, levels, 100)
    top = get(100 + levels)
    kind = rng.choice(["Max", "Min", "Dict", "Indexed", "twins", "plain"])
    if kind in ("Max", "Min"):
        body = built + sympy(kind, top, symbol("y"))
    elif kind == "Dict":
        body = built + sympy("Dict", sympy("Tuple", top, integer(1)))
    elif kind == "Indexed":
        body = built + sympy("Indexed", sympy("Tuple", top), integer(0))
    elif kind == "twins":  # sympy's constructor caches evicted between two equal towers
        evict = b"".join(sympy("Pow", symbol("z"), integer(k)) + POP for k in range(2, 1_200))
        twin = tower(random.Random(levels), levels, 1_000)
        first = tower(random.Random(levels), levels, 100)
        keys = dict_of((get(100 + levels), integer(1)), (get(1_000 + levels), integer(2)))
        body = first + evict + twin + keys
    else:
        body = built + top
    return model_pickle(variables=dict_of((symbol("v"), body))), False


def wrong_shape(rng: random.Random, canary: Path) -> tuple[bytes, bool]:
    code = text(canary_code(canary))
    x = symbol("x")
    wrong = {
        "intensity_expr": [tup(x), EMPTY_LIST, code, integer(1), b"N", dict_of((x, x))],
        "variables": [dict_of((x, integer(1))), dict_of((x, code)), tup(), code, sympy("Tuple")],
        "parameter_defaults": [dict_of((x, code)), dict_of((code, real(1.0))), dict_of((x, x))],
        "sigma3": [dict_of(), dict_of((x, x), (symbol("y"), x)), dict_of((x, code))],
        "polarimetry": [dict_of((text("intensity"), code)), code, tup()],
        "amplitudes": [dict_of((x, x)), dict_of((code, x)), code],
    }
    key = rng.choice(list(wrong))
    if rng.random() < 0.1:
        forms = model_pickle()
        drop = text(rng.choice(["variables", "sigma3", "parameter_defaults", "intensity_expr"]))
        return forms.replace(drop, text("unknown_key"), 1), True
    return model_pickle(**{key: rng.choice(wrong[key])}), True


def corrupted(rng: random.Random, canary: Path) -> tuple[bytes, bool]:
    """A valid model pickle with bytes changed, cut, or hostile opcodes spliced in."""
    data = bytearray(model_pickle(sympy("Add", symbol("x"), sympy("Integer", integer(2)))))
    opcodes = b"bR\x81\x92io\x82Qsuae\x90\x91(t02"  # BUILD, REDUCE, NEWOBJ(_EX), INST, ...
    splices = [opcodes[k : k + 1] for k in range(len(opcodes))]
    splices += [b"\x82\x01", b"P0\n", text(canary_code(canary))]
    for _ in range(rng.randint(1, 8)):
        at = rng.randrange(len(data))
        action = rng.random()
        if action < 0.4:
            data[at] = rng.randrange(256)
        elif action < 0.8:
            data[at:at] = rng.choice(splices)
        else:
            del data[at : at + rng.randint(1, 16)]
    return bytes(data), False


CAMPAIGN: dict[str, Callable[[random.Random, Path], tuple[bytes, bool]]] = {
    "nested text": nested_text,
    "BUILD": build_state,
    "ParameterValues state": parameter_values_stuffed,
    "huge numbers": huge_numbers,
    "long expressions": long_expressions,
    "shared trees": shared_trees,
    "wrong shape": wrong_shape,
    "corrupted": corrupted,
}


def inputs(kind: str, count: int, canary: Path) -> Iterator[tuple[bytes, bool]]:
    rng = random.Random(f"{SEED}-{kind}")
    for _ in range(count):
        yield CAMPAIGN[kind](rng, canary)


def attack(kind: str, count: int, canary: Path) -> None:
    """Feed ``count`` inputs of ``kind`` to the unpickler under the per-input budget."""
    outcomes: list[str] = []

    def load(data: bytes) -> None:
        try:
            load_model_pickle(data, "red team")
        except ModelstoreError:
            outcomes.append("refused")
            raise
        outcomes.append("loaded")

    for data, must_refuse in inputs(kind, count, canary):
        within_budget(load, data)
        assert not canary.exists(), f"{kind}: the canary was created"
        if must_refuse:
            assert outcomes[-1] == "refused", f"{kind}: a hostile pickle loaded"


@pytest.mark.parametrize("kind", ["nested text", "BUILD", "huge numbers"])
def test_redteam_quick(kind, tmp_path):
    attack(kind, 4, tmp_path / "canary")


@pytest.mark.slow
@pytest.mark.parametrize("kind", sorted(CAMPAIGN))
def test_redteam_campaign(kind, tmp_path):
    attack(kind, 300, tmp_path / "canary")


def test_the_generators_make_what_they_claim(tmp_path):
    """The campaign's inputs are well-formed where they should be: without the hostile part a
    generated pickle loads, so a refusal in the campaign comes from the hostile part."""
    canary = tmp_path / "canary"
    assert load_model_pickle(model_pickle())["intensity_expr"] == sp.Symbol("x")
    rng = random.Random(SEED)
    clean = nest(integer(1), rng, 50)
    assert pickle.loads(clean + b".") is not None
    assert not canary.exists()
