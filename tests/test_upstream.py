"""Every published model against the upstream package itself (polarimetry-lc2pkpi).

For each of the 18 models, upstream builds the model from its YAML definitions and evaluates it
the way its documentation does (unfolded expression, SympyDataTransformer, lambdify). Every
backend of the latest published version must agree on random points inside the Dalitz region
and give NaN exactly where upstream does, outside it.

Building an upstream model takes 10-40 s (minutes on a slow machine), so the default run (and
CI) compares a representative subset: the default model, a Flatté lineshape and the Bugg
lineshapes with their exponential form factor. All 18: `pytest -m "upstream and slow"`.
"""

from __future__ import annotations

import numpy as np
import pytest

from modelstore import published_model
from modelstore.dalitz.kinematics import dalitz_contains, sample_dalitz
from modelstore.publish.build import _upstream_reference
from modelstore.publish.catalog import LHCB_MODELS

pytestmark = pytest.mark.upstream

TOLERANCE = {"native": 1e-10, "jax": 1e-9, "numpy": 1e-9}
CI_SUBSET = ("default", "l1405-flatte-free", "bugg-exp-ff")


def upstream_intensity(upstream_index: int, sigma1: np.ndarray, sigma2: np.ndarray) -> np.ndarray:
    import polarimetry
    from ampform.sympy import perform_cached_doit

    model = polarimetry.published_model(upstream_index)
    return _upstream_reference(model, perform_cached_doit(model.full_expression), sigma1, sigma2)


def points(model, seed: int) -> tuple[np.ndarray, np.ndarray]:
    p = model.parameters
    masses = p["m0"], p["m1"], p["m2"], p["m3"]
    inside = sample_dalitz(400, *masses, seed=seed)
    rng = np.random.default_rng(seed)
    s1 = rng.uniform(0.2, 2.2, 400)
    s2 = rng.uniform(1.8, 5.0, 400)
    outside = ~dalitz_contains(s1, s2, *masses)
    return np.concatenate([inside[0], s1[outside]]), np.concatenate([inside[1], s2[outside]])


@pytest.mark.parametrize(
    "upstream_index",
    [
        pytest.param(i, marks=() if e.model_id in CI_SUBSET else pytest.mark.slow, id=e.model_id)
        for i, e in enumerate(LHCB_MODELS)
    ],
)
def test_model_agrees_with_upstream(upstream_index, embedded):
    ref = LHCB_MODELS[upstream_index].model_id
    models = {b: published_model(ref, backend=b, registry=embedded) for b in TOLERANCE}
    sigma1, sigma2 = points(models["native"], seed=upstream_index)
    expected = upstream_intensity(upstream_index, sigma1, sigma2)
    n_inside = 400
    assert not np.isnan(expected[:n_inside]).any()
    assert np.isnan(expected[n_inside:]).all() and expected.size > n_inside + 50
    for backend, model in models.items():
        values = model.intensity(sigma1, sigma2)
        assert np.array_equal(np.isnan(values), np.isnan(expected)), backend
        np.testing.assert_allclose(
            values[:n_inside], expected[:n_inside], rtol=TOLERANCE[backend], err_msg=backend
        )
