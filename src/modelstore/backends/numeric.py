"""Numerical verification: re-evaluate each version's stored reference values with every backend.

Every published version stores the intensity at a fixed set of (σ1, σ2) points (see
`modelstore.format.reference`). A backend passes when

- it gives NaN at exactly the points where the stored values are NaN (outside the Dalitz
  region), and
- at every other point its relative deviation ``|actual - stored| / |stored|`` is at most
  `RTOL` (1e-9); where the stored value is 0 the absolute difference is used instead.

1e-9 leaves room for a different order of floating-point operations (JAX's XLA, the generated
C code, numpy) — those differ by about 1e-14 — while any change of the model, a parameter or a
kinematic convention moves the intensity by far more.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np

from modelstore.errors import InvalidInputError

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from modelstore.registry import FileCheck, Registry

__all__ = [
    "RTOL",
    "NumericCheck",
    "compare_reference",
    "refs_verified",
    "summarize",
    "verify_numeric",
]

RTOL = 1e-9
MAX_WORKERS = 4  # versions checked at once (at most one per CPU)


@dataclass(frozen=True)
class NumericCheck:
    """The outcome of re-evaluating one version's reference values with one backend.

    Attributes:
        model: ``id@version``.
        backend: the backend that evaluated.
        status: ``ok``, ``mismatch`` (beyond the tolerance, or NaN at other points) or
            ``error`` (could not check: the backend failed to load or run).
        max_deviation: the largest relative deviation at points where both are numbers
            (NaN if nothing was evaluated).
        detail: one line for people.
    """

    model: str
    backend: str
    status: Literal["ok", "mismatch", "error"]
    max_deviation: float
    detail: str = ""

    @property
    def name(self) -> str:
        """The check's name in `modelstore verify` output: ``numeric/BACKEND``."""
        return f"numeric/{self.backend}"


@dataclass(frozen=True)
class Comparison:
    """How computed intensities differ from stored ones."""

    max_deviation: float
    worst: int | None
    nan_mismatches: int
    first_nan_mismatch: int | None
    points: int
    outside: int

    def within(self, rtol: float) -> bool:
        return self.nan_mismatches == 0 and self.max_deviation <= rtol


def compare_reference(stored: np.ndarray, actual: np.ndarray) -> Comparison:
    """Compare intensities point by point (see the module's docstring for the rule).

    Args:
        stored: the reference intensities (NaN outside the Dalitz region).
        actual: the intensities a backend computed at the same points.

    Raises:
        InvalidInputError: the arrays have different shapes.
    """
    stored = np.asarray(stored, dtype=np.float64)
    actual = np.asarray(actual, dtype=np.float64)
    if stored.shape != actual.shape:
        msg = f"cannot compare arrays of shapes {stored.shape} and {actual.shape}"
        raise InvalidInputError(msg)
    stored_nan, actual_nan = np.isnan(stored), np.isnan(actual)
    differ = np.flatnonzero(stored_nan != actual_nan)
    both = ~stored_nan & ~actual_nan
    with np.errstate(all="ignore"):
        scale = np.where(stored == 0, 1.0, np.abs(stored))
        deviation = np.where(both, np.abs(actual - stored) / scale, 0.0)
    deviation[both & ~np.isfinite(deviation)] = np.inf
    worst = int(np.argmax(deviation)) if deviation.size and both.any() else None
    return Comparison(
        max_deviation=float(deviation[worst]) if worst is not None else 0.0,
        worst=worst,
        nan_mismatches=len(differ),
        first_nan_mismatch=int(differ[0]) if len(differ) else None,
        points=int(stored.size),
        outside=int(stored_nan.sum()),
    )


