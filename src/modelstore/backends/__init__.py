"""Evaluator backends and the one place that chooses between them."""

from __future__ import annotations

import importlib.util
import warnings
from typing import TYPE_CHECKING

from modelstore.backends.base import Evaluator
from modelstore.errors import BackendUnavailableError, InvalidNameError

if TYPE_CHECKING:
    from modelstore.model import PublishedModel

__all__ = ["BACKENDS", "Evaluator", "available_backends", "create_evaluator"]

BACKENDS = ("native", "jax", "numpy")


def _installed(*modules: str) -> bool:
    return all(importlib.util.find_spec(name) is not None for name in modules)


def available_backends(model: PublishedModel) -> list[str]:
    """Backends that can evaluate ``model`` here, fastest first (without building anything).

    JAX and numpy run a version's array program (1.3.0 on) with nothing but jax or numpy;
    older versions need tensorwaves and sympy to lambdify their expressions.

    Never raises.
    """
    names = []
    if model.manifest.has_file("native-source"):
        from modelstore.backends._native.compiler import compiler_available

        if compiler_available():
            names.append("native")
    legacy = () if model.manifest.has_file("array-source") else ("tensorwaves", "sympy")
    if _installed("jax", *legacy):
        names.append("jax")
    if _installed("numpy", *legacy):
        names.append("numpy")
    return names


def create_evaluator(model: PublishedModel, backend: str) -> Evaluator:
    """Return an evaluator of ``model``; ``auto`` takes the fastest one that works here.

    Raises:
        InvalidNameError: ``backend`` is not one of auto, native, jax, numpy.
        BackendUnavailableError: the backend cannot run here (the message names what is
            missing: a C compiler, a package, the version's C source).
        IntegrityError: a file the backend needs fails verification.
    """
    if backend == "auto":
        return _create_auto(model)
    if backend not in BACKENDS:
        msg = f"unknown backend {backend!r}: choose one of auto, {', '.join(BACKENDS)}"
        raise InvalidNameError(msg)
    if backend == "native":
        if not model.manifest.has_file("native-source"):
            msg = f"{model.ref} has no C source for the native backend (published from 1.1.0 on)"
            raise BackendUnavailableError(msg)
        from modelstore.backends._native.evaluator import NativeEvaluator

        return NativeEvaluator.for_model(model)
    if model.manifest.has_file("array-source"):
        from modelstore.backends._array import ArrayProgramEvaluator

        return ArrayProgramEvaluator(model, backend)
    from modelstore.backends._tensorwaves import TensorwavesEvaluator

    return TensorwavesEvaluator(model.load_forms(), backend)


def _create_auto(model: PublishedModel) -> Evaluator:
    reasons = []
    for name in BACKENDS:
        try:
            evaluator = create_evaluator(model, name)
        except BackendUnavailableError as exc:
            reasons.append(f"{name}: {exc}")
            continue
        if reasons and model.manifest.has_file("native-source"):
            label = {"jax": "JAX", "numpy": "numpy"}[name]
            warnings.warn(
                f"{model.ref}: native backend unavailable, falling back to {label}: "
                + "; ".join(reasons),
                stacklevel=3,
            )
        return evaluator
    msg = f"{model.ref}: no evaluator backend can run here (" + "; ".join(reasons) + ")"
    raise BackendUnavailableError(msg)
