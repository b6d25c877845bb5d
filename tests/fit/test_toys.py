"""200 toy fits (slow): the pulls of K(892)'s mass and width are unbiased and of unit width."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pytest

from modelstore.fit import fit

if TYPE_CHECKING:
    from collections.abc import Callable

    from modelstore import PublishedModel

TOYS = 200
EVENTS = 1000


@pytest.mark.slow
def test_pulls_of_mass_and_width(model: PublishedModel, toy: Callable[..., tuple]) -> None:
    free = ["m_K892", "Gamma_K892"]
    names = list(model.parameter_overrides(dict.fromkeys(free)))
    truth = model.parameters
    pulls: dict[str, list[float]] = {n: [] for n in names}
    for k in range(TOYS):
        result = fit(model, toy(EVENTS, seed=1000 + k), free=free, seed=k)
        assert result.valid, k
        for n in names:
            pulls[n].append((result.values[n] - float(truth[n])) / result.errors[n])
    for n in names:
        p = np.array(pulls[n])
        assert abs(p.mean()) <= 0.15, (n, p.mean())
        assert 0.85 <= p.std(ddof=1) <= 1.15, (n, p.std(ddof=1))
