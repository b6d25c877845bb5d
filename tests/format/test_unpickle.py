"""Threat 13: model pickles are read through an allow-list; a re-hashed payload never runs.

Threat 21: an allow-listed class is never handed text at any depth, BUILD cannot set an admitted
object's slots, only allow-listed globals are called, hashing cannot crash or hang, nothing is
recomputed, and the forms' shape is checked (issue 18, findings 1, 2 and 8c).
"""

from __future__ import annotations

import copyreg
import hashlib
import os
import pickle
import re
import subprocess
import sys
from pathlib import Path

import pytest
import sympy as sp
from hostile_pickles import (
    APPEND,
    BUILD,
    MARK,
    POP,
    SETITEMS,
    call,
    canary_code,
    dict_of,
    get,
    glob,
    integer,
    model_pickle,
    nested,
    new,
    new_ex,
    put,
    real,
    symbol,
    sympy,
    sympy_class,
    text,
    tup,
)
from registry_helpers import republish

import modelstore
from modelstore import Registry, UnsafePickleError, UntrustedCodeError, published_model
from modelstore.format.unpickle import ALLOWED_GLOBALS, load_model_pickle


class Canary:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


class Reduces:
    """Pickles as ``callable(*args)``: lets a test write any call into a pickle."""

    def __init__(self, callable_, *args):
        self.callable, self.args = callable_, args

    def __reduce__(self):
        return (self.callable, self.args)


class WithState:
    """Pickles as ``obj``'s class called with its pickled arguments, then BUILD ``state``."""

    def __init__(self, obj, state):
        self.obj, self.state = obj, state

    def __reduce_ex__(self, protocol):
        obj = self.obj
        if hasattr(obj, "__getnewargs_ex__"):  # Float: NEWOBJ_EX, with its precision=53
            args, kwargs = obj.__getnewargs_ex__()
            return (copyreg.__newobj_ex__, (type(obj), args, kwargs), self.state)
        return (type(obj), obj.__getnewargs__(), self.state)


def forms_pickle(**changes):
    x, s3 = sp.Symbol("x"), sp.Symbol("sigma3")
    forms = {
        "intensity_expr": x,
        "variables": {sp.Symbol("theta"): sp.acos(x)},
        "parameter_defaults": {x: 1.0},
        "sigma3": {s3: 1 - x},
    }
    forms.update(changes)
    return pickle.dumps(forms, protocol=5)


def sha256(text_: str) -> str:
    return "sha256:" + hashlib.sha256(text_.encode("utf-8")).hexdigest()


def check_published_pickle(embedded, ref, *, digests):
    """The pickle of ``ref`` loads and gives the published forms.

    Always: the parameters and their values are the manifest's, and (1.3.0 on) the variables,
    σ3 and parameter order print to the published ``kinematics-srepr``. With ``digests``
    (slow: sympy's srepr of a whole intensity takes seconds) the intensity prints to the
    published ``intensity-srepr`` and (1.4.0 on) the amplitudes and polarimetry forms to the
    published ``polarimetry-srepr``, byte for byte.
    """
    from modelstore.format.forms import kinematics_srepr
    from modelstore.format.polarimetry_forms import polarimetry_srepr

    manifest = embedded.manifest(ref)
    forms = load_model_pickle(embedded.read_file(manifest, "expressions"), ref)
    defaults = forms["parameter_defaults"]
    assert type(defaults) is dict
    assert all(type(v) in (int, float, complex) for v in defaults.values())
    assert {str(s): v for s, v in defaults.items()} == {
        p.name: p.value for p in manifest.parameters
    }
    names = [p.name for p in manifest.parameters]
    if manifest.has_file("kinematics-srepr"):
        kinematics = kinematics_srepr(forms, names)
        assert sha256(kinematics) == manifest.file("kinematics-srepr").digest
    if digests:
        intensity = sp.srepr(forms["intensity_expr"])
        assert sha256(intensity) == manifest.file("intensity-srepr").digest
        if manifest.has_file("polarimetry-srepr"):
            polarimetry = polarimetry_srepr(forms)
            assert sha256(polarimetry) == manifest.file("polarimetry-srepr").digest
    return forms


