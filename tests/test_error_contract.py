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
