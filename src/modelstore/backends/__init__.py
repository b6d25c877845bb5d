"""Evaluator backends and the one place that chooses between them."""

from __future__ import annotations

import importlib.util
import warnings
from typing import TYPE_CHECKING

from modelstore.backends.base import Evaluator
from modelstore.errors import BackendUnavailableError, InvalidNameError, ModelstoreError

if TYPE_CHECKING:
    from modelstore.model import PublishedModel

__all__ = ["BACKENDS", "Evaluator", "available_backends", "create_evaluator"]

BACKENDS = ("native", "jax", "numpy")


def available_backends(model: PublishedModel) -> list[str]:
    """Backends that can evaluate ``model`` here, fastest first (without building anything)."""
    names = []
    if model.manifest.has_file("native-source"):
        from modelstore._native.compiler import compiler_available

        if compiler_available():
            names.append("native")
    if importlib.util.find_spec("jax") and importlib.util.find_spec("tensorwaves"):
        names.append("jax")
    if importlib.util.find_spec("tensorwaves"):
        names.append("numpy")
    return names


def create_evaluator(model: PublishedModel, backend: str) -> Evaluator:
    """Return an evaluator of ``model``; ``auto`` takes the fastest one that works here."""
    if backend == "auto":
        return _create_auto(model)
    if backend not in BACKENDS:
        msg = f"unknown backend {backend!r}: choose one of auto, {', '.join(BACKENDS)}"
        raise InvalidNameError(msg)
    if backend == "native":
        from modelstore._native.evaluator import NativeEvaluator

        return NativeEvaluator.for_model(model)
    from modelstore.backends._tensorwaves import TensorwavesEvaluator

    return TensorwavesEvaluator(model.load_forms(), backend)


def _create_auto(model: PublishedModel) -> Evaluator:
    if model.manifest.has_file("native-source"):
        try:
            return create_evaluator(model, "native")
        except BackendUnavailableError as exc:
            warnings.warn(f"native backend unavailable, falling back to JAX: {exc}", stacklevel=3)
    for name in ("jax", "numpy"):
        try:
            return create_evaluator(model, name)
        except BackendUnavailableError:
            continue
    msg = "no evaluator backend can run here: install jax and tensorwaves, or a C compiler"
    raise ModelstoreError(msg)
