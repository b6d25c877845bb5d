"""The coupling-fit kernel: the same bits on every instruction set it was built for."""

from __future__ import annotations

import os

import numpy as np
import pytest

from modelstore import PublishedModel
from modelstore.dalitz.kinematics import sample_dalitz
from modelstore.fit.couplings import CouplingCache


@pytest.fixture(scope="module")
def cache(model: PublishedModel) -> CouplingCache:
    p = model.parameters
    data = sample_dalitz(1001, p["m0"], p["m1"], p["m2"], p["m3"], seed=11)  # a partial block
    free = [name for name in p if "mathrm{production}" in name][1:]
    return CouplingCache.build(model, data, normalization=2000, free=free)


def test_every_instruction_set_gives_identical_bits(cache: CouplingCache) -> None:
    x = cache.values_from() + np.random.default_rng(4).normal(size=len(cache.labels))
    lib = cache._kernel.lib
    results = {}
    try:
        for level in (2, 1, 0):
            used = lib.mc_limit_isa(level)
            results[used] = (cache.nll_and_gradient(x), cache.intensity(x))
    finally:
        lib.mc_limit_isa(2)
    assert 0 in results and (len(results) >= 2 or os.uname().machine != "x86_64")
    (nll, grad), inten = results[0]
    for (other_nll, other_grad), other_inten in results.values():
        assert other_nll == nll
        np.testing.assert_array_equal(other_grad, grad)
        np.testing.assert_array_equal(other_inten, inten)


def test_columns_that_differ_by_a_real_factor_are_stored_once() -> None:
    from modelstore.fit.columns import column_layout
    from modelstore.fit.kernel import COMPLEX, REAL, SCALED

    rng = np.random.default_rng(9)
    base = rng.normal(size=50) + 1j * rng.normal(size=50)
    r = rng.normal(size=50)
    lone = base.copy()
    lone[3] = 0.0  # base times a real factor that is 0 at one event
    stored = np.stack([base, r * base, r, lone, 2j * lone + rng.normal(size=50)], axis=1)
    layout, slots = column_layout(stored, np.all(stored.imag == 0, axis=0))
    assert [kind for kind, _, _ in layout] == [COMPLEX, SCALED, REAL, SCALED, COMPLEX]
    assert layout[1][2] == 0 and layout[3][2] == 0 and len(slots) == 2 + 1 + 1 + 1 + 2
    np.testing.assert_allclose(slots[layout[1][1]] * base, stored[:, 1], rtol=1e-13)


def test_the_default_models_cache_holds_fewer_numbers_than_its_columns(
    cache: CouplingCache,
) -> None:
    assert cache.n_slots < 2 * cache.n_columns
    assert cache._values.shape[1] == cache.n_slots
