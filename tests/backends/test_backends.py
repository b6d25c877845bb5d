"""One conformance suite, run against every evaluator backend."""

from __future__ import annotations

import numpy as np
import pytest

from modelstore import published_model
from modelstore.errors import InvalidInputError

BACKENDS = ["native", "jax", "numpy"]


@pytest.fixture(scope="module", params=BACKENDS)
def model(request, embedded):
    return published_model("default", backend=request.param, registry=embedded)


def test_backend_in_use(model):
    assert model.backend == model.requested_backend


def test_seed_values(model):
    # the two values printed by the seed recipe (upstream, JAX backend)
    assert model.intensity(1.0, 3.0) == pytest.approx(1156.5307379422927, rel=1e-10)
    assert model.intensity(1.1, 3.2) == pytest.approx(636.1087670531597, rel=1e-10)
    assert isinstance(model.intensity(1.0, 3.0), float)


def test_reference_values(model):
    reference = model.reference()
    values = model.intensity(reference["sigma1"], reference["sigma2"])
    expected = reference["intensity"]
    assert np.array_equal(np.isnan(values), np.isnan(expected))
    inside = ~np.isnan(expected)
    assert inside.sum() > 300 and (~inside).sum() > 100
    np.testing.assert_allclose(values[inside], expected[inside], rtol=1e-10)


def test_shapes_dtypes_and_strides(model):
    reference = model.reference()
    s1 = reference["sigma1"][2:402].reshape(20, 20)
    s2 = reference["sigma2"][2:402].reshape(20, 20)
    flat = model.intensity(s1.ravel(), s2.ravel())
    grid = model.intensity(s1, s2)
    assert grid.shape == (20, 20) and grid.dtype == np.float64
    np.testing.assert_array_equal(grid.ravel(), flat)
    # non-contiguous (transposed, strided) inputs give the values of their elements
    np.testing.assert_array_equal(model.intensity(s1.T, s2.T), grid.T)
    np.testing.assert_array_equal(model.intensity(s1[::2, ::3], s2[::2, ::3]), grid[::2, ::3])
    # other float dtypes and integers are converted, not rejected
    as32 = model.intensity(s1.astype(np.float32), s2.astype(np.float32))
    np.testing.assert_allclose(
        as32,
        model.intensity(s1.astype(np.float32).astype(float), s2.astype(np.float32).astype(float)),
        rtol=1e-12,
    )
    assert np.isfinite(model.intensity(np.array([1]), np.array([3])))[0]
    # broadcasting a scalar against an array
    np.testing.assert_array_equal(
        model.intensity(1.0, s2[0]), model.intensity(np.full(20, 1.0), s2[0])
    )
    assert model.intensity(np.array([]), np.array([])).shape == (0,)


def test_chunked_evaluation_matches_one_call(model):
    reference = model.reference()
    s1, s2 = reference["sigma1"], reference["sigma2"]
    whole = model.intensity(s1, s2)
    evaluator = model.evaluator
    saved = evaluator.chunk_size
    evaluator.chunk_size = 37
    try:
        # strided inputs are converted chunk by chunk on every backend; contiguous float64 ones
        # go in chunks too, or in one call where the backend takes any size (native)
        chunked = model.intensity(np.repeat(s1, 2)[::2], np.repeat(s2, 2)[::2])
        direct = model.intensity(s1, s2)
    finally:
        evaluator.chunk_size = saved
    np.testing.assert_allclose(chunked, whole, rtol=1e-14, equal_nan=True)
    np.testing.assert_allclose(direct, whole, rtol=1e-14, equal_nan=True)


def test_the_native_evaluator_takes_contiguous_arrays_in_one_call(embedded, monkeypatch):
    """Each call starts the OpenMP threads again (tens of µs where they sleep between calls):
    views need no conversion, so they are not cut into chunks."""
    model = published_model("default", backend="native", registry=embedded)
    evaluator = model.evaluator
    sizes: list[int] = []
    call = type(evaluator).__call__

    def counting(self, sigma1, sigma2, parameters, out=None):
        sizes.append(np.asarray(sigma1).size)
        return call(self, sigma1, sigma2, parameters, out)

    monkeypatch.setattr(type(evaluator), "__call__", counting)
    monkeypatch.setattr(evaluator, "chunk_size", 100)
    s1, s2 = np.full(1000, 1.0), np.linspace(2.5, 3.5, 1000)
    model.intensity(s1, s2)
    assert sizes == [1000]
    sizes.clear()
    model.intensity(s1.astype(np.float32), s2)  # converted: chunk by chunk
    assert sizes == [100] * 10


def test_parameter_overrides(model, embedded):
    name = r"\mathcal{H}^\mathrm{production}[K(892), -1, -1/2]"
    default = model.intensity(1.0, 3.0)
    changed = model.intensity(1.0, 3.0, **{name: 2 + 1j, "m_{K(892)}": 0.9})
    assert changed != pytest.approx(default, rel=1e-3)
    other = published_model("default", backend="numpy", registry=embedded)
    assert changed == pytest.approx(
        other.intensity(1.0, 3.0, **{name: 2 + 1j, "m_{K(892)}": 0.9}), rel=1e-10
    )
    # overrides do not stick
    assert model.intensity(1.0, 3.0) == default


def test_bad_arguments(model):
    with pytest.raises(InvalidInputError, match="unknown parameters"):
        model.intensity(1.0, 3.0, nonsense=1.0)
    with pytest.raises(InvalidInputError, match="sigma1"):
        model.intensity(np.array([1 + 1j]), np.array([3.0]))
    with pytest.raises(InvalidInputError, match="sigma2"):
        model.intensity(1.0, "3.0")
    with pytest.raises(ValueError):
        model.intensity(np.ones(3), np.ones(4))
