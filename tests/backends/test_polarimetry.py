"""The polarimeter vector α⃗ (issue #10; versions from 1.4.0 on).

Fast tests use the 1.4.0 versions of the registry: the embedded one once 1.4.0 is published,
else a temporary registry that builds ``default`` and ``ls-couplings`` from upstream (skipped
without the upstream stack). Tests marked ``upstream`` compare with upstream's own route:
``perform_cached_doit(a.doit().xreplace(model.amplitudes))`` for each component of
``formulate_polarimetry(builder, reference_subsystem=1)``, lambdified as upstream documents.
"""

from __future__ import annotations

import functools
import io
import os
import zipfile

import numpy as np
import pytest

from modelstore import published_model
from modelstore.dalitz.kinematics import dalitz_contains, sample_dalitz
from modelstore.errors import BackendUnavailableError, IntegrityError, InvalidInputError
from modelstore.publish.catalog import LHCB_MODELS
from modelstore.registry import Registry

VERSION = "1.4.0"
FAST_MODELS = ("default", "ls-couplings")
BACKENDS = ("native", "jax", "numpy")
ALPHA = ("alpha_x", "alpha_y", "alpha_z")


def _has_version(registry: Registry, model_id: str) -> bool:
    model = registry.index().models.get(model_id)
    return model is not None and VERSION in model.versions


@pytest.fixture(scope="session")
def polar_registry(embedded: Registry, tmp_path_factory: pytest.TempPathFactory) -> Registry:
    """The embedded registry if it has 1.4.0 of the fast models, else a temporary one built here.

    ``$MODELSTORE_TEST_POLARIMETRY_REGISTRY`` names a registry built earlier (saves the build).
    """
    if all(_has_version(embedded, m) for m in FAST_MODELS):
        return embedded
    prebuilt = os.environ.get("MODELSTORE_TEST_POLARIMETRY_REGISTRY")
    if prebuilt:
        return Registry(prebuilt)
    pytest.importorskip(
        "polarimetry", reason="1.4.0 is not published and upstream is not installed"
    )
    return build_temporary_registry(tmp_path_factory.mktemp("polar-registry"), FAST_MODELS)


def build_temporary_registry(root, model_ids) -> Registry:
    from modelstore.publish.build import build_model
    from modelstore.trust.own_key import own_signing_key

    registry = Registry(root)
    index = {e.model_id: i for i, e in enumerate(LHCB_MODELS)}
    for model_id in model_ids:
        manifest, blobs = build_model(index[model_id], VERSION)
        assert registry.publish(manifest, blobs) == "published"
    registry.sign([own_signing_key()])  # as `modelstore publish` does: trusted to run its C here
    return registry


def model_of(registry: Registry, model_id: str, backend: str):
    return published_model(model_id, version=VERSION, backend=backend, registry=registry)


def inside_and_outside(model, n: int, seed: int) -> tuple[np.ndarray, np.ndarray, int]:
    p = model.parameters
    masses = p["m0"], p["m1"], p["m2"], p["m3"]
    s1_in, s2_in = sample_dalitz(n, *masses, seed=seed)
    rng = np.random.default_rng(seed)
    s1 = rng.uniform(0.2, 2.2, n)
    s2 = rng.uniform(1.8, 5.0, n)
    outside = ~dalitz_contains(s1, s2, *masses)
    return np.concatenate([s1_in, s1[outside]]), np.concatenate([s2_in, s2[outside]]), n


# -- fast: the published forms, sources and reference values --------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("model_id", FAST_MODELS)
def test_stored_alpha_reference_is_reproduced_by_every_backend(polar_registry, model_id, backend):
    model = model_of(polar_registry, model_id, backend)
    reference = model.reference()
    assert set(ALPHA) <= set(reference)
    expected = np.stack([reference[k] for k in ALPHA], axis=-1)
    intensity, alpha = model.intensity_and_polarimeter(reference["sigma1"], reference["sigma2"])
    assert alpha.shape == (reference["sigma1"].size, 3)
    assert np.array_equal(np.isnan(alpha), np.isnan(expected))
    inside = ~np.isnan(expected[:, 0])
    assert inside.sum() > 300 and (~inside).sum() > 50
    np.testing.assert_allclose(alpha[inside], expected[inside], rtol=0, atol=1e-9)
    np.testing.assert_allclose(intensity[inside], reference["intensity"][inside], rtol=1e-9)
    np.testing.assert_array_equal(
        model.polarimeter(reference["sigma1"], reference["sigma2"]), alpha
    )


