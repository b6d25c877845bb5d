"""Build the published LHCb models from upstream's definitions and store them in a registry.

This is the only module that needs the upstream package (``pip install modelstore[publish]``):
it formulates each model with ``polarimetry-lc2pkpi`` (ampform-dpd), unfolds it once with
``doit``, and hands the forms to the one publish path for any model,
:func:`modelstore.publish.generic.build_forms`, with what only upstream knows: the reference
values by upstream's own route, the parameters' uncertainties and the sources' digests.
"""

from __future__ import annotations

import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from modelstore._native.emitter import LATEST_LOWERING
from modelstore.errors import MissingExtraError
from modelstore.format.names import check_version
from modelstore.format.polarimetry_forms import (
    formulate_polarimetry_forms,
    upstream_alpha_expressions,
)
from modelstore.format.reference import POLARIMETRY_ARRAYS, reference_points
from modelstore.progress import progress
from modelstore.publish.catalog import LHCB_MODELS, SEED_POINTS
from modelstore.publish.generic import build_forms
from modelstore.store.hashing import file_digest

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from modelstore.format.manifest import Manifest
    from modelstore.registry import Registry

__all__ = ["PublishResult", "build_model", "publish_models"]


@dataclass(frozen=True)
class PublishResult:
    model_id: str
    version: str
    status: str
    seconds: float


def _require_upstream() -> None:
    try:
        import polarimetry  # noqa: F401
    except ImportError:
        msg = "publishing needs the upstream package: pip install 'modelstore[publish]'"
        raise MissingExtraError(msg) from None


def _plain_number(value: Any) -> int | float | complex:
    if isinstance(value, complex):
        return complex(value)
    if isinstance(value, int | np.integer) and not isinstance(value, bool):
        return int(value)
    return float(value)


def _sigma3_via_12() -> dict[Any, Any]:
    import sympy as sp

    s1, s2, s3 = sp.symbols("sigma1:4", nonnegative=True)
    m0, m1, m2, m3 = sp.symbols("m:4", nonnegative=True)
    return {s3: m1**2 + m2**2 + m3**2 + m0**2 - s1 - s2}


def _upstream_reference(
    model: Any, intensity_expr: Any, sigma1: np.ndarray, sigma2: np.ndarray
) -> np.ndarray:
    """Evaluate the upstream model as upstream documents it (SympyDataTransformer + lambdify)."""
    from tensorwaves.data.transform import SympyDataTransformer
    from tensorwaves.function.sympy import create_parametrized_function

    *_, (s3, s3_expr) = model.invariants.items()
    definitions = dict(model.variables)
    definitions[s3] = s3_expr
    definitions = {
        symbol: expr.xreplace(definitions).xreplace(model.parameter_defaults)
        for symbol, expr in definitions.items()
    }
    transformer = SympyDataTransformer.from_sympy(definitions, backend="numpy")
    function = create_parametrized_function(
        intensity_expr, parameters=model.parameter_defaults, backend="numpy", use_cse=True
    )
    data = {"sigma1": sigma1, "sigma2": sigma2}
    with np.errstate(all="ignore"):
        completed = transformer(data)
        completed.update(data)
        return np.asarray(function(completed).real, dtype=np.float64)


def _uncertainty(measured: Any) -> dict[str, Any]:
    return {key: getattr(measured, key) for key in ("hesse", "model", "systematic")}


