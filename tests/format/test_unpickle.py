"""Threat 13: model pickles are read through an allow-list; a re-hashed payload never runs."""

from __future__ import annotations

import pickle

import pytest
import sympy as sp
from registry_helpers import republish

from modelstore import UnsafePickleError, published_model
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


def forms_pickle(**changes):
    x = sp.Symbol("x")
    forms = {"intensity_expr": x, "variables": {}, "parameter_defaults": {x: 1.0}, "sigma3": {}}
    forms.update(changes)
    return pickle.dumps(forms, protocol=5)


def check_published_pickles(embedded, model_ids):
    seen = set()
    for model_id in model_ids:
        for version in embedded.index().models[model_id].versions:
            manifest = embedded.manifest(f"{model_id}@{version}")
            digest = manifest.file("expressions").digest
            if digest in seen:
                continue
            seen.add(digest)
            forms = load_model_pickle(embedded.read_file(manifest, "expressions"))
            assert type(forms["parameter_defaults"]) is dict
            assert {p.name for p in manifest.parameters} == {
                str(s) for s in forms["parameter_defaults"]
            }
            assert all(
                type(v) in (int, float, complex) for v in forms["parameter_defaults"].values()
            )
    return seen


def test_default_pickles_load_through_the_allow_list(embedded):
    # 1.0.0-1.2.0 hold ampform's ParameterValues, 1.3.0 a plain dict
    assert len(check_published_pickles(embedded, ["default"])) >= 2


@pytest.mark.slow
def test_every_published_pickle_loads_through_the_allow_list(embedded):
    # unpickling evaluates sympy constructors (Abs): about 5 s per distinct pickle
    assert len(check_published_pickles(embedded, embedded.index().models)) > 18


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
    """The digests match (the folder is unsigned, so anyone can re-hash): the allow-list refuses."""
    canary = tmp_path / "canary"
    manifest, blobs = republish(
        small_registry, f"default@{version}", "9.0.0", expressions=pickle.dumps(Canary(str(canary)))
    )
    small_registry.publish(manifest, blobs)
    model = published_model("default@9.0.0", registry=small_registry, backend="numpy")
    with pytest.raises(UnsafePickleError, match="io.open"):
        model.load_forms()
    if version == "1.2.0":  # its JAX and numpy evaluators are built from the pickle
        for backend in ("jax", "numpy"):
            with pytest.raises(UnsafePickleError):
                published_model(
                    "default@9.0.0", registry=small_registry, backend=backend
                ).intensity(1.0, 3.0)
    assert not canary.exists()