# each published form of pickle: ParameterValues (1.0.0-1.2.0), plain dict (1.3.0),
# polarimetry keys (1.4.0), and the largest pickle (ls-couplings 1.4.0)
HANDFUL = ["default@1.0.0", "default@1.2.0", "default@1.3.0", "default@1.4.0", "ls-couplings@1.4.0"]


@pytest.mark.parametrize("ref", HANDFUL)
def test_published_pickles_load_through_the_allow_list(embedded, ref):
    forms = check_published_pickle(embedded, ref, digests=False)
    if ref.endswith("1.4.0"):
        assert {"amplitudes", "polarimetry"} <= forms.keys()


@pytest.mark.slow
def test_every_published_pickle_gives_the_published_forms(embedded):
    """All 18 models x 5 versions, each printed back to its published srepr files (minutes)."""
    refs = [
        f"{model_id}@{version}"
        for model_id, entry in embedded.index().models.items()
        for version in entry.versions
    ]
    assert len(refs) == 90
    for ref in refs:
        check_published_pickle(embedded, ref, digests=True)


def test_pickle_and_srepr_give_the_same_expression(embedded):
    model = published_model("default@1.0.0", registry=embedded)
    forms = model.load_forms()
    assert forms["intensity_expr"] == model.expression
    assert hash(forms["intensity_expr"]) == hash(model.expression)


def test_latest_pickles_hold_only_sympy_and_builtins(embedded):
    for model_id in embedded.index().models:
        model = published_model(model_id, registry=embedded)
        data = embedded.read_file(model.manifest, "expressions")
        assert b"ampform" not in data
        # 1.4.0 has a forms key "polarimetry" (a str); no global of the upstream package
        modules = _pickled_modules(data)
        assert "sympy" in modules and modules <= {"sympy", "builtins"}, modules


def _pickled_modules(data: bytes) -> set[str]:
    """Top-level packages of the globals a pickle references (recorded by the allow-list loader)."""
    from modelstore.format import unpickle

    modules: set[str] = set()
    original = unpickle.ALLOWED_GLOBALS

    class Recording(frozenset):
        def __contains__(self, key: object) -> bool:
            modules.add(key[0].partition(".")[0])  # type: ignore[index]
            return key in original

    unpickle.ALLOWED_GLOBALS = Recording(original)  # each load resolves its globals afresh
    try:
        unpickle.load_model_pickle(data, "recorded")
    finally:
        unpickle.ALLOWED_GLOBALS = original
    return modules


@pytest.mark.parametrize(
    ("payload", "named"),
    [
        (Reduces(open, "CANARY", "w"), "io.open"),
        (Reduces(eval, "__import__('os')"), "builtins.eval"),
        (Reduces(sp.sympify, "x"), "sympify"),
        (Reduces(getattr, sp.Symbol("x"), "name"), "builtins.getattr"),
    ],
)
def test_globals_outside_the_allow_list_are_refused_by_name(payload, named, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UnsafePickleError, match=named.replace(".", r"\.")):
        load_model_pickle(forms_pickle(intensity_expr=payload))
    assert not (tmp_path / "CANARY").exists()


def test_allowed_classes_cannot_be_handed_text_to_sympify(tmp_path):
    # sympy's Indexed sympifies its indices, and sympify of a string runs eval
    canary = tmp_path / "canary"
    code = f"__import__('os').system('touch {canary}')"
    payload = Reduces(sp.Indexed, sp.IndexedBase("A"), code)
    with pytest.raises(UnsafePickleError, match="text"):
        load_model_pickle(forms_pickle(intensity_expr=payload))
    assert not canary.exists()


