"""Gradients through the segmented array program (issue 19): the program's values, and the
gradient JAX gives for the whole program, segment by segment."""

from __future__ import annotations

import numpy as np
import pytest
from registry_helpers import new_registry
from toy_models import MASSES, toy_forms

from modelstore import published_model
from modelstore.backends.base import pack_parameters
from modelstore.dalitz.kinematics import sample_dalitz
from modelstore.format.arraycode import compile_array_program
from modelstore.format.arraysplit import run_segments, split_array_program
from modelstore.publish.generic import publish_forms

jax = pytest.importorskip("jax")


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    registry = new_registry(tmp_path_factory.mktemp("grad") / "registry")
    publish_forms(toy_forms(), "toy", "1.0.0", registry=registry, native=False)
    return published_model("toy", registry=registry, backend="numpy")


@pytest.mark.parametrize("nodes", [1, 40, 10**6])
def test_segments_compute_the_programs_values_exactly(toy, nodes):
    source = toy.registry.read_file(toy.manifest, "array-source").decode()
    segments, results = split_array_program(source, nodes=nodes)
    assert (len(segments) > 3) == (nodes < 100)
    s1, s2 = sample_dalitz(2000, *MASSES, seed=2)
    par = pack_parameters(toy.manifest.parameters, toy.parameters)
    with np.errstate(all="ignore"):
        expected = compile_array_program(source)(s1, s2, par, np)
        (got,) = run_segments(segments, results, s1, s2, par, np)
    assert np.array_equal(got, expected, equal_nan=True)


def test_the_gradient_is_the_whole_programs_and_ignores_undefined_events(toy):
    import jax.numpy as jnp

    from modelstore.backends.jax_gradient import JaxGradient

    jax.config.update("jax_enable_x64", True)
    s1, s2 = sample_dalitz(3000, *MASSES, seed=4)
    weights = np.linspace(0.5, 2.0, s1.size)
    result = JaxGradient(toy, nodes=40, chunk=1024)(s1, s2, weights)
    intensity = toy.intensity(s1, s2)
    ok = ~np.isnan(intensity)
    assert 0 < (~ok).sum() < s1.size  # the toy is NaN where sigma1 < 0.3
    np.testing.assert_allclose(result.intensity[ok], intensity[ok], rtol=1e-13)
    assert np.isfinite(result.packed).all()
    program = compile_array_program(toy.registry.read_file(toy.manifest, "array-source").decode())
    par = jnp.asarray(pack_parameters(toy.manifest.parameters, toy.parameters))
    whole = jax.grad(lambda p: jnp.sum(weights[ok] * program(s1[ok], s2[ok], p, jnp)))(par)
    np.testing.assert_allclose(result.packed, np.asarray(whole), rtol=1e-10)
    assert set(result.by_name) == {p.name for p in toy.manifest.parameters}
    assert isinstance(result.by_name["c_rho"], complex)
