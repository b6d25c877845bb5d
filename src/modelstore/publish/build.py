"""Build the published LHCb models from upstream's definitions and store them in a registry.

This is the only module that needs the upstream package (``pip install modelstore[publish]``):
it formulates each model with ``polarimetry-lc2pkpi`` (ampform-dpd), unfolds it once with
``doit``, and writes the artifacts described in docs/format.md.
"""

from __future__ import annotations

import platform
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from modelstore.errors import MissingExtraError, ModelstoreError
from modelstore.format.arraycode import generate_array_source
from modelstore.format.forms import kinematics_srepr
from modelstore.format.manifest import FileEntry, Manifest, Parameter
from modelstore.format.names import check_version
from modelstore.format.polarimetry_forms import (
    check_program_against,
    formulate_polarimetry_forms,
    polarimetry_srepr,
    upstream_alpha_expressions,
)
from modelstore.format.reference import POLARIMETRY_ARRAYS, reference_points, write_reference
from modelstore.format.unpickle import load_model_pickle
from modelstore.publish.catalog import LHCB_MODELS
from modelstore.store.hashing import bytes_digest, file_digest

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from modelstore.registry import Registry

__all__ = ["PublishResult", "build_model", "publish_models"]

INPUTS = ("sigma1", "sigma2")
PROVENANCE_PACKAGES = (
    "sympy", "cloudpickle", "ampform", "ampform-dpd", "polarimetry-lc2pkpi", "numpy",
    "tensorwaves", "zarr", "modelstore",
)  # fmt: skip


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


def _versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in PROVENANCE_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def _encode_parameter(name: str, value: Any, measured: Any | None) -> Parameter:
    dtype: Literal["float64", "complex128", "int64"]
    convert: Callable[[Any], Any]
    if isinstance(value, complex):
        dtype, convert = "complex128", complex
    elif isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        dtype, convert = "int64", int
    else:
        dtype, convert = "float64", float
    uncertainty = None
    if measured is not None:
        uncertainty = {
            key: None if getattr(measured, key) is None else convert(getattr(measured, key))
            for key in ("hesse", "model", "systematic")
        }
    return Parameter(name, dtype, convert(value), uncertainty)


def _plain_number(value: Any) -> int | float | complex:
    if isinstance(value, complex):
        return complex(value)
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
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