def test_huge_exact_powers_are_refused():
    payload = Reduces(sp.Pow, sp.Integer(10), sp.Integer(10**6))
    with pytest.raises(UnsafePickleError, match="too large"):
        load_model_pickle(forms_pickle(intensity_expr=payload))


def test_not_a_model_dict_and_garbage_are_refused():
    with pytest.raises(UnsafePickleError, match="not a model's dict"):
        load_model_pickle(pickle.dumps([1, 2, 3]))
    with pytest.raises(UnsafePickleError, match="not a readable model pickle"):
        load_model_pickle(b"\x80\x05garbage")


def test_allow_list_is_small_and_names_no_module_functions():
    modules = {module for module, _ in ALLOWED_GLOBALS}
    assert modules <= {"builtins", "ampform.helicity"} | {
        m for m in modules if m.startswith("sympy.")
    }
    assert ("builtins", "eval") not in ALLOWED_GLOBALS and (
        "builtins",
        "getattr",
    ) not in ALLOWED_GLOBALS
    for module, name in ALLOWED_GLOBALS:
        if module.startswith("sympy."):
            obj = getattr(__import__(module, fromlist=[name]), name)
            assert isinstance(obj, type) and issubclass(obj, sp.Basic), (module, name)


@pytest.mark.parametrize("version", ["1.2.0", "1.3.0"])
def test_rehashed_payload_pickle_in_an_unsigned_folder_never_runs(
    small_registry, tmp_path, version
):
    """The digests match (the folder is unsigned, so anyone can re-hash): its code is not used
    at all; and where the user names it trusted anyway, the allow-list refuses the payload."""
    canary = tmp_path / "canary"
    manifest, blobs = republish(
        small_registry, f"default@{version}", "9.0.0", expressions=pickle.dumps(Canary(str(canary)))
    )
    small_registry.publish(manifest, blobs)  # unsigned now: publish drops the stale signature
    untrusted = published_model("default@9.0.0", registry=small_registry.root, backend="numpy")
    with pytest.raises(UntrustedCodeError, match=r"model\.pkl: not run"):
        untrusted.load_forms()
    trusted = Registry(small_registry.root, trust_code=True)
    model = published_model("default@9.0.0", registry=trusted, backend="numpy")
    with pytest.raises(UnsafePickleError, match="io.open"):
        model.load_forms()
    if version == "1.2.0":  # its JAX and numpy evaluators are built from the pickle
        for backend in ("jax", "numpy"):
            with pytest.raises(UnsafePickleError):
                published_model("default@9.0.0", registry=trusted, backend=backend).intensity(
                    1.0, 3.0
                )
    assert not canary.exists()


# ---- threat 21: what an admitted class receives, BUILD, opcodes, hashing, shape ----


@pytest.mark.parametrize("depth", [5, 20, 10_000])
@pytest.mark.parametrize("kind", ["tuple", "list", "dict"])
@pytest.mark.parametrize(
    "cls", ["Tuple", "IndexedBase", "Add", "Indexed", "ExprCondPair", "StrictLessThan"]
)
def test_text_at_any_depth_is_refused(tmp_path, cls, kind, depth):
    """The old walk stopped at depth 4: Tuple and Indexed sympified (eval'd) the text below.

    Tuple and IndexedBase take containers: the walk finds the text at any depth. Operations,
    functions and Indexed take no containers at all (as pickled, they never get any)."""
    canary = tmp_path / "canary"
    hidden = nested(text(canary_code(canary)), depth, kind)
    args = (sympy("IndexedBase", symbol("A")), hidden) if cls == "Indexed" else (hidden,)
    refused = {
        "Tuple": r"called with text \(sympy would eval it\)",
        "IndexedBase": r"called with text \(sympy would eval it\)",
        "Add": rf"Add called with a {kind} \(it takes expressions\)",
        "Indexed": r"Indexed called with a container",
        "ExprCondPair": rf"ExprCondPair called with a {kind} \(it takes sympy objects\)",
        "StrictLessThan": rf"StrictLessThan called with a {kind} \(it takes expressions\)",
    }[cls]
    with pytest.raises(UnsafePickleError, match=refused) as info:
        load_model_pickle(model_pickle(sympy(cls, *args)))
    assert "\n" not in str(info.value)
    assert not canary.exists()