def _check_backend(registry: Registry, ref: str, backend: str, rtol: float) -> NumericCheck:
    from modelstore.model import published_model

    try:
        model = published_model(ref, backend=backend, registry=registry)
        reference = model.reference()
        actual = model.intensity(reference["sigma1"], reference["sigma2"])
    except Exception as exc:
        return NumericCheck(ref, backend, "error", float("nan"), f"{type(exc).__name__}: {exc}")
    s1, s2 = reference["sigma1"], reference["sigma2"]
    result = compare_reference(reference["intensity"], actual)
    summary = (
        f"max rel. deviation {result.max_deviation:.2e} (tolerance {rtol:.0e}) over"
        f" {result.points - result.outside} points, NaN at the {result.outside} stored as NaN"
    )
    if result.nan_mismatches:
        i = result.first_nan_mismatch
        assert i is not None  # noqa: S101 (narrows the type)
        detail = (
            f"NaN at other points than stored: {result.nan_mismatches} differ, first at"
            f" σ1={s1[i]:.6g}, σ2={s2[i]:.6g} (stored {reference['intensity'][i]:.10g},"
            f" computed {actual[i]:.10g})"
        )
        return NumericCheck(ref, backend, "mismatch", result.max_deviation, detail)
    if not result.within(rtol):
        i = result.worst
        assert i is not None  # noqa: S101 (narrows the type)
        detail = (
            f"max rel. deviation {result.max_deviation:.2e} > tolerance {rtol:.0e} at"
            f" σ1={s1[i]:.6g}, σ2={s2[i]:.6g} (stored {reference['intensity'][i]:.15g},"
            f" computed {actual[i]:.15g})"
        )
        return NumericCheck(ref, backend, "mismatch", result.max_deviation, detail)
    if "alpha_x" in reference and getattr(model.evaluator, "data_only", False):
        summary += "; α not checked (data-only: the registry is not trusted to run code)"
    elif "alpha_x" in reference:  # 1.4.0 on: the polarimeter vector too
        from modelstore.backends.polarimeter import check_alpha_reference

        alpha_problem, alpha_summary = check_alpha_reference(model, reference)
        if alpha_problem:
            return NumericCheck(ref, backend, "mismatch", result.max_deviation, alpha_summary)
        summary += "; " + alpha_summary
    return NumericCheck(ref, backend, "ok", result.max_deviation, summary)


def verify_numeric(
    registry: Registry,
    refs: Iterable[str] | None = None,
    backends: Sequence[str] | None = None,
    rtol: float = RTOL,
) -> list[NumericCheck]:
    """Re-evaluate the reference values of each version with each backend; one check per pair.

    Args:
        registry: where the versions are published.
        refs: ``id@version`` to check (default: every version in the registry).
        backends: backends to use (default: every backend available for each version; a
            named backend that is not available gives an ``error`` check).
        rtol: the largest relative deviation that passes.

    A progress bar over the versions shows on a terminal (`modelstore.progress`).

    Never raises (a failure becomes a NumericCheck with status ``error``).
    """
    from modelstore.backends import available_backends
    from modelstore.model import published_model
    from modelstore.progress import progress

    def check(ref: str) -> list[NumericCheck]:
        try:
            names = available_backends(published_model(ref, registry=registry))
        except Exception as exc:
            return [NumericCheck(ref, "any", "error", float("nan"), f"{type(exc).__name__}: {exc}")]
        if not names and backends is None:
            return [NumericCheck(ref, "any", "error", float("nan"), "no backend can run here")]
        return [
            _check_backend(registry, ref, b, rtol)
            for b in (names if backends is None else backends)
        ]

    todo = list(registry.refs() if refs is None else refs)
    # versions in parallel threads: the time goes to the C compiler (a child process) and to
    # XLA's compiler, which both run without the GIL; the checks come back in the given order
    workers = max(1, min(len(todo), os.cpu_count() or 1, MAX_WORKERS))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(check, ref) for ref in todo]
        for _ in progress(
            as_completed(futures), total=len(futures), desc="numeric check", unit=" versions"
        ):
            pass
    return [c for future in futures for c in future.result()]


def refs_verified(checks: Iterable[FileCheck]) -> list[str]:
    """The versions whose manifest and files all verified, in order.

    Versions with a failed file are left out (their failure is reported already), and so are
    checks that concern no version (the registry's index).

    Never raises.
    """
    status: dict[str, bool] = {}
    versions: set[str] = set()
    for check in checks:
        status[check.model] = status.get(check.model, True) and check.status == "ok"
        if check.name == "manifest.json":
            versions.add(check.model)
    return [ref for ref, ok in status.items() if ok and ref in versions]


def summarize(checks: Iterable[NumericCheck], rtol: float = RTOL) -> list[str]:
    """One line per backend: the largest relative deviation over all versions it evaluated.

    Never raises.
    """
    worst: dict[str, tuple[float, int, int]] = {}
    for check in checks:
        deviation, count, failed = worst.get(check.backend, (0.0, 0, 0))
        if check.status != "error":
            deviation = max(deviation, check.max_deviation)
        worst[check.backend] = (deviation, count + 1, failed + (check.status != "ok"))
    return [
        f"numeric {backend}: largest relative deviation {deviation:.2e} over {count} versions"
        f" (tolerance {rtol:.0e}; {failed} not passed)"
        for backend, (deviation, count, failed) in sorted(worst.items())
    ]
