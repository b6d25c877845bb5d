"""The unbinned negative log-likelihood of a published model, with its exact gradient.

For events ``x_i`` with weights ``w_i`` and normalization points ``y_j`` with weights ``v_j``
(phase-space points, or an acceptance-weighted MC sample)::

    NLL(p) = −Σ_i w_i log I(x_i; p) + (Σ_i w_i) log N(p),   N(p) = Σ_j v_j I(y_j; p) / Σ_j v_j

i.e. −Σ w log(I / N): the normalised density up to the constant log of the region's area (the
same definition as :class:`modelstore.fit.couplings.CouplingCache`; tensorwaves' ``UnbinnedNLL``
divides by the number of points instead of Σ v, a constant difference).

Normalization size. By default the points are ``modelstore.dalitz.rates.phase_space_points``
(quasi-random Halton points, seed ``seed``), ``n_norm = max(100 000, 100 × N_data)`` of them
(:func:`normalization_size`). With that many, the integration error on N is far below the
statistical error of the fit (at 100 × N_data plain random points the bias of a fitted
parameter would be at most about 1/10 of its error; the Halton points do better). A sample given
by the caller whose (Kish) effective size ``(Σ v)² / Σ v²`` is under the rule raises a
:class:`NormalizationWarning`.

Gradient. ``model.value_and_gradient`` on the data and normalization points in one pass:
exact forward-mode derivatives on every backend (native: generated C; numpy: the same code as an
array program; jax: ``jax.jacfwd``, compiled on first use: about 4 s for three parameters of
``default``, ``benchmarks/bench_jax_gradient.py``). No finite differences anywhere. A complex
parameter ``p`` has two coordinates, ``p.re`` and ``p.im``.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

import numpy as np
from tensorwaves.interface import Estimator

from modelstore.errors import InvalidInputError
from modelstore.fit.function import data_arrays

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from modelstore.model import PublishedModel

__all__ = [
    "MIN_NORMALIZATION",
    "PER_EVENT",
    "NormalizationWarning",
    "UnbinnedNLL",
    "free_parameters",
    "normalization_size",
    "parameter_labels",
]

MIN_NORMALIZATION = 100_000
PER_EVENT = 100


class NormalizationWarning(UserWarning):
    """The normalization sample is smaller than :func:`normalization_size` asks for."""


def normalization_size(n_events: int) -> int:
    """The normalization points a fit of ``n_events`` needs: ``max(100 000, 100 × n_events)``.

    Never raises.
    """
    return max(MIN_NORMALIZATION, PER_EVENT * int(n_events))


def free_parameters(model: PublishedModel, free: Any) -> list[str]:
    """The manifest names of ``free`` (names or ASCII aliases), in order.

    Raises:
        InvalidInputError: ``free`` is empty or not a list of names, an unknown name (with a
            did-you-mean), one named twice, or an integer parameter.
    """
    names = [free] if isinstance(free, str) else free
    try:
        names = list(names)
    except TypeError:
        names = []
    if not names or not all(isinstance(n, str) for n in names):
        msg = f"free must be a non-empty list of parameter names, not {free!r}"[:300]
        raise InvalidInputError(msg)
    resolved: list[str] = []
    for name in names:
        (full,) = model.parameter_overrides({name: None})
        if full in resolved:
            msg = f"free: parameter {full!r} is named twice"
            raise InvalidInputError(msg)
        resolved.append(full)
    spec = model._spec
    integers = [n for n in resolved if spec[n].dtype not in ("float64", "complex128")]
    if integers:
        msg = f"free: {integers[0]!r} is an integer parameter (a constant), it cannot be fitted"
        raise InvalidInputError(msg)
    return resolved


def parameter_labels(model: PublishedModel, names: Sequence[str]) -> list[str]:
    """One label per real coordinate: ``name`` for a real parameter, ``name.re``/``name.im``
    (the gradient's columns, :func:`modelstore.backends.gradient.column_labels`).

    Never raises for distinct names of the model.
    """
    from modelstore.backends.gradient import column_labels

    return column_labels(model, list(names))


def _weights(weights: Any, n: int, what: str) -> np.ndarray:
    if weights is None:
        return np.ones(n)
    w = np.ascontiguousarray(weights, dtype=np.float64).reshape(-1)
    if w.shape != (n,) or not np.isfinite(w).all():
        msg = f"{what} must be finite numbers, one per event ({n})"
        raise InvalidInputError(msg)
    return w


class UnbinnedNLL(Estimator):
    """``−Σ w log(I / N)`` of ``model`` over ``data`` for the ``free`` parameters; see module.

    As a vector function: :meth:`nll` and :meth:`nll_and_gradient` of a real vector in
    :attr:`labels` order. As a tensorwaves ``Estimator``: ``nll(parameters)`` and
    ``nll.gradient(parameters)`` with parameters keyed by name (or alias), complex gradients as
    ``∂/∂Re + i ∂/∂Im``.
    """

    def __init__(
        self,
        model: PublishedModel,
        data: Any,
        free: Any,
        normalization: Any = None,
        weights: Any = None,
        normalization_weights: Any = None,
        parameters: Mapping[str, Any] | None = None,
        seed: int = 0,
    ) -> None:
        """``data``: ``(σ1, σ2)`` or a dict with ``sigma1``, ``sigma2`` (and optionally
        ``weights``); ``normalization``: None (the default rule), a number of phase-space
        points, or a sample in the same forms (its ``weights``, or ``normalization_weights``,
        e.g. acceptance weights); ``parameters``: values of the fixed parameters and starting
        values of the free ones (names or aliases).

        Raises:
            InvalidInputError: bad names (see :func:`free_parameters`), arrays or weights, or
                data events where the intensity is not positive (outside the Dalitz region).
        """
        from modelstore.dalitz.rates import MAX_POINTS, phase_space_points

        self.model = model
        self.free = free_parameters(model, free)
        self.labels = parameter_labels(model, self.free)
        self._complex = [model._spec[n].dtype == "complex128" for n in self.free]
        self._values = model.parameter_values(dict(parameters or {}))
        d1, d2 = data_arrays(data)
        if weights is None and hasattr(data, "keys") and "weights" in data:
            weights = data["weights"]
        w = _weights(weights, d1.size, "weights")
        rule = normalization_size(d1.size)
        if normalization is None or isinstance(normalization, (int, np.integer)):
            n = rule if normalization is None else int(normalization)
            n1, n2 = phase_space_points(model, min(n, MAX_POINTS), seed=seed)
            v = np.ones(n1.size)
        else:
            n1, n2 = data_arrays(normalization, "normalization")
            if normalization_weights is None and hasattr(normalization, "keys"):
                normalization_weights = normalization.get("weights")
            v = _weights(normalization_weights, n1.size, "normalization_weights")
        effective = float(v.sum() ** 2 / np.sum(v**2)) if np.any(v) else 0.0
        if effective < rule:
            warnings.warn(
                f"normalization: {effective:.0f} effective points for {d1.size} events, fewer"
                f" than max(100 000, 100 x events) = {rule}; the integration error may bias the"
                " fit",
                NormalizationWarning,
                stacklevel=2,
            )
        self.n_events, self.n_normalization = d1.size, n1.size
        self._s1 = np.concatenate([d1, n1])
        self._s2 = np.concatenate([d2, n2])
        self._w, self._v = w, v
        self.total_weight = float(w.sum())
        self._v_sum = float(v.sum())
        intensity = np.asarray(model.intensity(d1, d2, **self._values))
        bad = ~(intensity > 0)
        if bad.any():
            msg = (
                f"data: {int(bad.sum())} events where the intensity is not positive (outside the"
                f" Dalitz region?), the first at index {int(np.argmax(bad))}"
            )
            raise InvalidInputError(msg)

    # -- parameters ------------------------------------------------------------------------

    def values_from(self, parameters: Mapping[str, Any] | None = None) -> np.ndarray:
        """The real vector (:attr:`labels`) of the free parameters' current values, updated by
        ``parameters`` (names or aliases).

        Raises:
            InvalidInputError: an unknown parameter or a value unfit for it.
        """
        values = {**self._values, **self._checked(parameters)} if parameters else self._values
        out: list[float] = []
        for name, cplx in zip(self.free, self._complex, strict=True):
            z = complex(values[name])
            out += [z.real, z.imag] if cplx else [z.real]
        return np.array(out)

    def _checked(self, parameters: Mapping[str, Any]) -> dict[str, Any]:
        by_name = self.model.parameter_overrides(parameters)
        spec = self.model._spec
        return {
            n: spec[n].check_value(v, f"{self.model.ref}: parameter") for n, v in by_name.items()
        }

    def as_parameters(self, x: Any) -> dict[str, complex | float]:
        """The real vector ``x`` as ``{name: value}`` of the free parameters.

        Raises:
            InvalidInputError: ``x`` is not a finite real vector of :attr:`labels`' length.
        """
        x = np.asarray(x, dtype=np.float64).reshape(-1)
        if x.size != len(self.labels) or not np.isfinite(x).all():
            msg = (
                f"values must be {len(self.labels)} finite real numbers ({', '.join(self.labels)})"
            )
            raise InvalidInputError(msg)
        out: dict[str, complex | float] = {}
        k = 0
        for name, cplx in zip(self.free, self._complex, strict=True):
            out[name] = complex(x[k], x[k + 1]) if cplx else float(x[k])
            k += 2 if cplx else 1
        return out

    # -- evaluation --------------------------------------------------------------------------

    def _split(self, intensity: np.ndarray) -> tuple[np.ndarray, float, bool]:
        data = intensity[: self.n_events]
        norm = float(self._v @ intensity[self.n_events :]) / self._v_sum
        ok = bool(np.all(data > 0) and np.isfinite(norm) and norm > 0)
        return data, norm, ok

    def nll(self, x: Any) -> float:
        """The NLL at the real vector ``x`` (+inf where an event's intensity is not positive).

        Raises:
            InvalidInputError: ``x`` is not a finite real vector of :attr:`labels`' length.
        """
        values = {**self._values, **self.as_parameters(x)}
        intensity = np.asarray(self.model.intensity(self._s1, self._s2, **values))
        data, norm, ok = self._split(intensity)
        if not ok:
            return float("inf")
        return float(-(self._w @ np.log(data)) + self.total_weight * np.log(norm))

    def nll_and_gradient(self, x: Any) -> tuple[float, np.ndarray]:
        """The NLL and its exact gradient (:attr:`labels` order) at ``x``, from one pass.

        Raises:
            InvalidInputError: ``x`` is not a finite real vector of :attr:`labels`' length.
        """
        values = {**self._values, **self.as_parameters(x)}
        intensity, grad = self.model.value_and_gradient(self._s1, self._s2, self.free, **values)
        intensity = np.asarray(intensity)
        data, norm, ok = self._split(intensity)
        if not ok:
            return float("inf"), np.zeros(len(self.labels))
        n = self.n_events
        nll = float(-(self._w @ np.log(data)) + self.total_weight * np.log(norm))
        d_norm = (self._v @ grad[n:]) / self._v_sum
        gradient = -((self._w / data) @ grad[:n]) + self.total_weight * d_norm / norm
        return nll, np.asarray(gradient, dtype=np.float64)

    # -- tensorwaves' Estimator -------------------------------------------------------------

    def _vector(self, parameters: Mapping[str, Any]) -> np.ndarray:
        checked = self._checked(parameters)
        fixed = [n for n in checked if n not in self.free]
        if fixed:
            msg = f"parameter {fixed[0]!r} is not free in this likelihood (free: {self.free})"
            raise InvalidInputError(msg)
        self._values.update(checked)
        return self.values_from()

    def __call__(self, parameters: Mapping[str, Any]) -> float:
        """The NLL with the free parameters in ``parameters`` set (others keep their values).

        Raises:
            InvalidInputError: a name that is unknown or not free, or an unfit value.
        """
        return self.nll(self._vector(parameters))

    def gradient(self, parameters: Mapping[str, Any]) -> dict[str, Any]:
        """``{name: ∂NLL/∂p}`` of the free parameters (complex: ``∂/∂Re + i ∂/∂Im``).

        Raises:
            InvalidInputError: a name that is unknown or not free, or an unfit value.
        """
        _, g = self.nll_and_gradient(self._vector(parameters))
        out: dict[str, Any] = {}
        k = 0
        for name, cplx in zip(self.free, self._complex, strict=True):
            out[name] = complex(g[k], g[k + 1]) if cplx else float(g[k])
            k += 2 if cplx else 1
        return out