def test_text_in_keyword_arguments_and_dict_keys_is_refused(tmp_path):
    canary = tmp_path / "canary"
    code = text(canary_code(canary))
    in_key = sympy("Tuple", nested(dict_of((code, integer(1))), 3, "list"))
    with pytest.raises(UnsafePickleError, match="called with text"):
        load_model_pickle(model_pickle(in_key))
    as_assumption = sympy_class("Symbol") + tup(text("x")) + dict_of((text("real"), code))
    with pytest.raises(UnsafePickleError, match="not True or False"):
        load_model_pickle(model_pickle(as_assumption + b"\x92"))  # NEWOBJ_EX
    assert not canary.exists()


def test_build_setting_a_tuples_args_to_text_is_refused_at_load(tmp_path):
    """Basic.__setstate__ sets any slot: _args would hold text that the next xreplace evals."""
    canary = tmp_path / "canary"
    tampered = new(sympy_class("Tuple"), sympy("Integer", integer(1)))
    state = dict_of((text("_args"), tup(text(canary_code(canary)))))
    with pytest.raises(UnsafePickleError, match=r"BUILD .* on a Tuple") as info:
        load_model_pickle(model_pickle(tampered + state + BUILD))
    assert "\n" not in str(info.value)
    assert not canary.exists()


def _examples():
    x, y = sp.symbols("x y")
    base = sp.IndexedBase("A")
    examples = {
        "Add": x + 1, "Mul": 2 * x, "Pow": x**2, "Half": sp.S.Half, "ImaginaryUnit": sp.I,
        "Float": sp.Float(0.25), "Integer": sp.Integer(7), "NegativeOne": sp.S.NegativeOne,
        "One": sp.S.One,
        "Rational": sp.Rational(1, 3), "Zero": sp.S.Zero, "Pi": sp.pi, "Exp1": sp.E,
        "NaN": sp.nan, "Infinity": sp.oo, "NegativeInfinity": -sp.oo,
        "Str": sp.core.symbol.Str("s"), "Symbol": x, "Tuple": sp.Tuple(x), "Dict": sp.Dict({x: 1}),
        "Max": sp.Max(x, y), "Min": sp.Min(x, y), "atan2": sp.atan2(y, x),
        "Indexed": base[x], "IndexedBase": base,
    }  # fmt: skip
    for name in ("Abs", "arg", "conjugate", "im", "re", "exp", "log", "acos", "asin", "atan"):
        examples[name] = getattr(sp, name)(x)
    for name in ("cos", "sin", "tan", "cosh", "sinh", "tanh"):
        examples[name] = getattr(sp, name)(x)
    # Piecewise (ampform's ComplexSqrt unfolded) and its conditions
    below = sp.StrictLessThan(x, 0)
    examples |= {
        "Piecewise": sp.Piecewise((sp.I * sp.sqrt(-x), below), (sp.sqrt(x), True)),
        "ExprCondPair": sp.functions.elementary.piecewise.ExprCondPair(x, below),
        "StrictLessThan": below, "LessThan": sp.LessThan(x, y),
        "StrictGreaterThan": sp.StrictGreaterThan(x, y), "GreaterThan": sp.GreaterThan(x, y),
        "Equality": sp.Eq(x, y), "Unequality": sp.Ne(x, y),
        "And": sp.And(below, x > y), "Or": sp.Or(below, x > y), "Not": sp.Not(sp.Eq(x, y)),
        "BooleanTrue": sp.true, "BooleanFalse": sp.false,
    }  # fmt: skip
    return examples


EXAMPLES = _examples()


