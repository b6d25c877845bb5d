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
