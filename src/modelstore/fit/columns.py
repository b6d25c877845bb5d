"""The cached columns of a coupling fit: the distinct basis values per event, and N.

:func:`distinct_columns` keeps one copy of the basis columns that are proportional on the data
(in the default model, the parity partners share their values, and the alignment factors are a
few products of half-angle cosines and sines): 92 columns become 30. Each column is then
``coefficient × stored column`` (or a constant, or zero), exact at the very events it was
found on, to 1e-13 relative per event. :func:`normalization_matrix` is
``N_kl = ⟨Σ_λ conj(B_λk) B_λl⟩`` over the normalization points, from the full basis.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from modelstore.fit.kernel import COMPLEX, REAL, SCALED

if TYPE_CHECKING:
    from modelstore.fit.basis import AmplitudeBasis

__all__ = ["RTOL", "column_layout", "dense_basis", "distinct_columns", "normalization_matrix"]

RTOL = 1e-13
ZERO = -2  # "column is zero" in the assignment
CONSTANT = -1  # "column is a constant coefficient"


def _ratio(a: np.ndarray, b: np.ndarray, at: int) -> complex | None:
    """``r`` with ``a = r b`` at every event (to :data:`RTOL` relative), else None."""
    if b[at] == 0:
        return None
    r = complex(a[at] / b[at])
    if np.all(np.abs(a - r * b) <= RTOL * np.abs(a)):
        return r
    return None


def distinct_columns(values: np.ndarray) -> tuple[np.ndarray, list[tuple[int, complex]]]:
    """The distinct columns of ``values`` (n × m complex) and each column's assignment.

    The assignment of column ``c`` is ``(s, r)``: ``values[:, c] = r × stored[:, s]``, or
    ``(CONSTANT, r)`` for the constant ``r``, or ``(ZERO, 0)``.

    Never raises.
    """
    n = values.shape[0]
    probe = np.linspace(0, n - 1, min(n, 16)).astype(int)
    stored: list[np.ndarray] = []
    peaks: list[int] = []
    assignment: list[tuple[int, complex]] = []
    ones = np.ones(n, dtype=np.complex128)
    for c in range(values.shape[1]):
        a = values[:, c]
        peak = int(np.argmax(np.abs(a)))
        if a[peak] == 0:
            assignment.append((ZERO, 0j))
            continue
        r = _ratio(a, ones, peak)
        if r is not None:
            assignment.append((CONSTANT, r))
            continue
        for s, b in enumerate(stored):
            at = peaks[s]
            if b[at] == 0 or a[at] == 0:
                continue
            guess = a[at] / b[at]
            if not np.allclose(a[probe], guess * b[probe], rtol=1e-9, atol=0):
                continue
            r = _ratio(a, b, at)
            if r is not None:
                assignment.append((s, r))
                break
        else:
            assignment.append((len(stored), 1 + 0j))
            stored.append(a)
            peaks.append(peak)
    if not stored:
        return np.zeros((n, 0), dtype=np.complex128), assignment
    return np.stack(stored, axis=1), assignment


def dense_basis(
    basis: AmplitudeBasis, e: np.ndarray, f: np.ndarray, n_couplings: int
) -> np.ndarray:
    """``B`` of shape (n, helicities, couplings + 1): ``B_λk = Σ_j F_λj E_jk``.

    Never raises.
    """
    n = e.shape[0]
    by_amplitude: dict[int, list[tuple[int, int]]] = {}
    for column, (j, k) in enumerate(basis.e_pairs):
        by_amplitude.setdefault(j, []).append((column, k))
    b = np.zeros((n, basis.n_helicities, n_couplings + 1), dtype=np.complex128)
    for column, (lam, j) in enumerate(basis.f_pairs):
        for e_column, k in by_amplitude.get(j, []):
            b[:, lam, k] += f[:, column] * e[:, e_column]
    return b


def normalization_matrix(
    basis: AmplitudeBasis, sigma1: np.ndarray, sigma2: np.ndarray, n_couplings: int
) -> tuple[np.ndarray, int]:
    """``N`` (the mean of ``B^H B`` over the points) and the number of NaN points.

    Chunk by chunk, so memory stays bounded.

    Never raises.
    """
    size = n_couplings + 1
    total = np.zeros((size, size), dtype=np.complex128)
    bad = 0
    chunk = 1 << 14
    for start in range(0, sigma1.size, chunk):
        e, f = basis.evaluate(sigma1[start : start + chunk], sigma2[start : start + chunk])
        b = dense_basis(basis, e, f, n_couplings)
        finite = np.isfinite(b).all(axis=(1, 2))  # per point, over its helicities
        bad += int((~finite).sum())
        b = b[finite].reshape(-1, size)
        total += b.conj().T @ b
    return total / sigma1.size, bad


SCALED_RTOL = RTOL  # a column is stored as r × another where they differ by a real r to this


def column_layout(
    stored: np.ndarray, real_column: np.ndarray
) -> tuple[list[tuple[int, int, int]], list[np.ndarray]]:
    """Where each column goes in a kernel block (``modelstore.fit.kernel.KernelStructure.layout``)
    and the slots' values.

    Never raises.

    A complex column ``v`` is stored as a real factor ``r`` of an earlier complex column ``u``
    where ``V_v = r V_u`` at every event to :data:`SCALED_RTOL` (the basis check at build
    bounds what that leaves, with everything else, by 1e-9), and ``V_u`` is 0 only where
    ``V_v`` is.
    """
    layout: list[tuple[int, int, int]] = []
    slots: list[np.ndarray] = []
    bases: list[int] = []
    for v in range(stored.shape[1]):
        column = stored[:, v]
        if real_column[v]:
            layout.append((REAL, len(slots), -1))
            slots.append(column.real)
            continue
        for u in bases:
            base = stored[:, u]
            norm = np.abs(base) ** 2
            cross = column * base.conj()
            zero = norm == 0
            if np.any(zero & (column != 0)):
                continue
            if np.all(np.abs(cross.imag) <= SCALED_RTOL * np.abs(column) * np.abs(base)):
                ratio = np.where(zero, 0.0, cross.real / np.where(zero, 1.0, norm))
                if np.all(np.abs(ratio * base - column) <= SCALED_RTOL * np.abs(column)):
                    layout.append((SCALED, len(slots), u))
                    slots.append(ratio)
                    break
        else:
            layout.append((COMPLEX, len(slots), len(slots) + 1))
            slots += [column.real, column.imag]
            bases.append(v)
    return layout, slots


def group_pairs(
    pairs: list[tuple[int, int]], mix: np.ndarray, layout: list[tuple[int, int, int]]
) -> tuple[list[tuple[int, tuple[tuple[int, int, float], ...]]], np.ndarray]:
    """Pairs ``(j, v)`` that read one stored column ``u`` (``v = u`` or ``V_v = r V_u``) with
    coefficient rows that differ by a real factor ``μ`` (``M_p = μ M_g``), as one term.

    Returns the terms ``(u, ((j, r slot or -1, μ), ...))`` and their rows ``M_g``: the kernel
    forms ``P = (M_g c) V_u`` once and adds ``μ r P`` to each member's amplitude, and sums
    ``conj(V_u) Σ μ r s_j`` once for the gradient, where the pairs took a complex product each
    (LHCb's default: 44 pairs, 26 terms; a coupling multiplies a lineshape in two helicity
    amplitudes, once times a Wigner-d ratio). Never raises.
    """
    terms: list[tuple[int, list[tuple[int, int, float]]]] = []
    rows: list[np.ndarray] = []
    pivots: list[int] = []  # each term's first non-zero coefficient
    for p, (j, v) in enumerate(pairs):
        kind, slot, base = layout[v] if v >= 0 else (COMPLEX, -1, -1)
        u, r = (base, slot) if kind == SCALED else (v, -1)
        row = mix[p]
        for (w, members), first, k in zip(terms, rows, pivots, strict=True):
            if w != u or k < 0 or row[k] == 0:
                continue
            mu = row[k] / first[k]
            if mu.imag == 0 and np.array_equal(row, mu.real * first):
                members.append((j, r, float(mu.real)))
                break
        else:
            terms.append((u, [(j, r, 1.0)]))
            rows.append(row)
            pivots.append(int(np.flatnonzero(row)[0]) if row.any() else -1)
    grouped = [(u, tuple(members)) for u, members in terms]
    return grouped, np.array(rows).reshape(len(rows), mix.shape[1])