def test_every_admitted_sympy_class_has_a_build_case():
    assert {name for module, name in ALLOWED_GLOBALS if module.startswith("sympy")} == set(EXAMPLES)


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_build_is_refused_on_every_admitted_sympy_class(name):
    obj = EXAMPLES[name]
    # a state that changes nothing (so the old code's global singletons stay intact): still refused
    tampered = WithState(obj, {"_args": obj.args})
    with pytest.raises(UnsafePickleError, match=rf"BUILD .* on a {type(obj).__name__}"):
        load_model_pickle(forms_pickle(intensity_expr=tampered))


def test_the_parameter_values_stand_in_still_takes_its_state(embedded):
    forms = load_model_pickle(embedded.read_file(embedded.manifest("default@1.0.0"), "expressions"))
    assert type(forms["parameter_defaults"]) is dict and len(forms["parameter_defaults"]) > 10


PARAMETER_VALUES = glob("ampform.helicity", "ParameterValues")


@pytest.mark.parametrize(
    ("body", "named"),
    [
        (MARK + text("x") + b"isympy.core.symbol\nSymbol\n", "INST"),
        (MARK + sympy_class("Symbol") + text("x") + b"o", "OBJ"),
        (b"\x82\x01", "EXT1"),
        (b"\x83\x01\x00", "EXT2"),
        (b"Pid\n", "PERSID"),
        (text("id") + b"Q", "BINPERSID"),
        (call(symbol("f"), text("1")), "REDUCE calls a Symbol"),
        (new(call(glob("builtins", "tuple"), tup()), text("x")), "NEWOBJ calls a tuple"),
        (call(sympy_class("Tuple"), b"N"), "called with an object of type NoneType"),
        (symbol("x") + text("y") + APPEND, "APPEND(S) on a Symbol"),
        (sympy("Integer", integer(2**70_000)), "exact number of 70001 bits"),
        # Integer(e) and Rational(e) print e into their error: a shared tree prints for ever
        (sympy("Integer", symbol("x")), "Integer called with something else than integers"),
        (sympy("Rational", integer(1), real(0.5)), "Rational called with something else than"),
        (sympy("exp", sympy("Tuple", symbol("x"))), "exp called with a Tuple (it takes expr"),
        (sympy("Add", symbol("x"), sympy("Str", text("s"))), "Add called with a Str (it takes"),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_opcodes_and_calls_a_model_pickle_never_needs_are_refused(body, named):
    with pytest.raises(UnsafePickleError, match=re.escape(named)) as info:
        load_model_pickle(model_pickle(body))
    assert "\n" not in str(info.value)


def test_the_parameter_values_stand_in_takes_no_items():
    """SETITEMS onto the dict subclass would bypass its __setstate__ check."""
    stuffed = new(PARAMETER_VALUES) + MARK + symbol("x") + text("1 + 1") + SETITEMS
    with pytest.raises(UnsafePickleError, match=r"SETITEM\(S\) on a ParameterValuesCompat"):
        load_model_pickle(model_pickle(parameter_defaults=stuffed))


_HASH_BOMBS = """
import sys
from hostile_pickles import dict_of, model_pickle, nested, integer, shared_tuples, symbol
from modelstore import UnsafePickleError
from modelstore.format.unpickle import load_model_pickle
for key in (nested(integer(1), 1_000_000, "tuple"), shared_tuples(200)):
    try:
        load_model_pickle(model_pickle(variables=dict_of((key, symbol("x")))))
    except UnsafePickleError as exc:
        print(exc)
"""


def test_keys_that_would_crash_or_hang_hashing_are_refused():
    """CPython hashes nested tuples recursively in C: 10**6 deep crashes the interpreter (the old
    code did so); 200 levels of (t, t) is a 2**200-leaf tree to hash. Run in a child process."""
    paths = [str(Path(modelstore.__file__).parents[1]), str(Path(__file__).parents[1])]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}
    done = subprocess.run(
        [sys.executable, "-c", _HASH_BOMBS],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    first, second = done.stdout.splitlines()
    assert "a dict key holds containers nested more than 100 deep" in first
    assert "a dict key holds containers of more than 100000 items" in second


def test_operations_are_rebuilt_as_recorded_not_recomputed():
    """exp(n*log(10)) is 10**n to sympy: the old code computed it (for ever, for n = 10**12)."""
    n, ten = sympy("Integer", integer(10_000)), sympy("Integer", integer(10))
    forms = load_model_pickle(model_pickle(sympy("exp", sympy("Mul", n, sympy("log", ten)))))
    assert isinstance(forms["intensity_expr"], sp.exp)


X, Y = sp.symbols("x y")


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"variables": {X: 1}}, "variables has a value of type int"),
        ({"variables": [(X, Y)]}, "variables is a list"),
        ({"intensity_expr": [X]}, "intensity_expr is a list"),
        ({"intensity_expr": {"x": 1}}, "intensity_expr is a dict"),
        ({"parameter_defaults": {X: "1.0"}}, "parameter_defaults has a value of type str"),
        ({"parameter_defaults": {"x": 1.0}}, "parameter_defaults has a key of type str"),
        ({"parameter_defaults": {X: True}}, "parameter_defaults has a value of type bool"),
        ({"sigma3": {X: sp.S.One, Y: sp.S.One}}, "sigma3 has 2 entries"),
        ({"sigma3": {X: "x"}}, "sigma3 has a value of type str"),
        ({"amplitudes": {X: sp.S.One}}, "amplitudes has a key of type Symbol"),
        (
            {"polarimetry": {"intensity": "x + 1", "alpha_numerators": ()}},
            "polarimetry's intensity is a str",
        ),
        (
            {"polarimetry": {"intensity": X, "alpha_numerators": (X, "x", X)}},
            "polarimetry's alpha_numerators holds a str",
        ),
    ],
)
def test_forms_of_the_wrong_shape_are_refused_in_one_line(changes, named):
    key = named.split()[0].removesuffix("'s")
    with pytest.raises(UnsafePickleError, match=re.escape(named)) as info:
        load_model_pickle(forms_pickle(**changes), "m@1.0.0 pickle")
    message = str(info.value)
    assert message.startswith("m@1.0.0 pickle: ") and key in message and "\n" not in message


