"""Evaluator backends and the one place that chooses between them."""

from __future__ import annotations

import importlib.util
import warnings
from typing import TYPE_CHECKING

from modelstore.backends.base import Evaluator
from modelstore.errors import BackendUnavailableError, InvalidNameError, UntrustedCodeError
from modelstore.suggest import did_you_mean

if TYPE_CHECKING:
    from modelstore.model import PublishedModel

__all__ = ["BACKENDS", "Evaluator", "available_backends", "create_evaluator"]

BACKENDS = ("native", "jax", "numpy")


def _installed(*modules: str) -> bool:
    return all(importlib.util.find_spec(name) is not None for name in modules)


def available_backends(model: PublishedModel) -> list[str]:
    """Backends that can evaluate ``model`` here, fastest first (without building anything).

    JAX and numpy run a version's array program (1.3.0 on) with nothing but jax or numpy;
    older versions need tensorwaves and sympy to lambdify their expressions. A registry not
    trusted to run code offers only the data-only path: JAX and numpy lambdified from the
    srepr files (1.3.0 on), never its C, pickle or array program.

    Raises:
        IntegrityError: the registry's index fails its trust checks.
    """
    names: list[str] = []
    trusted = model.registry.code_trust() is not None
    if not trusted and not model.manifest.has_file("kinematics-srepr"):
        return names
    if trusted and model.manifest.has_file("native-source"):
        from modelstore._native.compiler import compiler_available

        if compiler_available():
            names.append("native")
    legacy: tuple[str, ...] = ()
    if not trusted or not model.manifest.has_file("array-source"):
        legacy = ("tensorwaves", "sympy")
    if _installed("jax", *legacy):
        names.append("jax")
    if _installed("numpy", *legacy):
        names.append("numpy")
    return names


def create_evaluator(model: PublishedModel, backend: str) -> Evaluator:
    """Return an evaluator of ``model``; ``auto`` takes the fastest one that works here.

    A registry not trusted to run code (``Registry.code_trust``) never has its C, pickle or
    array program used: ``native`` is refused, and JAX and numpy lambdify the version's srepr
    files instead (1.3.0 on; one warning says so and how to trust the registry).

    Raises:
        InvalidNameError: ``backend`` is not one of auto, native, jax, numpy.
        BackendUnavailableError: the backend cannot run here (the message names what is
            missing: a C compiler, a package, the version's C source).
        UntrustedCodeError: the backend would run code of a registry not trusted to run code.
        IntegrityError: a file the backend needs fails verification.
    """
    if backend == "auto":
        return _create_auto(model)
    if backend not in BACKENDS:
        hint = did_you_mean(str(backend), ("auto", *BACKENDS))
        msg = f"unknown backend {backend!r}{hint} (choose one of auto, {', '.join(BACKENDS)})"
        raise InvalidNameError(msg)
    if backend == "native":
        if not model.manifest.has_file("native-source"):
            msg = f"{model.ref} has no C source for the native backend (published from 1.1.0 on)"
            raise BackendUnavailableError(msg)
        from modelstore._native.evaluator import NativeEvaluator

        return NativeEvaluator.for_model(model)
    trusted = model.registry.code_trust() is not None
    if not trusted and model.manifest.has_file("kinematics-srepr"):
        return _data_only(model, backend)
    if model.manifest.has_file("array-source"):
        from modelstore.backends._array import ArrayProgramEvaluator

        return ArrayProgramEvaluator(model, backend)
    from modelstore.backends._tensorwaves import TensorwavesEvaluator

    return TensorwavesEvaluator(model.load_forms(), backend)


def _data_only(model: PublishedModel, backend: str) -> Evaluator:
    """The srepr files lambdified here: nothing of the registry's runs as code."""
    from modelstore.backends._tensorwaves import TensorwavesEvaluator

    evaluator = TensorwavesEvaluator(model.load_forms("srepr"), backend, data_only=True)
    warnings.warn(
        f"{model.ref}: {model.registry.location} is not trusted to run code, so its C source and"
        f" array program are not used; evaluating its srepr text with {backend} instead (slower)."
        " To use them, name it trusted (modelstore --trust, MODELSTORE_TRUSTED_REGISTRIES) or"
        " sign it with a key you trust",
        stacklevel=4,
    )
    return evaluator


def _create_auto(model: PublishedModel) -> Evaluator:
    if model.registry.code_trust() is None and not model.manifest.has_file("kinematics-srepr"):
        what = f"{model.ref}'s pickle and C source (before 1.3.0 there is no data-only route)"
        model.registry.require_code_trust(what)
    reasons = []
    for name in BACKENDS:
        try:
            evaluator = create_evaluator(model, name)
        except UntrustedCodeError as exc:
            if name == "native" and model.manifest.has_file("kinematics-srepr"):
                continue  # the data-only evaluator that follows says why, in one warning
            reasons.append(f"{name}: {exc}")
            continue
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
