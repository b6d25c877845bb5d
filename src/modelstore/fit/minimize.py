"""``fit(model, data, free=[...])``: an unbinned maximum-likelihood fit with iminuit (``[fit]``).

Migrad with the exact gradient of :class:`modelstore.fit.likelihood.UnbinnedNLL`, then Hesse
with the Hessian from forward differences of that exact gradient (k + 1 gradient passes for k
coordinates, rather than Hesse's ~k² function values; relative step 1e-5, symmetrised).
When every free parameter is a production coupling (any parameter that enters the amplitudes
linearly), the NLL and its gradient come from a :class:`modelstore.fit.couplings.CouplingCache`
built once on the same data and normalization points: the same NLL, much cheaper per iteration.

Parameter coordinates: a real parameter ``p`` is ``p``; a complex one is ``p.re`` and ``p.im``
(:attr:`FitResult.values`, :attr:`FitResult.errors` and the covariance's order).

The reference coupling (a complex coupling fixed to exactly 1 + 0j by the publication: it sets
the overall phase and scale of the amplitudes) is refused as a free parameter, as is a
parameter on which the likelihood does not depend (∂I/∂p = 0 at every event).
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from modelstore._optional import require
from modelstore.errors import BackendUnavailableError, InvalidInputError
from modelstore.fit.likelihood import (
    NormalizationWarning,
    UnbinnedNLL,
    free_parameters,
    parameter_labels,
)

if TYPE_CHECKING:
    from collections.abc import Mapping

    from modelstore.model import PublishedModel

__all__ = ["FitResult", "fit"]

HESSIAN_STEP = 1e-5  # relative step of the Hessian's differences of the exact gradient


@dataclass
class FitResult:
    """What :func:`fit` returns; coordinates are labelled ``p`` or ``p.re``/``p.im``."""

    values: dict[str, float]
    errors: dict[str, float]
    covariance: np.ndarray
    nll: float
    valid: bool
    labels: list[str]
    nfcn: int
    ngrad: int
    fast_path: bool
    seconds: float
    parameters: dict[str, complex | float] = field(default_factory=dict)
    minuit: Any = field(default=None, repr=False)

    def __str__(self) -> str:
        rows = [f"{label:>50s} = {self.values[label]:.6g} ± {self.errors[label]:.2g}"
                for label in self.labels]  # fmt: skip
        head = f"NLL {self.nll:.6f} valid={self.valid} nfcn={self.nfcn} ({self.seconds:.2f} s)"
        return "\n".join([head, *rows])


def _reference_couplings(model: PublishedModel, free: list[str]) -> list[str]:
    spec = model._spec
    defaults = model.parameters
    return [n for n in free if spec[n].dtype == "complex128" and complex(defaults[n]) == 1 + 0j]


def _estimator(
    model: PublishedModel,
    data: Any,
    free: list[str],
    normalization: Any,
    weights: Any,
    normalization_weights: Any,
    start: Mapping[str, Any],
    seed: int,
) -> tuple[Any, bool]:
    """The general NLL, or a CouplingCache on the same points when every free one is linear."""
    from modelstore.fit.couplings import CouplingCache

    nll = UnbinnedNLL(model, data, free, normalization, weights, normalization_weights, start, seed)
    spec = model._spec
    unweighted = bool(np.all(nll._v == 1))
    if unweighted and all(spec[n].dtype == "complex128" for n in free):
        n = nll.n_events
        points = (nll._s1[n:], nll._s2[n:])
        try:
            cache = CouplingCache.build(
                model,
                (nll._s1[:n], nll._s2[:n]),
                points,
                free,
                nll._w,
                nll._values,
            )
        except (InvalidInputError, BackendUnavailableError):
            return nll, False  # not linear in them, or no amplitude forms or no compiler
        return cache, True
    return nll, False


def fit(
    model: PublishedModel,
    data: Any,
    free: Any,
    normalization: Any = None,
    weights: Any = None,
    start: Mapping[str, Any] | None = None,
    backend: str | None = None,
    seed: int = 0,
    normalization_weights: Any = None,
) -> FitResult:
    """Fit the ``free`` parameters of ``model`` to ``data`` by unbinned maximum likelihood.

    Args:
        model: a published model.
        data: ``(σ1, σ2)`` arrays, or a dict with ``sigma1``, ``sigma2`` (and ``weights``).
        free: the parameters to fit, by name or ASCII alias (``["m_K892", "Gamma_K892"]``).
        normalization: None for ``max(100 000, 100 × events)`` quasi-random phase-space points
            (see :mod:`modelstore.fit.likelihood`), a number of such points, or a sample
            ``(σ1, σ2)`` / dict (e.g. accepted MC), weighted by ``normalization_weights``.
        weights: per-event weights (errors are then not corrected for the weights).
        start: starting values of free parameters and values of fixed ones (name or alias);
            the model's defaults otherwise.
        backend: evaluate on this backend rather than the model's (``native``, ``jax``,
            ``numpy``).
        seed: shift of the default quasi-random normalization points.

    Returns:
        A :class:`FitResult`: Migrad's minimum, Hesse's errors and covariance.

    Raises:
        MissingExtraError: iminuit is not installed (``pip install 'modelstore[fit]'``).
        InvalidInputError: an unknown free name (with a did-you-mean), one given twice, an
            integer parameter, the reference coupling, a parameter the likelihood does not
            depend on, or bad data, weights or normalization.
        BackendUnavailableError: the backend cannot run here.
    """
    iminuit = require("iminuit", "fitting")
    began = time.perf_counter()
    if backend is not None and backend != model.requested_backend:
        model = type(model)(model.registry, model.manifest, backend)
    names = free_parameters(model, free)
    reference = _reference_couplings(model, names)
    if reference:
        msg = (
            f"free: {reference[0]!r} is the reference coupling (fixed to 1, it sets the overall"
            " phase and scale); fit the other couplings relative to it"
        )
        raise InvalidInputError(msg)
    labels = parameter_labels(model, names)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", NormalizationWarning)
        estimator, fast = _estimator(
            model, data, names, normalization, weights, normalization_weights, start or {}, seed
        )
    for warning in caught:  # said again where the caller called fit
        warnings.warn(warning.message, warning.category, stacklevel=2)
    x0 = estimator.values_from(start or {})
    if not fast:  # (a cached coupling always matters: its basis column is not zero)
        _, g0 = estimator.nll_and_gradient(x0)
        flat = [label for label, g in zip(labels, g0, strict=True) if g == 0]
        if flat:
            msg = f"free: the likelihood does not depend on {flat[0].split('.')[0]!r}"
            raise InvalidInputError(msg)

    cache: dict[str, Any] = {}

    def both(x: np.ndarray) -> tuple[float, np.ndarray]:
        key = np.asarray(x).tobytes()
        if cache.get("key") != key:
            cache["key"], cache["value"] = key, estimator.nll_and_gradient(x)
        return cache["value"]

    def hessian(x: np.ndarray) -> np.ndarray:
        """Forward differences of the exact gradient: k + 1 gradient passes, not ~k² values."""
        x = np.asarray(x, dtype=np.float64)
        g = both(x)[1]
        columns = []
        for k in range(x.size):
            h = HESSIAN_STEP * max(abs(x[k]), 1e-2)
            step = x.copy()
            step[k] += h
            columns.append((estimator.nll_and_gradient(step)[1] - g) / h)
        matrix = np.array(columns)
        return (matrix + matrix.T) / 2

    minuit = iminuit.Minuit(
        lambda x: both(x)[0], x0, grad=lambda x: both(x)[1], hessian=hessian, name=labels
    )
    minuit.errordef = iminuit.Minuit.LIKELIHOOD
    minuit.errors = 0.01 * np.abs(x0) + 1e-3
    minuit.migrad()
    minuit.hesse()
    values = {label: float(v) for label, v in zip(labels, minuit.values, strict=True)}
    errors = {label: float(e) for label, e in zip(labels, minuit.errors, strict=True)}
    return FitResult(
        values=values,
        errors=errors,
        covariance=np.array(minuit.covariance),
        nll=float(minuit.fval),
        valid=bool(minuit.valid),
        labels=labels,
        nfcn=int(minuit.nfcn),
        ngrad=int(minuit.ngrad),
        fast_path=fast,
        seconds=time.perf_counter() - began,
        parameters=estimator.as_parameters(np.array(minuit.values)),
        minuit=minuit,
    )
