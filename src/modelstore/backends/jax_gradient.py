"""Gradients of a version's intensity with respect to its parameters, by JAX, compiled quickly.

``jax.jit(jax.grad(...))`` of the whole array program of ``default@1.4.0`` took 492 s to
compile (reverse mode; forward mode 79 s, issue 19): XLA's compile time grows faster than the
program. Here the published program is cut into segments of about a thousand operations
(:mod:`modelstore.format.arraysplit`, at load time: the published file is unchanged) and each
segment's forward and reverse pass is compiled on its own, so compiling grows with the
program's size only. The reverse pass runs segment by segment from the last, recomputing each
segment's forward pass from its saved inputs (checkpoints at the segment boundaries), so the
memory held is the segments' inputs for one chunk of events.

The values are the array program's (the same statements in the same order). The gradient is
that of ``sum_i w_i I(σ1_i, σ2_i)`` (``w`` = 1 by default) over the events where the intensity
is defined (NaN events, outside the Dalitz region, add nothing) with respect to the packed
parameters (:func:`modelstore.backends.base.pack_parameters`); :func:`jax_gradient` returns it
by name, a complex parameter's as ``d/d re + i d/d im``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from modelstore.backends.base import pack_parameters
from modelstore.errors import InvalidInputError
from modelstore.format.arraysplit import SEGMENT_NODES, Segment, split_array_program

if TYPE_CHECKING:
    from collections.abc import Mapping

    from modelstore.model import PublishedModel

__all__ = ["CHUNK", "FAST_COMPILE", "Gradient", "JaxGradient", "jax_gradient"]

CHUNK = 1 << 14
#: XLA options that trade run time for compile time (LLVM's expensive passes and backend
#: optimisation off): ``jax.jit(jax.grad(...))`` of default@1.4.0's whole array program compiles
#: in 37 s instead of 522 s, each call 1.4x (segments) to 5x (``jacfwd``) slower
FAST_COMPILE: dict[str, Any] = {
    "xla_backend_optimization_level": 0,
    "xla_llvm_disable_expensive_passes": True,
}
"""Events per compiled call (the last chunk is padded): the saved segment inputs of one chunk
are the memory the reverse pass holds (``default@1.4.0``: about 800 arrays, 100 MB)."""


@dataclass(frozen=True)
class Gradient:
    """``intensity`` at each event, and the gradient of ``sum(w * intensity)``.

    ``packed`` is in the packed order (a complex parameter's two slots: d/d re, d/d im);
    ``by_name`` maps each parameter to a float, or to ``d/d re + 1j d/d im`` if complex.
    """

    intensity: np.ndarray
    packed: np.ndarray
    by_name: dict[str, float | complex]


class JaxGradient:
    """The compiled segments of one version's array program, ready to differentiate.

    Construct once per model and call many times: the first call of a chunk size compiles.
    """

    def __init__(
        self,
        model: PublishedModel,
        *,
        nodes: int = SEGMENT_NODES,
        chunk: int = CHUNK,
        compiler_options: Mapping[str, Any] | None = None,
    ) -> None:
        """Read, check and segment the version's array program (nothing is compiled yet).

        ``compiler_options`` go to XLA with every segment (``jax.jit(...,
        compiler_options=...)``): `FAST_COMPILE` turns off LLVM's expensive passes, which
        compiles default@1.4.0's segments in 19 s instead of 23 s but runs each call 1.4x
        slower (``benchmarks/bench_jax_gradient.py``), so XLA's defaults are the default.

        Raises:
            BackendUnavailableError: jax is not installed.
            IntegrityError: the array program is not valid (the allow-list), or missing.
            InvalidInputError: ``nodes`` or ``chunk`` is not a positive number.
        """
        from modelstore.backends._array import _configure_jax

        if chunk < 1:
            msg = f"chunks of {chunk} events: expected at least 1"
            raise InvalidInputError(msg)
        self._jax = _configure_jax()
        source = model.registry.read_file(model.manifest, "array-source").decode("utf-8")
        self.segments, results = split_array_program(source, f"{model.ref} array program", nodes)
        (self._result,) = results
        self._parameters = model.manifest.parameters
        self._model = model
        self.chunk = chunk
        jit = functools.partial(self._jax.jit, compiler_options=dict(compiler_options or {}))
        self._forward = [jit(functools.partial(_run, s)) for s in self.segments]
        self._backward = [jit(functools.partial(_pullback, s)) for s in self.segments]

    def __call__(
        self,
        sigma1: Any,
        sigma2: Any,
        weights: Any = None,
        parameters: Mapping[str, Any] | None = None,
    ) -> Gradient:
        """The intensity at the events and the gradient of ``sum(weights * intensity)``.

        ``parameters`` overrides the version's values by name (as ``intensity`` takes them).

        Raises:
            InvalidInputError: inputs of unequal shapes, an unknown parameter or a value of the
                wrong kind.
        """
        s1 = np.ravel(np.asarray(sigma1, dtype=np.float64))
        s2 = np.ravel(np.asarray(sigma2, dtype=np.float64))
        w = np.ones_like(s1) if weights is None else np.ravel(np.asarray(weights, np.float64))
        if not s1.shape == s2.shape == w.shape:
            msg = "sigma1, sigma2 and the weights must have the same number of events"
            raise InvalidInputError(msg)
        values = self._model.parameter_values(parameters or {})
        par = pack_parameters(self._parameters, values)
        intensity = np.empty_like(s1)
        total = np.zeros_like(par)
        for start in range(0, s1.size, self.chunk):
            stop = min(start + self.chunk, s1.size)
            c1, c2 = (_padded(a[start:stop], self.chunk) for a in (s1, s2))
            weight = _padded(w[start:stop], self.chunk, fill=0.0)  # padding adds nothing
            values_, grad = self._chunk(c1, c2, weight, par)
            intensity[start:stop] = values_[: stop - start]
            total += grad
        return Gradient(intensity, total, _by_name(self._parameters, total))

    def _chunk(
        self, s1: np.ndarray, s2: np.ndarray, weight: np.ndarray, par: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        jnp = self._jax.numpy
        env, saved = self._forward_pass(s1, s2, par)
        intensity = np.asarray(env[self._result], dtype=np.float64)
        undefined = np.isnan(intensity)
        if undefined.any() and not undefined.all():
            # NaN events (outside the Dalitz region) would make every derivative NaN
            # (0 * NaN): differentiate at a defined event instead, with weight 0
            first = np.flatnonzero(~undefined)[0]
            s1, s2 = (np.where(undefined, a[first], a) for a in (s1, s2))
            weight = np.where(undefined, 0.0, weight)
            env, saved = self._forward_pass(s1, s2, par)
        shapes = {name: (np.shape(v), v.dtype) for name, v in env.items()}
        del env
        cotangents: dict[str, Any] = {self._result: jnp.asarray(weight)}
        grad = jnp.zeros_like(jnp.asarray(par))
        for k in range(len(self.segments) - 1, -1, -1):
            segment = self.segments[k]
            outgoing = tuple(
                cotangents.pop(name, None) if name in cotangents else jnp.zeros(*shapes[name])
                for name in segment.outputs
            )
            d_inputs, d_par = self._backward[k](saved[k], par, outgoing)
            saved[k] = ()
            grad = grad + d_par
            for name, d in zip(segment.inputs, d_inputs, strict=True):
                if name in ("sigma1", "sigma2"):
                    continue
                cotangents[name] = d if name not in cotangents else cotangents[name] + d
        return intensity, np.asarray(grad, dtype=np.float64)

    def _forward_pass(
        self, s1: np.ndarray, s2: np.ndarray, par: np.ndarray
    ) -> tuple[dict[str, Any], list[tuple[Any, ...]]]:
        """Every segment's outputs by name, and each segment's inputs (the checkpoints)."""
        jnp = self._jax.numpy
        env: dict[str, Any] = {"sigma1": jnp.asarray(s1), "sigma2": jnp.asarray(s2)}
        saved = []
        for segment, forward in zip(self.segments, self._forward, strict=True):
            inputs = tuple(env[name] for name in segment.inputs)
            saved.append(inputs)
            env.update(zip(segment.outputs, forward(inputs, par), strict=True))
        return env, saved


def _run(segment: Segment, inputs: tuple[Any, ...], par: Any) -> tuple[Any, ...]:
    import jax.numpy as jnp

    return segment.function(*inputs, par, jnp)


def _pullback(
    segment: Segment, inputs: tuple[Any, ...], par: Any, outgoing: tuple[Any, ...]
) -> tuple[tuple[Any, ...], Any]:
    import jax

    _, pull = jax.vjp(functools.partial(_run, segment), inputs, par)
    d_inputs, d_par = pull(outgoing)
    return d_inputs, d_par


def _padded(values: np.ndarray, size: int, fill: float | None = None) -> np.ndarray:
    if values.size == size:
        return values
    pad = values[0] if fill is None else fill
    return np.concatenate([values, np.full(size - values.size, pad)])


def _by_name(parameters: Any, packed: np.ndarray) -> dict[str, float | complex]:
    out: dict[str, float | complex] = {}
    slot = 0
    for p in parameters:
        if p.dtype == "complex128":
            out[p.name] = complex(packed[slot], packed[slot + 1])
            slot += 2
        else:
            out[p.name] = float(packed[slot])
            slot += 1
    return out


def jax_gradient(
    model: PublishedModel,
    sigma1: Any,
    sigma2: Any,
    weights: Any = None,
    **parameters: Any,
) -> Gradient:
    """The intensity at the events and the gradient of ``sum(weights * intensity)`` by JAX.

    A one-off call: it segments and compiles the version's array program each time (the
    compiled segments stay in JAX's caches for the process). Hold a :class:`JaxGradient` to
    call it many times. ``parameters`` override the version's values by name.

    Raises:
        BackendUnavailableError: jax is not installed.
        IntegrityError: the version's array program is invalid or missing.
        InvalidInputError: inputs of unequal shapes, an unknown parameter or a wrong value.
    """
    return JaxGradient(model)(sigma1, sigma2, weights, parameters)