@pytest.mark.parametrize("model_id", FAST_MODELS)
def test_alpha_is_at_most_one_inside_and_nan_exactly_outside(polar_registry, model_id):
    model = model_of(polar_registry, model_id, "native")
    s1, s2, n_inside = inside_and_outside(model, 20_000, seed=3)
    alpha = model.polarimeter(s1, s2)
    assert not np.isnan(alpha[:n_inside]).any()
    assert np.isnan(alpha[n_inside:]).all() and alpha.shape[0] > n_inside + 1000
    norm = np.linalg.norm(alpha[:n_inside], axis=-1)
    assert norm.max() <= 1 + 1e-12
    assert norm.max() > 0.9  # a strongly polarising model somewhere on the Dalitz plot


@pytest.mark.parametrize(
    "model_id", ["default", pytest.param("ls-couplings", marks=pytest.mark.slow)]
)  # ls-couplings: 46 s of CI (the C and array program of the LS-couplings structure)
def test_sources_regenerate_byte_for_byte_from_the_forms(polar_registry, model_id):
    from modelstore._native.source import generate_c_source
    from modelstore.format.arraycode import generate_array_source
    from modelstore.format.polarimetry_forms import polarimetry_srepr

    model = model_of(polar_registry, model_id, "numpy")
    names = [p.name for p in model.manifest.parameters]
    pickled = model.load_forms("pickle")
    from_text = model.load_forms("srepr")
    assert generate_c_source(pickled, names).encode() == polar_registry.read_file(
        model.manifest, "native-source"
    )
    assert generate_array_source(from_text, names).encode() == polar_registry.read_file(
        model.manifest, "array-source"
    )
    assert polarimetry_srepr(pickled).encode() == polar_registry.read_file(
        model.manifest, "polarimetry-srepr"
    )
    assert pickled["polarimetry"]["intensity"] == from_text["polarimetry"]["intensity"]
    assert tuple(pickled["polarimetry"]["alpha_numerators"]) == tuple(
        from_text["polarimetry"]["alpha_numerators"]
    )
    assert pickled["amplitudes"] == from_text["amplitudes"]
    assert len(pickled["amplitudes"]) == 12


def test_the_polarimetry_pickle_holds_only_allow_listed_sympy_classes(polar_registry):
    import importlib

    import sympy as sp

    from modelstore.format.unpickle import ALLOWED_GLOBALS, load_model_pickle

    model = model_of(polar_registry, "default", "numpy")
    data = polar_registry.read_file(model.manifest, "expressions")
    forms = load_model_pickle(data, "default 1.4.0 pickle")
    assert {"amplitudes", "polarimetry", "intensity_expr", "variables"} <= set(forms)
    for module, name in ALLOWED_GLOBALS:  # no class was added for polarimetry that is not sympy
        if module.startswith("sympy"):
            assert issubclass(getattr(importlib.import_module(module), name), sp.Basic)


def test_native_source_keeps_ms_evaluate_bit_for_bit(polar_registry, embedded):
    new = model_of(polar_registry, "default", "native")
    assert new.evaluator.abi == 4
    old = published_model("default", version="1.3.0", backend="native", registry=embedded)
    s1, s2, _ = inside_and_outside(new, 5_000, seed=11)
    np.testing.assert_array_equal(new.intensity(s1, s2), old.intensity(s1, s2))
    intensity, _ = new.intensity_and_polarimeter(s1, s2)
    inside = ~np.isnan(intensity)
    np.testing.assert_allclose(intensity[inside], old.intensity(s1, s2)[inside], rtol=1e-11)


def test_every_instruction_set_gives_identical_alpha(polar_registry):
    model = model_of(polar_registry, "default", "native")
    evaluator = model.evaluator
    s1, s2, _ = inside_and_outside(model, 3_000, seed=2)
    results = []
    try:
        for isa in ("avx512", "avx2", "portable"):
            evaluator.limit_isa(isa)
            results.append(model.polarimeter(s1, s2))
    finally:
        evaluator.limit_isa("avx512")
    for other in results[1:]:
        np.testing.assert_array_equal(other, results[0])