def test_missing_forms_are_named():
    x = sp.Symbol("x")
    with pytest.raises(UnsafePickleError, match="no variables, sigma3"):
        load_model_pickle(pickle.dumps({"intensity_expr": x, "parameter_defaults": {x: 1.0}}))


def test_sympy_numbers_as_defaults_become_plain_numbers():
    x, y = sp.symbols("x y")
    forms = load_model_pickle(
        forms_pickle(parameter_defaults={x: sp.Rational(1, 2), y: sp.Integer(3)})
    )
    assert forms["parameter_defaults"] == {x: 0.5, y: 3}
    assert [type(v) for v in forms["parameter_defaults"].values()] == [float, int]


def test_double_floats_load_as_sympy_pickles_them():
    x, y = sp.symbols("x y")
    values = (0.3, -2.5, 1e-310, 1.7e308, -(2.0**-1074))
    intensity = sp.Add(*(sp.Float(v) * x**k for k, v in enumerate(values)), evaluate=False)
    defaults = {x: sp.Float(0.1), y: sp.Float(0.0)}
    forms = load_model_pickle(forms_pickle(intensity_expr=intensity, parameter_defaults=defaults))
    assert forms["intensity_expr"] == intensity
    assert sorted(map(float, forms["intensity_expr"].atoms(sp.Float))) == sorted(values)
    assert forms["parameter_defaults"] == {x: 0.1, y: 0.0}
    assert {type(v) for v in forms["parameter_defaults"].values()} == {float}


def _float(args: bytes, kwargs: bytes = dict_of((text("precision"), integer(53)))) -> bytes:
    return model_pickle(new_ex(sympy_class("Float"), args, kwargs))


def _mpf(sign: int, mantissa: str, exponent: int, bits: int) -> bytes:
    return tup(tup(integer(sign), text(mantissa), integer(exponent), integer(bits)))


