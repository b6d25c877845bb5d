"""Toy events and the shared free parameters of the fit tests (tests/fit, benchmarks).

Every test that needs gradients frees the same parameters (:data:`FREE`), so the native
derivative unit is compiled once per test session.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from modelstore import PublishedModel

#: K(892) mass, width and one of its (complex) production couplings, as ASCII aliases
FREE = ["m_K892", "Gamma_K892", "H_prod_K892_0_1half"]


def generate_toy(model: PublishedModel, n: int, seed: int, **overrides: object) -> tuple:
    """``n`` events (σ1, σ2) distributed as the model's intensity (``model.sample``)."""
    s1, s2 = model.sample(n, seed=seed, **overrides)  # type: ignore[arg-type]
    return np.asarray(s1), np.asarray(s2)