def build_model(
    upstream_index: int,
    version: str,
    *,
    native: bool = True,
    native_lowering: int = LATEST_LOWERING,
) -> tuple[Manifest, dict[str, bytes]]:
    """Formulate one upstream model and return its manifest and artifact bytes by role.

    ``native_lowering`` as in :func:`modelstore.publish.generic.build_forms` (1 reproduces the
    C sources of the versions published up to 1.4.0).

    Raises:
        ModelstoreError: the upstream model cannot be built or lowered, or fails the
            publish-time gate.
        MissingExtraError: the upstream package is not installed (``modelstore[publish]``).
    """
    _require_upstream()
    import polarimetry
    import sympy as sp
    from ampform.sympy import perform_cached_doit
    from polarimetry.lhcb import load_model_builder, load_model_parameters_with_uncertainties
    from polarimetry.lhcb.particle import load_particles

    entry = LHCB_MODELS[upstream_index]
    data_dir = Path(polarimetry.__file__).parent / "lhcb"
    model_file = data_dir / "model-definitions.yaml"
    particle_file = data_dir / "particle-definitions.yaml"
    model = polarimetry.published_model(upstream_index)
    particles = load_particles(particle_file)
    builder = load_model_builder(model_file, particles, upstream_index)
    measured = load_model_parameters_with_uncertainties(
        model_file, builder.decay, upstream_index, particles
    )
    intensity_expr = perform_cached_doit(model.full_expression)

    # Only sympy objects and builtins: a plain install (no ampform) can read every artifact.
    forms = {
        "intensity_expr": intensity_expr,
        "variables": {k: v.doit() for k, v in model.variables.items()},
        "parameter_defaults": {
            symbol: _plain_number(v) for symbol, v in model.parameter_defaults.items()
        },
        "sigma3": _sigma3_via_12(),
        **formulate_polarimetry_forms(model, builder),  # 1.4.0 on: "amplitudes", "polarimetry"
    }
    m0, m1, m2, m3 = (
        float(model.parameter_defaults[s])  # type: ignore[arg-type]
        for s in sp.symbols("m:4", nonnegative=True)
    )
    sigma1, sigma2 = reference_points(m0, m1, m2, m3, fixed=SEED_POINTS)
    reference_arrays = {
        "sigma1": sigma1,
        "sigma2": sigma2,
        "intensity": _upstream_reference(model, intensity_expr, sigma1, sigma2),
    }
    alpha = [
        _upstream_reference(model, a, sigma1, sigma2)
        for a in upstream_alpha_expressions(model, builder)
    ]
    reference_arrays.update(zip(POLARIMETRY_ARRAYS, alpha, strict=True))
    attributes = {
        "model_id": entry.model_id,
        "description": "intensity and polarimeter vector (reference subsystem 1) of the"
        " upstream model (tensorwaves numpy backend) at fixed points",
    }
    built = build_forms(
        forms,
        entry.model_id,
        version,
        title=entry.title,
        upstream_index=upstream_index,
        native=native,
        native_lowering=native_lowering,
        reference=(reference_arrays, attributes),
        uncertainties={str(k): _uncertainty(v) for k, v in measured.items()},
        provenance={
            "sources": {
                "model-definitions.yaml": file_digest(model_file),
                "particle-definitions.yaml": file_digest(particle_file),
            },
            "upstream": {
                "package": "polarimetry-lc2pkpi",
                "model_id": upstream_index,
                "title": entry.title,
            },
            "polarimetry": {
                "definition": "alpha_i = re(numerator_i / intensity) of"
                " formulate_polarimetry(builder, reference_subsystem=1);"
                " outputs intensity, alpha_x, alpha_y, alpha_z",
            },
        },
    )
    return built.manifest, built.blobs


def _publish_one(
    root: str, upstream_index: int, version: str, native: bool, native_lowering: int
) -> PublishResult:
    from modelstore.registry import Registry

    start = time.perf_counter()
    manifest, blobs = build_model(
        upstream_index, version, native=native, native_lowering=native_lowering
    )
    status = Registry(root).publish(manifest, blobs)
    return PublishResult(manifest.model_id, version, status, time.perf_counter() - start)


def publish_models(
    registry: Registry,
    upstream_indices: Iterable[int],
    version: str,
    *,
    jobs: int = 1,
    native: bool = True,
    native_lowering: int = LATEST_LOWERING,
    on_result: Callable[[PublishResult], None] | None = None,
) -> list[PublishResult]:
    """Build and publish the given upstream models, ``jobs`` at a time, in worker processes.

    A progress bar over the models shows on a terminal (`modelstore.progress`).
    ``native_lowering``: see :func:`build_model`.

    Raises:
        InvalidNameError: ``version`` is not ``MAJOR.MINOR.PATCH``.
        The errors of ``Registry.publish`` (PublishConflictError, RemoteError, ...).
    """
    check_version(version)
    _require_upstream()
    indices = list(upstream_indices)
    results = []
    if jobs <= 1:
        for i in progress(indices, desc="publishing", unit=" models"):
            result = _publish_one(str(registry.root), i, version, native, native_lowering)
            if on_result:
                on_result(result)
            results.append(result)
        return results
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        futures = [
            pool.submit(_publish_one, str(registry.root), i, version, native, native_lowering)
            for i in indices
        ]
        for future in progress(futures, desc="publishing", unit=" models"):
            result = future.result()
            if on_result:
                on_result(result)
            results.append(result)
    return results
