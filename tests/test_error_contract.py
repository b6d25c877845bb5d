"""The error contract: what users meet is a ModelstoreError (also the matching built-in), and
the public API says what it raises."""

from __future__ import annotations

import ast
import builtins
import inspect
from pathlib import Path

import pytest

import modelstore
from modelstore import errors

PACKAGE = Path(modelstore.__file__).resolve().parent
BUILTIN_ERRORS = {
    name
    for name, obj in vars(builtins).items()
    if isinstance(obj, type) and issubclass(obj, BaseException)
}


@pytest.mark.parametrize("name", errors.__all__)
def test_every_error_is_a_modelstore_error_and_a_builtin(name):
    cls = getattr(errors, name)
    assert issubclass(cls, errors.ModelstoreError)
    if cls is not errors.ModelstoreError:
        assert any(base.__module__ == "builtins" and base is not Exception for base in cls.__mro__)


def test_no_bare_builtin_error_is_raised():
    """``raise ValueError(...)`` and the like only where caught and converted within the module."""
    allowed = {
        ("format/jsondoc.py", "ValueError"),  # json.loads hooks; load_document converts them
        ("testing/store.py", "NotImplementedError"),  # abstract helpers of the shipped suite
    }
    found = []
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE).as_posix()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call):
                func = node.exc.func
                builtin = isinstance(func, ast.Name) and func.id in BUILTIN_ERRORS
                if builtin and (rel, func.id) not in allowed:
                    found.append(f"{rel}:{node.lineno} raises {func.id}")
    assert found == []


def _public_callables():
    for name in modelstore.__all__:
        obj = getattr(modelstore, name)
        if inspect.isfunction(obj):
            yield name, obj
        elif inspect.isclass(obj) and not issubclass(obj, BaseException):
            for attr, member in vars(obj).items():
                if attr.startswith("_") and attr != "__call__":
                    continue
                func = member.__func__ if isinstance(member, classmethod | staticmethod) else member
                if inspect.isfunction(func):
                    yield f"{name}.{attr}", func


def test_the_public_api_documents_what_it_raises():
    undocumented = [
        name
        for name, func in _public_callables()
        if "Raises:" not in (func.__doc__ or "")
        and "never raises" not in (func.__doc__ or "").lower()
    ]
    assert undocumented == []


def _documented(doc: str) -> bool:
    return "Raises:" in doc or "never raises" in doc.lower()


def test_every_exported_function_documents_what_it_raises():
    """Every function and public method of every module's ``__all__`` (the test suite aside)."""
    undocumented = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if "testing" in path.relative_to(PACKAGE).parts:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        exported: set[str] = set()
        for node in tree.body:
            if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets
            ):
                exported = {e.value for e in node.value.elts if isinstance(e, ast.Constant)}
        for node in tree.body:
            if getattr(node, "name", None) not in exported:
                continue
            functions = [node] if isinstance(node, ast.FunctionDef) else []
            if isinstance(node, ast.ClassDef):
                functions = [
                    f
                    for f in node.body
                    if isinstance(f, ast.FunctionDef)
                    and (not f.name.startswith("_") or f.name == "__call__")
                    and not any(
                        isinstance(d, ast.Name) and d.id in ("property", "cached_property")
                        for d in f.decorator_list
                    )
                ]
            rel = path.relative_to(PACKAGE).as_posix()
            undocumented += [
                f"{rel}:{f.lineno} {f.name}"
                for f in functions
                if not _documented(ast.get_docstring(f) or "")
            ]
    assert undocumented == []