def test_parameter_overrides_change_alpha_consistently_across_backends(polar_registry):
    models = {b: model_of(polar_registry, "default", b) for b in BACKENDS}
    s1, s2, _ = inside_and_outside(models["numpy"], 500, seed=7)
    name = next(n for n, v in models["numpy"].parameters.items() if isinstance(v, complex))
    value = models["numpy"].parameters[name] * (0.5 + 0.8j)
    overrides = {name: value, "m_{K(892)}": 0.9}
    baseline = models["numpy"].polarimeter(s1, s2)
    changed = {b: m.polarimeter(s1, s2, **overrides) for b, m in models.items()}
    assert np.nanmax(np.abs(changed["numpy"] - baseline)) > 1e-3
    for backend in ("native", "jax"):
        np.testing.assert_allclose(
            changed[backend], changed["numpy"], rtol=0, atol=1e-11, err_msg=backend
        )
    # the defaults are back on the next call
    np.testing.assert_array_equal(models["numpy"].polarimeter(s1, s2), baseline)
    with pytest.raises(InvalidInputError, match="unknown parameters"):
        models["numpy"].polarimeter(s1, s2, not_a_parameter=1.0)


@pytest.mark.parametrize("backend", BACKENDS)
def test_shapes_broadcasting_and_chunks(polar_registry, backend, monkeypatch):
    model = model_of(polar_registry, "default", backend)
    scalar = model.polarimeter(1.0, 3.0)
    assert scalar.shape == (3,) and not np.isnan(scalar).any()
    intensity, alpha = model.intensity_and_polarimeter(1.0, 3.0)
    np.testing.assert_allclose(alpha, scalar, rtol=0, atol=1e-13)
    assert isinstance(intensity, float) and intensity == pytest.approx(
        model.intensity(1.0, 3.0), rel=1e-11
    )
    grid = model.polarimeter(np.linspace(0.5, 1.7, 7)[:, None], np.linspace(2.5, 4.0, 5)[None, :])
    assert grid.shape == (7, 5, 3)
    point = model.polarimeter(np.linspace(0.5, 1.7, 7)[3], np.linspace(2.5, 4.0, 5)[2])
    np.testing.assert_allclose(grid[3, 2], point, rtol=0, atol=1e-13)  # XLA compiles per length
    s1, s2, _ = inside_and_outside(model, 1_000, seed=5)
    whole = model.polarimeter(s1, s2)
    monkeypatch.setattr(model.evaluator, "chunk_size", 256)
    np.testing.assert_allclose(
        model.polarimeter(s1[::-1].copy()[::-1], s2), whole, rtol=0, atol=1e-13
    )
    np.testing.assert_allclose(
        model.polarimeter(s1.astype(np.float32).astype(np.float64), s2)[:5],
        model.polarimeter(s1.astype(np.float32), s2)[:5],
        rtol=0,
        atol=1e-13,
    )
    with pytest.raises(InvalidInputError):
        model.polarimeter(np.array([1 + 1j]), np.array([3.0]))


@pytest.mark.parametrize("backend", BACKENDS)
def test_versions_before_1_4_0_say_polarimetry_needs_1_4_0(embedded, backend):
    model = published_model("default", version="1.3.0", backend=backend, registry=embedded)
    with pytest.raises(BackendUnavailableError, match=r"1\.4\.0"):
        model.polarimeter(1.0, 3.0)
    with pytest.raises(BackendUnavailableError, match=r"1\.4\.0"):
        model.intensity_and_polarimeter(1.0, 3.0)


def test_reference_reader_needs_all_three_alpha_arrays_or_none(polar_registry, embedded):
    from modelstore.format.reference import read_reference, write_reference

    old = published_model("default", version="1.3.0", registry=embedded).reference()
    assert set(old) == {"sigma1", "sigma2", "intensity"}
    data = polar_registry.read_file(
        model_of(polar_registry, "default", "numpy").manifest, "reference-values"
    )
    arrays = read_reference(data)
    assert set(arrays) == {"sigma1", "sigma2", "intensity", *ALPHA}
    again = write_reference(arrays, {"model_id": "x"})
    assert set(read_reference(again)) == set(arrays)
    # drop alpha_y from the zip: refused
    source = zipfile.ZipFile(io.BytesIO(again))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for info in source.infolist():
            if not info.filename.startswith("alpha_y/"):
                zf.writestr(info, source.read(info))
    with pytest.raises(IntegrityError, match="alpha"):
        read_reference(buffer.getvalue())
    # an alpha array of another length: refused
    bad = dict(arrays, alpha_z=arrays["alpha_z"][:-1])
    with pytest.raises(IntegrityError, match="equal length"):
        read_reference(write_reference(bad, {"model_id": "x"}))


# -- against upstream ---------------------------------------------------------------------------