def build_model(
    upstream_index: int, version: str, *, native: bool = True
) -> tuple[Manifest, dict[str, bytes]]:
    """Formulate one upstream model and return its manifest and artifact bytes by role.

    Raises:
        ModelstoreError: the upstream model cannot be built or lowered.
        MissingExtraError: the upstream package is not installed (``modelstore[publish]``).
    """
    _require_upstream()
    import cloudpickle
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
    srepr_bytes = sp.srepr(intensity_expr).encode("utf-8")
    pickle_bytes = cloudpickle.dumps(forms, protocol=5)
    load_model_pickle(pickle_bytes, f"{entry.model_id} pickle")  # the allow-list admits it

    names = [str(symbol) for symbol in model.parameter_defaults]
    if len(set(names)) != len(names):
        msg = f"{entry.model_id}: two parameters print to the same name"
        raise ModelstoreError(msg)
    measured_by_name = {str(k): v for k, v in measured.items()}
    parameters = tuple(
        _encode_parameter(str(symbol), value, measured_by_name.get(str(symbol)))
        for symbol, value in sorted(model.parameter_defaults.items(), key=lambda kv: str(kv[0]))
    )

    masses = {
        str(s): float(model.parameter_defaults[s])  # type: ignore[arg-type]
        for s in sp.symbols("m:4", nonnegative=True)
    }
    sigma1, sigma2 = reference_points(masses["m0"], masses["m1"], masses["m2"], masses["m3"])
    intensity = _upstream_reference(model, intensity_expr, sigma1, sigma2)
    alpha = [
        _upstream_reference(model, a, sigma1, sigma2)
        for a in upstream_alpha_expressions(model, builder)
    ]
    reference_arrays = {"sigma1": sigma1, "sigma2": sigma2, "intensity": intensity}
    reference_arrays.update(zip(POLARIMETRY_ARRAYS, alpha, strict=True))
    reference_bytes = write_reference(
        reference_arrays,
        {
            "model_id": entry.model_id,
            "description": "intensity and polarimeter vector (reference subsystem 1) of the"
            " upstream model (tensorwaves numpy backend) at fixed points",
        },
    )
    parameter_names = [p.name for p in parameters]
    blobs = {
        "expressions": pickle_bytes,
        "intensity-srepr": srepr_bytes,
        "reference-values": reference_bytes,
        "kinematics-srepr": kinematics_srepr(forms, parameter_names).encode("utf-8"),
        "array-source": generate_array_source(forms, parameter_names).encode("utf-8"),
        "polarimetry-srepr": polarimetry_srepr(forms).encode("utf-8"),
    }
    # the gate: the new polarimeter program agrees with upstream's route at the reference points
    check_program_against(
        blobs["array-source"].decode(),
        parameters,
        sigma1,
        sigma2,
        reference_arrays,
        f"{entry.model_id} polarimetry",
    )
    if native:
        from modelstore.backends._native.source import generate_c_source

        blobs["native-source"] = generate_c_source(forms, parameter_names).encode()
    manifest = Manifest(
        model_id=entry.model_id,
        version=version,
        title=entry.title,
        upstream_index=upstream_index,
        inputs=INPUTS,
        parameters=parameters,
        files=tuple(FileEntry.for_bytes(role, data) for role, data in blobs.items()),
        provenance={
            "expression_digest": bytes_digest(srepr_bytes),
            "expression_form": "sympy srepr of the unfolded intensity expression",
            "sources": {
                "model-definitions.yaml": file_digest(model_file),
                "particle-definitions.yaml": file_digest(particle_file),
            },
            "versions": _versions(),
            "upstream": {
                "package": "polarimetry-lc2pkpi",
                "model_id": upstream_index,
                "title": entry.title,
            },
            "polarimetry": {
                "digest": bytes_digest(blobs["polarimetry-srepr"]),
                "definition": "alpha_i = re(numerator_i / intensity) of"
                " formulate_polarimetry(builder, reference_subsystem=1);"
                " outputs intensity, alpha_x, alpha_y, alpha_z",
                "reference_subsystem": 1,
            },
        },
    )
    return manifest, blobs


def _publish_one(root: str, upstream_index: int, version: str, native: bool) -> PublishResult:
    from modelstore.registry import Registry

    start = time.perf_counter()
    manifest, blobs = build_model(upstream_index, version, native=native)
    status = Registry(root).publish(manifest, blobs)
    return PublishResult(manifest.model_id, version, status, time.perf_counter() - start)


def publish_models(
    registry: Registry,
    upstream_indices: Iterable[int],
    version: str,
    *,
    jobs: int = 1,
    native: bool = True,
    on_result: Callable[[PublishResult], None] | None = None,
) -> list[PublishResult]:
    """Build and publish the given upstream models, ``jobs`` at a time, in worker processes.

    Raises:
        InvalidNameError: ``version`` is not ``MAJOR.MINOR.PATCH``.
        The errors of ``Registry.publish`` (PublishConflictError, RemoteError, ...).
    """
    check_version(version)
    _require_upstream()
    indices = list(upstream_indices)
    results = []
    if jobs <= 1:
        for i in indices:
            result = _publish_one(str(registry.root), i, version, native)
            if on_result:
                on_result(result)
            results.append(result)
        return results
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        futures = [
            pool.submit(_publish_one, str(registry.root), i, version, native) for i in indices
        ]
        for future in futures:
            result = future.result()
            if on_result:
                on_result(result)
            results.append(result)
    return results
