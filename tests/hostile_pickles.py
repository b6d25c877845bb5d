"""Hand-assembled pickles for attacking the model unpickler.

``pickle.dumps`` cannot write what an attacker writes (10,000 nested tuples exceed its
recursion limit; it never emits INST, OBJ or a BUILD it was not asked for), so these helpers
assemble opcodes directly. Each returns a fragment of a pickle body (bytes that leave one
object on the stack); :func:`model_pickle` wraps fragments into a whole model pickle.
"""

from __future__ import annotations

import struct
from pathlib import Path

from modelstore.format.unpickle import ALLOWED_GLOBALS

SYMPY = {name: module for module, name in ALLOWED_GLOBALS if module.startswith("sympy")}

MARK, STOP, POP = b"(", b".", b"0"
TUPLE, TUPLE1, TUPLE2 = b"t", b"\x85", b"\x86"
REDUCE, NEWOBJ, BUILD = b"R", b"\x81", b"b"
EMPTY_DICT, EMPTY_LIST, SETITEM, SETITEMS, APPEND = b"}", b"]", b"s", b"u", b"a"


def canary_code(canary: Path) -> str:
    """Python that creates ``canary``: what sympify would eval if handed it as text."""
    return f"__import__('pathlib').Path({str(canary)!r}).touch()"


def text(value: str) -> bytes:
    data = value.encode("utf-8", "surrogatepass")
    return b"X" + struct.pack("<I", len(data)) + data


def integer(value: int) -> bytes:
    if -(2**31) <= value < 2**31:
        return b"J" + struct.pack("<i", value)
    data = value.to_bytes((value.bit_length() + 8) // 8, "little", signed=True)
    return b"\x8b" + struct.pack("<I", len(data)) + data  # LONG4


def real(value: float) -> bytes:
    return b"G" + struct.pack(">d", value)


def glob(module: str, name: str) -> bytes:
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def sympy_class(name: str) -> bytes:
    return glob(SYMPY[name], name)


def tup(*items: bytes) -> bytes:
    return MARK + b"".join(items) + TUPLE


def call(func: bytes, *args: bytes) -> bytes:
    """``func(*args)`` by REDUCE."""
    return func + tup(*args) + REDUCE


def new(cls: bytes, *args: bytes) -> bytes:
    """``cls.__new__(cls, *args)`` by NEWOBJ (how sympy objects are pickled)."""
    return cls + tup(*args) + NEWOBJ


def new_ex(cls: bytes, args: bytes, kwargs: bytes) -> bytes:
    """``cls.__new__(cls, *args, **kwargs)`` by NEWOBJ_EX (how sympy pickles a ``Float``)."""
    return cls + args + kwargs + b"\x92"


def sympy(name: str, *args: bytes) -> bytes:
    return call(sympy_class(name), *args)


def symbol(name: str) -> bytes:
    return sympy("Symbol", text(name))


def put(index: int) -> bytes:
    return b"r" + struct.pack("<I", index)  # LONG_BINPUT


def get(index: int) -> bytes:
    return b"j" + struct.pack("<I", index)  # LONG_BINGET


def dict_of(*pairs: tuple[bytes, bytes]) -> bytes:
    return EMPTY_DICT + MARK + b"".join(k + v for k, v in pairs) + SETITEMS


def nested(leaf: bytes, depth: int, kind: str) -> bytes:
    """``leaf`` inside ``depth`` containers of one kind: "tuple", "list" or "dict" (as a value)."""
    if kind == "tuple":
        return leaf + TUPLE1 * depth
    if kind == "list":
        return EMPTY_LIST * depth + leaf + APPEND * depth
    if kind == "dict":
        return (EMPTY_DICT + integer(0)) * depth + leaf + SETITEM * depth
    raise ValueError(kind)


def shared_tuples(levels: int, start: int = 100) -> bytes:
    """A tuple of ``levels`` levels, each ``(t, t)`` of the one below: 2**levels leaves."""
    body = integer(1) + put(start) + POP
    for k in range(levels):
        body += get(start + k) + get(start + k) + TUPLE2 + put(start + k + 1) + POP
    return body + get(start + levels)


def model_pickle(intensity: bytes | None = None, **forms: bytes) -> bytes:
    """A whole model pickle: ``intensity`` as intensity_expr, valid forms for the other keys.

    ``forms`` replaces or adds keys (fragments); ``intensity`` defaults to the symbol x.
    """
    x, s3 = symbol("x"), symbol("sigma3")
    entries = {
        "intensity_expr": intensity if intensity is not None else x,
        "variables": dict_of((symbol("theta"), sympy("cos", x))),
        "parameter_defaults": dict_of((x, real(1.0))),
        "sigma3": dict_of((s3, sympy("Add", x, sympy("Integer", integer(1))))),
    }
    entries.update(forms)
    body = dict_of(*((text(key), value) for key, value in entries.items()))
    return b"\x80\x04" + body + STOP