@functools.lru_cache(maxsize=4)
def _upstream(upstream_index: int):
    from pathlib import Path

    import polarimetry
    from polarimetry.lhcb import load_model_builder
    from polarimetry.lhcb.particle import load_particles

    from modelstore.format.polarimetry_forms import upstream_alpha_expressions

    data_dir = Path(polarimetry.__file__).parent / "lhcb"
    particles = load_particles(data_dir / "particle-definitions.yaml")
    builder = load_model_builder(data_dir / "model-definitions.yaml", particles, upstream_index)
    model = polarimetry.published_model(upstream_index)
    return model, upstream_alpha_expressions(model, builder)


def upstream_alpha(upstream_index: int, sigma1: np.ndarray, sigma2: np.ndarray) -> np.ndarray:
    from modelstore.publish.build import _upstream_reference

    model, expressions = _upstream(upstream_index)
    return np.stack([_upstream_reference(model, e, sigma1, sigma2) for e in expressions], axis=-1)


def check_against_upstream(registry: Registry, model_id: str) -> None:
    upstream_index = next(i for i, e in enumerate(LHCB_MODELS) if e.model_id == model_id)
    models = {b: model_of(registry, model_id, b) for b in BACKENDS}
    sigma1, sigma2, n_inside = inside_and_outside(models["native"], 400, seed=upstream_index)
    expected = upstream_alpha(upstream_index, sigma1, sigma2)
    assert not np.isnan(expected[:n_inside]).any()
    assert np.isnan(expected[n_inside:]).all() and expected.shape[0] > n_inside + 50
    for backend, model in models.items():
        alpha = model.polarimeter(sigma1, sigma2)
        assert np.array_equal(np.isnan(alpha), np.isnan(expected)), backend
        np.testing.assert_allclose(
            alpha[:n_inside], expected[:n_inside], rtol=0, atol=1e-9, err_msg=backend
        )


@pytest.mark.upstream
@pytest.mark.parametrize(
    "model_id",
    # the LS-couplings build is upstream's slowest (45 s here): with the slow ones, by hand
    [pytest.param(m, marks=pytest.mark.slow) if m == "ls-couplings" else m for m in FAST_MODELS],
)
def test_alpha_agrees_with_upstream(polar_registry, model_id):
    check_against_upstream(polar_registry, model_id)


@pytest.mark.slow
@pytest.mark.upstream
@pytest.mark.parametrize("model_id", [e.model_id for e in LHCB_MODELS])
def test_alpha_of_every_model_agrees_with_upstream(embedded, model_id):
    if not _has_version(embedded, model_id):
        pytest.skip(f"{model_id}@{VERSION} is not published")
    check_against_upstream(embedded, model_id)


@pytest.mark.slow
@pytest.mark.upstream
def test_a_temporary_registry_built_from_upstream_agrees(tmp_path):
    """The whole path without the embedded registry: build, publish, evaluate, compare."""
    pytest.importorskip("polarimetry")
    registry = build_temporary_registry(tmp_path / "registry", ["default"])
    check_against_upstream(registry, "default")


def test_intensity_only_sources_of_1_3_0_still_regenerate_byte_for_byte(embedded):
    """The multi-output refactor leaves the single-output C and array sources (ABI 3) unchanged."""
    from modelstore._native.source import generate_c_source
    from modelstore.format.arraycode import generate_array_source

    model = published_model("default", version="1.3.0", registry=embedded)
    names = [p.name for p in model.manifest.parameters]
    forms = model.load_forms("srepr")
    assert generate_c_source(forms, names).encode() == embedded.read_file(
        model.manifest, "native-source"
    )
    assert generate_array_source(forms, names).encode() == embedded.read_file(
        model.manifest, "array-source"
    )


@pytest.mark.parametrize(
    "text",
    [
        "Tuple(Integer(1), Integer(2))",
        "Tuple(Tuple(), Integer(1), Tuple(Integer(1), Integer(2)))",
        "Tuple(Tuple(Tuple(Symbol('A'), Integer(1))), Integer(1),"
        " Tuple(Integer(1), Integer(2), Integer(3)))",
        "__import__('os')",
    ],
)
def test_malformed_polarimetry_documents_are_refused(text):
    from modelstore.errors import ManifestError, SreprParseError
    from modelstore.format.polarimetry_forms import polarimetry_forms_from_srepr

    with pytest.raises((ManifestError, SreprParseError)):
        polarimetry_forms_from_srepr(text)