@pytest.mark.parametrize(
    ("payload", "named"),
    [
        (_float(_mpf(0, "1", 0, 1)), None),  # 1.0: the shape sympy writes, admitted
        (_float(tup(text("0.1"))), "one .* tuple"),  # text would be parsed (sympify)
        (_float(_mpf(0, "1", 0, 1), dict_of((text("precision"), integer(10**6)))), "precision"),
        (_float(_mpf(0, "1", 0, 1), dict_of()), "precision"),
        (_float(_mpf(0, "f" * 15, 0, 60)), "14 hexadecimal"),
        (_float(_mpf(0, "3", 0, 1)), "bit count"),  # 2 bits, said to be 1
        (_float(_mpf(0, "0x1", 0, 1)), "hexadecimal"),
        (_float(_mpf(0, "1", 10**6, 1)), "exponent"),
        (_float(_mpf(0, "1", 1024, 1)), "exponent"),  # 2**1024: beyond a double
        (_float(_mpf(0, "1", -(10**6), 1)), "exponent"),
        (_float(_mpf(2, "1", 0, 1)), "sign"),
        (_float(_mpf(0, "1", 0, 10**6)), "bit count"),
        (_float(tup(tup(integer(0), integer(1), integer(0), integer(1)))), "hexadecimal"),
    ],
)
def test_floats_other_than_doubles_are_refused(payload, named):
    if named is None:
        assert load_model_pickle(payload)["intensity_expr"] == sp.Float(1.0)
        return
    with pytest.raises(UnsafePickleError, match=rf"Float called with .*{named}"):
        load_model_pickle(payload)


def test_extra_keys_are_kept():
    forms = load_model_pickle(forms_pickle(comment="anything the publisher added"))
    assert forms["comment"] == "anything the publisher added"


def pow_tower(levels, first):
    """Pow(a, a) of Pow(a, a) ... from x, memo slots from ``first``: 2**levels leaves (sympy
    keeps x**x unevaluated, so old and new code alike build the shared tree)."""
    body = symbol("x") + put(first) + POP
    for k in range(levels):
        body += sympy("Pow", get(first + k), get(first + k)) + put(first + k + 1) + POP
    return body


def test_twin_subexpressions_become_one_object():
    """Built twice (sympy's constructor cache evicted in between), equal subexpressions are
    one object: comparing twin copies of a shared tree is exponential (e.g. as dict keys)."""
    evict = b"".join(sympy("Pow", symbol("x"), integer(k)) + POP for k in range(2, 1_500))
    body = pow_tower(12, 100) + evict + pow_tower(12, 200)
    variables = dict_of((symbol("a"), get(112)), (symbol("b"), get(212)))
    forms = load_model_pickle(model_pickle(variables=body + variables))
    a, b = forms["variables"][sp.Symbol("a")], forms["variables"][sp.Symbol("b")]
    assert a is b


def test_trees_of_shared_subexpressions_are_bounded():
    """40 levels of Pow(a, a) is a 2**40-leaf tree in a 1 KB pickle: every printer, lambdify
    or substitution would walk it for ever."""
    with pytest.raises(UnsafePickleError, match="builds a tree of more than 4000000 nodes"):
        load_model_pickle(model_pickle(pow_tower(40, 100) + get(140)))


def test_constructors_that_walk_their_arguments_have_a_budget():
    """Max, Min and Dict sort their arguments by walking every node of their trees."""
    tower = pow_tower(19, 100) + get(119)  # 2**20 - 1 nodes, under the tree limit
    with pytest.raises(UnsafePickleError, match="Max would walk more than 1000000 tree nodes"):
        load_model_pickle(model_pickle(sympy("Max", tower, symbol("y"))))
    pairs = dict_of((symbol("a"), integer(1)))
    with pytest.raises(UnsafePickleError, match="Dict called with a container"):
        load_model_pickle(model_pickle(variables=sympy("Dict", pairs)))
