"""The polarimeter vector α⃗ of a published model (1.4.0 on), evaluated chunk by chunk.

``α⃗ = (αx, αy, αz)`` is upstream's ``formulate_polarimetry(builder, reference_subsystem=1)``:
numerator over intensity, real part. Every backend evaluates the intensity and α⃗ in one pass
(native: ``ms_evaluate_polarimetry``; JAX and numpy: the array program's ``polarimetry``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from modelstore.backends.base import chunk_as_float64
from modelstore.errors import BackendUnavailableError, InvalidInputError

if TYPE_CHECKING:
    from modelstore.model import PublishedModel

__all__ = ["ALPHA_ATOL", "MINIMUM_VERSION", "check_alpha_reference", "evaluate_polarimetry"]

MINIMUM_VERSION = "1.4.0"


def _check_version(model: PublishedModel) -> None:
    if not model.manifest.has_file("polarimetry-srepr"):
        if model.manifest.upstream_index is None:  # a model published from its own forms
            msg = (
                f"{model.ref}: no polarimetry: α⃗ needs a spin-1/2 decaying particle and the"
                " model's amplitudes with their polarimetry forms, which this model was"
                " published without"
            )
        else:
            msg = (
                f"{model.ref}: polarimetry needs a version >= {MINIMUM_VERSION}"
                " (this one has no polarimetry forms)"
            )
        raise BackendUnavailableError(msg)


def evaluate_polarimetry(
    model: PublishedModel, sigma1: Any, sigma2: Any, parameters: dict[str, Any]
) -> np.ndarray:
    """``(..., 4)`` array of (I, αx, αy, αz) at broadcast σ1, σ2; NaN outside the Dalitz region.

    Raises:
        BackendUnavailableError: the version has no polarimetry (before 1.4.0).
        InvalidInputError: an unknown parameter, or σ values that are not real numbers.
    """
    _check_version(model)
    values = model.parameter_values(parameters)
    s1, s2 = np.asarray(sigma1), np.asarray(sigma2)
    for name, arr in (("sigma1", s1), ("sigma2", s2)):
        if arr.dtype.kind not in "iuf":
            msg = f"{name} must be real numbers, got {arr.dtype} values"
            raise InvalidInputError(msg)
    b1, b2 = np.broadcast_arrays(s1, s2)
    flat1 = b1.reshape(-1) if b1.flags.c_contiguous else b1
    flat2 = b2.reshape(-1) if b2.flags.c_contiguous else b2
    n = b1.size
    planar = np.empty((4, n), dtype=np.float64)
    evaluator = model.evaluator
    chunk = evaluator.chunk_size
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        c1, c2 = chunk_as_float64(flat1, start, stop), chunk_as_float64(flat2, start, stop)
        if evaluator.pad_chunks and n > chunk and stop - start < chunk:
            pad = chunk - (stop - start)
            c1 = np.concatenate([c1, np.full(pad, c1[0])])
            c2 = np.concatenate([c2, np.full(pad, c2[0])])
            planar[:, start:stop] = evaluator.polarimetry(c1, c2, values)[:, : stop - start]
        else:
            out = np.empty((4, stop - start), dtype=np.float64)
            planar[:, start:stop] = evaluator.polarimetry(c1, c2, values, out=out)
    return np.moveaxis(planar, 0, -1).reshape((*b1.shape, 4))


ALPHA_ATOL = 1e-9


def check_alpha_reference(
    model: PublishedModel, reference: dict[str, np.ndarray]
) -> tuple[bool, str]:
    """Compare α⃗ at the reference points with the stored ``alpha_*`` arrays (absolute, ALPHA_ATOL).

    Returns ``(problem, text)``: whether NaN marks differ or a deviation exceeds the tolerance,
    and a one-line summary or the detail of the first problem.

    Never raises: a backend that fails is reported as a problem.
    """
    stored = np.stack([reference[k] for k in ("alpha_x", "alpha_y", "alpha_z")], axis=-1)
    try:
        actual = model.polarimeter(reference["sigma1"], reference["sigma2"])
    except Exception as exc:
        return True, f"polarimeter failed: {type(exc).__name__}: {exc}"
    differ = np.isnan(stored) != np.isnan(actual)
    if differ.any():
        return (
            True,
            f"α is NaN at other points than stored ({int(differ.any(axis=-1).sum())} points)",
        )
    deviation = float(np.nanmax(np.abs(actual - stored), initial=0.0))
    if deviation > ALPHA_ATOL:
        return True, f"α max abs. deviation {deviation:.2e} > tolerance {ALPHA_ATOL:.0e}"
    return False, f"α max abs. deviation {deviation:.2e} (tolerance {ALPHA_ATOL:.0e})"
