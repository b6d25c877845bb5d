"""Cached amplitudes for fits in which only production couplings (or other linear ones) are free.

With the other parameters fixed, the intensity is a Hermitian form in the free couplings:
``I(x; c) = Σ_λ |Σ_k c̃_k B_λk(x)|²`` with ``c̃ = (1, c_1, ..., c_K)`` (the 1 carries every
fixed coupling's part). :meth:`CouplingCache.build` evaluates the model's amplitude basis
(:mod:`modelstore.fit.basis`) once at the data events, keeps the distinct columns per event
(:mod:`modelstore.fit.columns`), and computes once the normalization matrix
``N = ⟨B^H B⟩`` over the normalization points. Then

    NLL(c) = −Σ_i w_i log I(x_i; c) + (Σ_i w_i) log(c̃^H N c̃)

and its exact gradient cost a few complex multiply-adds per event (:mod:`modelstore.fit.kernel`).
``c̃^H N c̃`` is the mean intensity over the normalization points, so NLL is the extended-free
negative log-likelihood of the normalised density (up to the constant log of the region's area).

Parameters travel as one real vector: for each free name, in the order given, ``(re, im)`` for
a complex parameter and ``(value,)`` for a real one (:attr:`CouplingCache.labels`).

Needs a version with amplitude forms (1.4.0 on). For older versions (intensity only) the cache
is refused with one line rather than reconstructed from ~K² intensity evaluations per event.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import numpy as np

from modelstore.errors import InvalidInputError
from modelstore.fit.columns import (
    CONSTANT,
    ZERO,
    column_layout,
    distinct_columns,
    group_pairs,
    normalization_matrix,
)
from modelstore.fit.kernel import LANES, KernelStructure, kernel_library

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from modelstore.model import PublishedModel

__all__ = ["CHECK_RTOL", "DEFAULT_NORMALIZATION", "CouplingCache"]

DEFAULT_NORMALIZATION = 1_000_000
CHECK_RTOL = 1e-9  # the basis against the model's intensity, at build
CHECK_EVENTS = 256
CHECK_DRAWS = 3


def _points(pair: Any, what: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        s1, s2 = (np.ascontiguousarray(a, dtype=np.float64) for a in pair)
    except (TypeError, ValueError):
        msg = f"{what} must be a pair of real arrays (sigma1, sigma2)"
        raise InvalidInputError(msg) from None
    if s1.ndim != 1 or s1.shape != s2.shape or s1.size == 0:
        msg = f"{what}: sigma1 and sigma2 must be non-empty 1-D arrays of equal length"
        raise InvalidInputError(msg)
    if not (np.isfinite(s1).all() and np.isfinite(s2).all()):
        msg = f"{what}: sigma1 and sigma2 must be finite"
        raise InvalidInputError(msg)
    return s1, s2


class CouplingCache:
    """NLL and gradient of a coupling-only fit from per-event amplitude values cached once.

    Build with :meth:`build`; see the module for the definitions.
    """

    def __init__(self, model: PublishedModel, free: Sequence[str], is_complex: Sequence[bool]):
        self.model = model
        self.free = list(free)
        self.is_complex = list(is_complex)
        self.labels = [
            f"{name}.{part}"
            for name, cplx in zip(self.free, self.is_complex, strict=True)
            for part in (("re", "im") if cplx else ("re",))
        ]
        # positions in the real vector: every parameter's real part, the complex ones' imaginary
        starts = np.cumsum([0] + [2 if cplx else 1 for cplx in self.is_complex])[:-1]
        self._re_at = starts
        self._complex_at = np.flatnonzero(self.is_complex)
        self._im_at = starts[self._complex_at] + 1
        self.build_seconds = 0.0
        self.threads = 1
        self.n_events = 0
        self.n_normalization = 0
        self.normalization = np.zeros((1, 1), dtype=np.complex128)
        self.weights = np.zeros(0)
        self.total_weight = 0.0

    # -- building --------------------------------------------------------------------------

    @classmethod
    def build(
        cls,
        model: PublishedModel,
        data: Any,
        normalization: Any = None,
        free: Sequence[str] = (),
        weights: Any = None,
        parameters: Mapping[str, Any] | None = None,
        threads: int | None = None,
    ) -> CouplingCache:
        """Cache the basis at ``data`` = (σ1, σ2) and N over ``normalization`` for ``free``.

        ``normalization``: a pair (σ1, σ2), a number of points, or None for
        :data:`DEFAULT_NORMALIZATION` quasi-random phase-space points (those of
        ``modelstore.dalitz.rates.phase_space_points``, seed 0). ``parameters`` overrides the
        fixed parameters' defaults (and gives the free ones' values where the fixed part needs
        none). The cache is checked against ``model.intensity`` at random values of the free
        couplings at up to 256 data events, and refused beyond 1e-9 relative.

        Raises:
            InvalidInputError: no or unknown or repeated free names, an integer parameter,
                a version without amplitude forms, bad arrays or weights, events outside the
                Dalitz region, or an intensity that is not a Hermitian form in the free
                parameters (one of them enters non-linearly).
            BackendUnavailableError: no C compiler for the kernel, or the model's backend
                cannot run here.
        """
        from modelstore._native.evaluator import default_threads
        from modelstore.dalitz.rates import phase_space_points
        from modelstore.fit.basis import lower_basis

        start = time.perf_counter()
        spec = {p.name: p for p in model.manifest.parameters}
        free = list(free)
        unknown = [name for name in free if name not in spec]
        if not free or unknown or len(set(free)) != len(free):
            why = f"unknown {unknown}" if unknown else "none or repeated"
            msg = f"{model.ref}: free couplings must be distinct parameter names ({why})"
            raise InvalidInputError(msg)
        kinds = [spec[name].dtype for name in free]
        if any(kind not in ("complex128", "float64") for kind in kinds):
            msg = f"{model.ref}: free parameters must be complex or real, not integers"
            raise InvalidInputError(msg)
        values = model.parameter_values(dict(parameters or {}))
        s1, s2 = _points(data, "data")
        if weights is None:
            w = np.ones(s1.size)
        else:
            w = np.ascontiguousarray(weights, dtype=np.float64).reshape(-1)
            if w.shape != s1.shape or not np.isfinite(w).all():
                msg = "weights must be finite numbers, one per data event"
                raise InvalidInputError(msg)
        if normalization is None or isinstance(normalization, (int, np.integer)):
            n = DEFAULT_NORMALIZATION if normalization is None else int(normalization)
            n1, n2 = phase_space_points(model, n, seed=0)
        else:
            n1, n2 = _points(normalization, "normalization")

        cache = cls(model, free, [kind == "complex128" for kind in kinds])
        cache.threads = int(threads) if threads is not None else default_threads()
        basis = lower_basis(model, free, values)
        cache._store_data(basis, s1, s2, w, values)
        matrix, bad = normalization_matrix(basis, n1, n2, len(free))
        if bad:
            msg = (
                f"normalization: the amplitudes are NaN at {bad} of {n1.size} points (outside the"
                " Dalitz region, or where the model itself is NaN)"
            )
            raise InvalidInputError(msg)
        cache.normalization = matrix
        cache.n_normalization = n1.size
        cache._check_against_model(s1, s2, values)
        cache.build_seconds = time.perf_counter() - start
        return cache

    def _store_data(
        self, basis: Any, s1: np.ndarray, s2: np.ndarray, w: np.ndarray, values: dict[str, Any]
    ) -> None:
        """Evaluate the basis at the data, keep the distinct columns in kernel blocks."""
        chunk = 1 << 14
        parts = [
            basis.evaluate(s1[i : i + chunk], s2[i : i + chunk]) for i in range(0, s1.size, chunk)
        ]
        e = np.concatenate([p[0] for p in parts])
        f = np.concatenate([p[1] for p in parts])
        del parts
        bad = ~(np.isfinite(e).all(axis=1) & np.isfinite(f).all(axis=1))
        if bad.any():
            first = int(np.argmax(bad))
            if np.isfinite(self.model.intensity(s1[first], s2[first], **values)):
                raise self._not_hermitian("the basis is NaN where the model is not")
            msg = (
                f"data: {int(bad.sum())} events outside the Dalitz region (NaN amplitudes),"
                f" the first at index {int(np.argmax(bad))}"
            )
            raise InvalidInputError(msg)
        stored, assignment = distinct_columns(np.concatenate([e, f], axis=1))
        del e, f
        n_e = len(basis.e_pairs)
        # E entries -> pairs (amplitude, stored column), with M[p, k] = Σ coefficients
        pair_index: dict[tuple[int, int], int] = {}
        rows: list[tuple[int, int, complex]] = []
        for (j, k), (s, r) in zip(basis.e_pairs, assignment[:n_e], strict=True):
            if s == ZERO:
                continue
            key = (j, CONSTANT if s == CONSTANT else s)
            p = pair_index.setdefault(key, len(pair_index))
            rows.append((p, k, r))
        self._mix = np.zeros((len(pair_index), len(self.free) + 1), dtype=np.complex128)
        for p, k, r in rows:
            self._mix[p, k] += r
        f_rows = [
            (lam, j, CONSTANT if s == CONSTANT else s, r)
            for (lam, j), (s, r) in zip(basis.f_pairs, assignment[n_e:], strict=True)
            if s != ZERO
        ]
        real_column = np.all(stored.imag == 0, axis=0)
        factors = tuple(
            (lam, j, v, bool(r.imag == 0 and (v < 0 or real_column[v])), r.real, r.imag)
            for lam, j, v, r in f_rows
        )
        layout, slots = column_layout(stored, real_column)
        terms, self._mix = group_pairs(list(pair_index), self._mix, layout)
        structure = KernelStructure(
            stored.shape[1], basis.n_amplitudes, basis.n_helicities, tuple(terms), factors,
            tuple(layout), len(slots),
        )  # fmt: skip
        self.structure = structure
        self._kernel = kernel_library(structure)
        # kernel layout: blocks of LANES events, per slot LANES numbers
        n = s1.size
        n_blocks = -(-n // LANES)
        padded = np.empty((n_blocks * LANES, len(slots)))
        padded[:n] = np.stack(slots, axis=1)
        padded[n:] = padded[n - 1]  # copies of the last event, weight 0
        blocks = padded.reshape(n_blocks, LANES, len(slots)).transpose(0, 2, 1)
        self._values = np.ascontiguousarray(blocks)
        self.weights = np.zeros(n_blocks * LANES)
        self.weights[:n] = w
        self.total_weight = float(w.sum())
        self.n_events = n
        self.n_columns = stored.shape[1]
        self.n_slots = len(slots)

    def _check_against_model(self, s1: np.ndarray, s2: np.ndarray, values: dict[str, Any]) -> None:
        """Refuse unless the cached intensity is the model's at random free values."""
        rng = np.random.default_rng(12345)
        at = np.unique(np.linspace(0, s1.size - 1, min(s1.size, CHECK_EVENTS)).astype(int))
        scale = max(float(np.mean([abs(complex(values[n])) for n in self.free])), 1e-3)
        worst = 0.0
        for _ in range(CHECK_DRAWS):
            x = scale * rng.normal(size=len(self.labels))
            overrides = self.as_parameters(x)
            want = np.asarray(self.model.intensity(s1[at], s2[at], **{**values, **overrides}))
            got = self.intensity(x)[at]
            worst = max(worst, float(np.max(np.abs(got - want) / np.abs(want))))
        if not worst <= CHECK_RTOL:
            raise self._not_hermitian(f"the cache differs from the model by {worst:.2g} relative")

    def _not_hermitian(self, why: str) -> InvalidInputError:
        return InvalidInputError(
            f"{self.model.ref}: the intensity is not a Hermitian form in {self.free} ({why});"
            " only parameters that enter the amplitudes linearly can be cached"
        )

    # -- values ------------------------------------------------------------------------------

    def as_parameters(self, values: Any) -> dict[str, complex | float]:
        """The real vector ``values`` as ``{name: value}`` of the free parameters.

        Raises:
            InvalidInputError: ``values`` is not a finite real vector of :attr:`labels`' length.
        """
        c = self._couplings(values)[1:]
        return {
            name: complex(v) if cplx else float(v.real)
            for name, cplx, v in zip(self.free, self.is_complex, c, strict=True)
        }

    def values_from(self, parameters: Mapping[str, Any] | None = None) -> np.ndarray:
        """The real vector of the free parameters' values (model defaults, then ``parameters``).

        Raises:
            InvalidInputError: an unknown parameter or a value unfit for it.
        """
        values = self.model.parameter_values(dict(parameters or {}))
        out: list[float] = []
        for name, cplx in zip(self.free, self.is_complex, strict=True):
            v = complex(values[name])
            out += [v.real, v.imag] if cplx else [v.real]
        return np.array(out)

    def _couplings(self, values: Any) -> np.ndarray:
        x = np.asarray(values, dtype=np.float64).reshape(-1)
        if x.size != len(self.labels) or not np.isfinite(x).all():
            msg = (
                f"values must be {len(self.labels)} finite real numbers ({', '.join(self.labels)})"
            )
            raise InvalidInputError(msg)
        c = np.ones(len(self.free) + 1, dtype=np.complex128)
        c[1:] = x[self._re_at]
        c.imag[1 + self._complex_at] = x[self._im_at]
        return c

    # -- evaluation ------------------------------------------------------------------------

    def _run(
        self, c: np.ndarray, want_intensity: bool, want_gradient: bool = True
    ) -> tuple[float, np.ndarray, np.ndarray | None]:
        """One kernel pass: Σ w log I, the per-pair sums T, and I per event if asked."""
        module = self._kernel
        ffi, lib = module.ffi, module.lib
        d = self._mix @ c
        # per pair (re, im), each repeated over the LANES events of a block (vector operands)
        pd = np.repeat(d.view(np.float64), LANES)
        t = np.zeros(2 * len(d))
        out = np.empty(self.weights.size) if want_intensity else None
        buf = ffi.from_buffer
        total = lib.mc_nll(
            self._values.shape[0], buf("double[]", self._values), buf("double[]", self.weights),
            buf("double[]", pd), buf("double[]", t, require_writable=True),
            buf("double[]", out, require_writable=True) if out is not None else ffi.NULL,
            int(want_gradient), self.threads,
        )  # fmt: skip
        return float(total), t[0::2] + 1j * t[1::2], out

    def intensity(self, values: Any) -> np.ndarray:
        """The model's intensity at each data event with the free parameters at ``values``.

        Raises:
            InvalidInputError: ``values`` is not a finite real vector of :attr:`labels`' length.
        """
        _, _, out = self._run(self._couplings(values), want_intensity=True, want_gradient=False)
        assert out is not None  # noqa: S101 (asked for)
        return out[: self.n_events]

    def normalization_integral(self, values: Any) -> float:
        """``c̃^H N c̃``: the mean intensity over the normalization points at ``values``.

        Raises:
            InvalidInputError: ``values`` is not a finite real vector of :attr:`labels`' length.
        """
        c = self._couplings(values)
        return float((c.conj() @ self.normalization @ c).real)

    def nll(self, values: Any) -> float:
        """``−Σ w log I + (Σ w) log(c̃^H N c̃)`` at ``values`` (the kernel's forward half only).

        Raises:
            InvalidInputError: ``values`` is not a finite real vector of :attr:`labels`' length.
        """
        c = self._couplings(values)
        log_sum, _, _ = self._run(c, want_intensity=False, want_gradient=False)
        norm = float((c.conj() @ self.normalization @ c).real)
        return float(-log_sum + self.total_weight * np.log(norm))

    def nll_and_gradient(self, values: Any) -> tuple[float, np.ndarray]:
        """The NLL and its exact gradient with respect to ``values`` (in :attr:`labels` order).

        Raises:
            InvalidInputError: ``values`` is not a finite real vector of :attr:`labels`' length.
        """
        c = self._couplings(values)
        log_sum, t, _ = self._run(c, want_intensity=False)
        g = self._mix.conj().T @ t  # Σ_i (w_i / I_i) Σ_λ conj(B_λk) X_λ
        nc = self.normalization @ c
        norm = float((c.conj() @ nc).real)
        nll = -log_sum + self.total_weight * np.log(norm)
        grad_c = -2 * g + 2 * self.total_weight * nc / norm  # d/dRe as real, d/dIm as imaginary
        out = np.empty(len(self.labels))
        out[self._re_at] = grad_c[1:].real
        out[self._im_at] = grad_c[1 + self._complex_at].imag
        return float(nll), out

    @property
    def nbytes(self) -> int:
        """Bytes held by the cache's arrays (per-event values, weights, N).

        Never raises.
        """
        return int(self._values.nbytes + self.weights.nbytes + self.normalization.nbytes)
