"""Gradients of the intensity with respect to chosen parameters, on every backend.

``value_and_gradient(model, σ1, σ2, wrt, overrides)`` returns the intensity and ∂I/∂p for the
parameters named in ``wrt``: one column per real (or int64) parameter, two per complex one
(∂I/∂Re p, then ∂I/∂Im p), in the order of ``wrt``. The model's backend decides how:

* ``native``: the derivative C unit (forward mode, :mod:`modelstore._native.gradient`); its
  value column is bit for bit what ``ms_evaluate`` writes;
* ``numpy``: the same differentiated code, printed as an array program
  (:mod:`modelstore._native.gradient_array`): exact derivatives, no finite differences;
* ``jax``: ``jax.jacfwd`` of the version's array program (published, or generated here from the
  srepr files for a registry not trusted to run code).

All three compute the derivatives of the same operations; they agree to rounding.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

import numpy as np

from modelstore.backends.base import chunk_as_float64, pack_parameters
from modelstore.errors import InvalidInputError

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from modelstore.model import PublishedModel

__all__ = ["column_labels", "value_and_gradient"]

_PROGRAMS: dict[tuple[str, str], Any] = {}
_LOCK = threading.Lock()


def column_labels(model: PublishedModel, wrt: Any) -> list[str]:
    """The name of each gradient column: ``p`` for a real parameter, ``p.re``/``p.im`` else.

    Raises:
        InvalidInputError: ``wrt`` is not a non-empty list of distinct parameter names.
    """
    from modelstore._native.gradient import gradient_columns

    parameters = model.manifest.parameters
    columns = gradient_columns(parameters, wrt)
    return [parameters[k].name + (f".{part}" if part else "") for k, part in columns]


def value_and_gradient(
    model: PublishedModel, sigma1: Any, sigma2: Any, wrt: Any, overrides: Mapping[str, Any]
) -> tuple[Any, np.ndarray]:
    """The intensity (as ``model.intensity``) and its gradient, shape ``(..., columns)``.

    Raises:
        InvalidInputError: a bad ``wrt``, an unknown parameter or unfit value, non-real σ
            values, or shapes that do not broadcast.
        BackendUnavailableError: the backend cannot run here.
        IntegrityError: a file or a cached unit fails verification.
    """
    from modelstore._native.gradient import gradient_columns

    values = model.parameter_values(overrides)
    columns = gradient_columns(model.manifest.parameters, wrt)
    s1, s2 = np.asarray(sigma1), np.asarray(sigma2)
    for name, arr in (("sigma1", s1), ("sigma2", s2)):
        if arr.dtype.kind not in "iuf":
            msg = f"{name} must be real numbers, got {arr.dtype} values"
            raise InvalidInputError(msg)
    try:
        b1, b2 = np.broadcast_arrays(s1, s2)
    except ValueError:
        msg = f"sigma1 and sigma2 do not broadcast: shapes {s1.shape} and {s2.shape}"
        raise InvalidInputError(msg) from None
    packed = pack_parameters(model.manifest.parameters, values)
    runner, chunk, pad = _runner(model, columns)
    n, k = b1.size, len(columns)
    value = np.empty(n, dtype=np.float64)
    grad = np.empty((n, k), dtype=np.float64)
    flat1, flat2 = b1.reshape(-1), b2.reshape(-1)
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        c1, c2 = chunk_as_float64(flat1, start, stop), chunk_as_float64(flat2, start, stop)
        if pad and n > chunk and stop - start < chunk:
            c1 = np.concatenate([c1, np.full(chunk - (stop - start), c1[0])])
            c2 = np.concatenate([c2, np.full(chunk - (stop - start), c2[0])])
        v, g = runner(c1, c2, packed)
        value[start:stop] = v[: stop - start]
        grad[start:stop] = g[: stop - start]
    shape = b1.shape
    intensity = float(value[0]) if shape == () else value.reshape(shape)
    return intensity, grad.reshape((*shape, k))


def _runner(model: PublishedModel, columns: Sequence[tuple[int, str]]) -> tuple[Any, int, bool]:
    """``(runner, chunk, pad)``: ``runner(s1, s2, packed) -> (I, grad (m, columns))``."""
    backend = model.backend
    k = len(columns)
    if backend == "native":
        from modelstore._native.gradient import native_gradient

        unit = native_gradient(model, columns)
        chunk = max(1024, min(1 << 18, (1 << 22) // (k + 1)))
        scratch = np.empty((k, chunk), dtype=np.float64)

        def native(s1: np.ndarray, s2: np.ndarray, packed: np.ndarray) -> Any:
            out = np.empty(s1.size, dtype=np.float64)
            unit(s1, s2, packed, out, scratch)
            return out, scratch[:, : s1.size].T

        return native, chunk, False
    if backend == "numpy":
        return _numpy_runner(model, columns), max(256, (1 << 20) // (k + 1)), False
    return _jax_runner(model, columns), 1 << 14, True


def _numpy_runner(model: PublishedModel, columns: Sequence[tuple[int, str]]) -> Any:
    from modelstore._native.generated import cached_text
    from modelstore._native.gradient import model_forms, unit_key
    from modelstore._native.gradient_array import (
        compile_gradient_program,
        gradient_array_source,
    )

    key = unit_key(model, columns, "py")
    with _LOCK:
        program = _PROGRAMS.get((key, "numpy"))
    if program is None:

        def generate() -> str:
            from modelstore._native.lowering import lower_model

            names = [p.name for p in model.manifest.parameters]
            return gradient_array_source(lower_model(model_forms(model), names), columns)

        text, _, _ = cached_text(key, generate)
        program = compile_gradient_program(text, f"{model.ref} gradient program")
        with _LOCK:
            _PROGRAMS[(key, "numpy")] = program

    def run(s1: np.ndarray, s2: np.ndarray, packed: np.ndarray) -> Any:
        with np.errstate(all="ignore"):
            results = program(s1, s2, packed, np)
        value = np.broadcast_to(np.asarray(results[0], dtype=np.float64), s1.shape)
        grad = np.stack(
            [np.broadcast_to(np.asarray(g, dtype=np.float64), s1.shape) for g in results[1:]],
            axis=1,
        )
        return value, grad

    return run


def _jax_runner(model: PublishedModel, columns: Sequence[tuple[int, str]]) -> Any:
    """One jitted ``jacfwd`` per model and columns, kept for the process (JIT takes minutes)."""
    from modelstore._native.gradient import unit_key

    key = (unit_key(model, columns, "jax"), "jax")
    with _LOCK:
        if key in _PROGRAMS:
            return _PROGRAMS[key]
    run = _make_jax_runner(model, columns)
    with _LOCK:
        return _PROGRAMS.setdefault(key, run)


def _make_jax_runner(model: PublishedModel, columns: Sequence[tuple[int, str]]) -> Any:
    from modelstore.backends._array import _configure_jax, x64

    jax = _configure_jax()
    import jax.numpy as jnp

    program = _array_program(model)
    slots = _slots(model, columns)
    lookup = {slot: j for j, slot in enumerate(slots)}

    @jax.jit
    def value_and_jacobian(s1: Any, s2: Any, par: Any) -> Any:
        def f(sub: Any) -> Any:
            out = program(s1, s2, _Slots(par, sub, lookup), jnp)
            return out, out

        jacobian, value = jax.jacfwd(f, has_aux=True)(par[np.asarray(slots)])
        return value, jacobian

    def run(s1: np.ndarray, s2: np.ndarray, packed: np.ndarray) -> Any:
        with x64(jax):  # float64 inside modelstore's own call only (backends/_array.py)
            value, jacobian = value_and_jacobian(s1, s2, packed)
        return np.asarray(value, dtype=np.float64), np.asarray(jacobian, dtype=np.float64)

    return run


class _Slots:
    """``par`` as the array program reads it (``par[k]``), the chosen slots from ``sub``.

    The other slots stay constants of the differentiation, so JAX carries tangents only
    through what depends on the chosen parameters (packing ``sub`` into ``par`` would give
    every parameter a tangent: about 20 times slower, and minutes more to compile).
    """

    def __init__(self, par: Any, sub: Any, lookup: dict[int, int]) -> None:
        self.par, self.sub, self.lookup = par, sub, lookup

    def __getitem__(self, k: int) -> Any:
        j = self.lookup.get(k)
        return self.par[k] if j is None else self.sub[j]


def _slots(model: PublishedModel, columns: Sequence[tuple[int, str]]) -> list[int]:
    """The packed ``par`` index of each column."""
    first, slot = [], 0
    for p in model.manifest.parameters:
        first.append(slot)
        slot += 2 if p.dtype == "complex128" else 1
    return [first[k] + (part == "im") for k, part in columns]


def _array_program(model: PublishedModel) -> Callable[..., Any]:
    """The version's array program if its registry may run code, else one generated here."""
    from modelstore.format.arraycode import compile_array_program

    if model.manifest.has_file("array-source") and model.registry.code_trust() is not None:
        source = model.registry.read_file(model.manifest, "array-source").decode("utf-8")
    else:
        from modelstore._native.generated import cached_text, generation_key
        from modelstore._native.gradient import model_forms, unit_key

        key = generation_key(["array", unit_key(model, [], "array")])

        def generate() -> str:
            from modelstore.format.arraycode import generate_array_source

            names = [p.name for p in model.manifest.parameters]
            return generate_array_source(model_forms(model), names)

        source, _, _ = cached_text(key, generate)
    return compile_array_program(source, f"{model.ref} array program")
