"""One publish path for any model: the seed's dict of forms in, a verified version out.

:func:`build_forms` turns checked forms into the artifacts of docs/format.md (pickle, srepr,
kinematics, array program, C source, reference values, polarimetry forms where the forms have
them) and runs the publish-time gate (:mod:`modelstore.publish.gate`); :func:`publish_forms`
stores the result in a registry. The LHCb catalog (``publish/build.py``) is a client of the
same function: it passes its upstream reference values and provenance, nothing else differs.
"""

from __future__ import annotations

import platform
import time
from dataclasses import dataclass, field
from importlib import metadata
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from modelstore._native.emitter import LATEST_LOWERING
from modelstore._native.source import LOWERING_KEY
from modelstore.format.arraycode import generate_array_source
from modelstore.format.forms import kinematics_srepr
from modelstore.format.manifest import FileEntry, Manifest, Parameter
from modelstore.format.names import check_model_id, check_version
from modelstore.format.reference import POLARIMETRY_ARRAYS, reference_points, write_reference
from modelstore.progress import step
from modelstore.publish.forms_check import CheckedForms, check_forms, load_forms_pickle
from modelstore.publish.gate import independent_alpha, run_gate, staged_intensity
from modelstore.store.hashing import bytes_digest

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence
    from os import PathLike

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from modelstore.format.about import About
    from modelstore.registry import Registry

__all__ = ["BuiltVersion", "PublishOutcome", "build_forms", "provenance_versions", "publish_forms"]

INPUTS = ("sigma1", "sigma2")
PROVENANCE_PACKAGES = (
    "sympy", "cloudpickle", "ampform", "ampform-dpd", "polarimetry-lc2pkpi", "numpy",
    "tensorwaves", "zarr", "modelstore",
)  # fmt: skip
EXPRESSION_FORM = "sympy srepr of the unfolded intensity expression"
ROUTE = (
    "sympy lambdify (numpy) of the variables, then of the intensity of them with sigma3 and the"
    " parameters substituted"
)
POLARIMETRY_DEFINITION = (
    "alpha_i = re(numerator_i / intensity) of the forms' polarimetry entry (amplitudes"
    " substituted); outputs intensity, alpha_x, alpha_y, alpha_z"
)


@dataclass(frozen=True)
class BuiltVersion:
    """A built, gate-checked version: its manifest, its files by role, the gate's figures."""

    manifest: Manifest
    blobs: dict[str, bytes]
    gate: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0


@dataclass(frozen=True)
class PublishOutcome:
    """What :func:`publish_forms` did: ``published`` or ``unchanged``, and how long it took."""

    status: Literal["published", "unchanged"]
    manifest: Manifest
    gate: dict[str, float]
    seconds: float

    @property
    def ref(self) -> str:
        return f"{self.manifest.model_id}@{self.manifest.version}"


def provenance_versions() -> dict[str, str]:
    """Python's and each producing package's version ("not installed" if absent).

    Never raises.
    """
    versions = {"python": platform.python_version()}
    for name in PROVENANCE_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def _encode_parameter(name: str, value: Any, uncertainty: Mapping[str, Any] | None) -> Parameter:
    dtype: Literal["float64", "complex128", "int64"]
    convert: Callable[[Any], Any]
    if isinstance(value, complex):
        dtype, convert = "complex128", complex
    elif isinstance(value, int | np.integer) and not isinstance(value, bool):
        dtype, convert = "int64", int
    else:
        dtype, convert = "float64", float
    encoded = None
    if uncertainty is not None:
        encoded = {
            key: None if uncertainty.get(key) is None else convert(uncertainty[key])
            for key in ("hesse", "model", "systematic")
        }
    return Parameter(name, dtype, convert(value), encoded)


def _generic_reference(
    checked: CheckedForms, model_id: str, route: Callable[[np.ndarray, np.ndarray], np.ndarray]
) -> tuple[dict, dict]:
    sigma1, sigma2 = reference_points(*checked.masses)
    arrays = {"sigma1": sigma1, "sigma2": sigma2, "intensity": route(sigma1, sigma2)}
    if checked.has_polarimetry:
        alpha = independent_alpha(checked.forms)
        arrays.update(
            (name, f(sigma1, sigma2)) for name, f in zip(POLARIMETRY_ARRAYS, alpha, strict=True)
        )
    attributes = {
        "model_id": model_id,
        "description": f"intensity at fixed points by {ROUTE}",
    }
    return arrays, attributes


def build_forms(
    forms: Mapping[str, Any],
    model_id: str,
    version: str,
    *,
    title: str | None = None,
    about: About | None = None,
    native: bool = True,
    native_lowering: int = LATEST_LOWERING,
    reference: tuple[Mapping[str, np.ndarray], Mapping[str, Any]] | None = None,
    uncertainties: Mapping[str, Mapping[str, Any]] | None = None,
    provenance: Mapping[str, Any] | None = None,
    upstream_index: int | None = None,
) -> BuiltVersion:
    """Check ``forms``, write every artifact, and run the publish-time gate.

    ``reference`` (arrays by name, zarr attributes) replaces the stored reference values, which
    are otherwise sympy's lambdify of the substituted intensity on the reference grid; the gate
    compares the programs with sympy's route either way, and with the stored values too.
    ``native_lowering`` is how the C source is lowered (``modelstore._native.emitter``;
    recorded in the provenance where it is not 1, the lowering of every version published
    before lowering 2); the array program is always lowered as before.

    Raises:
        InvalidNameError: ``model_id`` or ``version`` does not follow the grammar.
        InvalidInputError: the forms are unusable (see ``check_forms``), or NaN at every point
            inside the Dalitz region.
        UnsafePickleError: the forms hold something the allow-listed unpickler refuses.
        ModelstoreError: an expression has no C/array translation, or a program disagrees
            with sympy's lambdify (the message names the worst point).
        BackendUnavailableError: ``native`` and no C compiler to check the C source with.
    """
    import cloudpickle
    import sympy as sp

    start = time.perf_counter()
    check_model_id(model_id)
    check_version(version)
    where = f"{model_id}@{version}"
    checked = check_forms(dict(forms), where)
    forms = checked.forms
    pickle_bytes = cloudpickle.dumps(forms, protocol=5)
    load_forms_pickle(pickle_bytes, f"{where} forms")  # the allow-list admits what we publish
    srepr_bytes = sp.srepr(forms["intensity_expr"]).encode("utf-8")
    parameters = tuple(
        _encode_parameter(str(s), v, (uncertainties or {}).get(str(s)))
        for s, v in sorted(forms["parameter_defaults"].items(), key=lambda kv: str(kv[0]))
    )
    names = [p.name for p in parameters]
    route = staged_intensity(forms)
    if reference is None:
        arrays, attributes = _generic_reference(checked, model_id, route)
    else:
        arrays, attributes = dict(reference[0]), dict(reference[1])
    blobs = {
        "expressions": pickle_bytes,
        "intensity-srepr": srepr_bytes,
        "reference-values": write_reference(arrays, attributes),
        "kinematics-srepr": kinematics_srepr(forms, names).encode("utf-8"),
        "array-source": generate_array_source(forms, names).encode("utf-8"),
    }
    if checked.has_polarimetry:
        from modelstore.format.polarimetry_forms import check_program_against, polarimetry_srepr

        blobs["polarimetry-srepr"] = polarimetry_srepr(forms).encode("utf-8")
        check_program_against(
            blobs["array-source"].decode(), parameters, arrays["sigma1"], arrays["sigma2"],
            arrays, f"{where} polarimetry",
        )  # fmt: skip
    if native:
        from modelstore._native.source import generate_c_source

        blobs["native-source"] = generate_c_source(forms, names, native_lowering).encode()
    gate = run_gate(checked, blobs, parameters, arrays, where, route)

    recorded: dict[str, Any] = {
        "expression_digest": bytes_digest(srepr_bytes),
        "expression_form": EXPRESSION_FORM,
        "versions": provenance_versions(),
    }
    extra = dict(provenance or {})
    if checked.has_polarimetry:
        recorded["polarimetry"] = {
            "digest": bytes_digest(blobs["polarimetry-srepr"]),
            "definition": POLARIMETRY_DEFINITION,
            "reference_subsystem": 1,
            **extra.pop("polarimetry", {}),
        }
    if reference is None:
        recorded["reference"] = ROUTE
    if native and native_lowering != 1:
        recorded[LOWERING_KEY] = native_lowering
    recorded.update(extra)
    manifest = Manifest(
        model_id=model_id,
        version=version,
        title=title if title is not None else (about.decay if about and about.decay else model_id),
        upstream_index=upstream_index,
        inputs=INPUTS,
        parameters=parameters,
        files=tuple(FileEntry.for_bytes(role, data) for role, data in blobs.items()),
        provenance=recorded,
        about=None if about is None or about.is_empty() else about,
    )
    return BuiltVersion(manifest, blobs, dict(gate), time.perf_counter() - start)


def _as_forms(model: Any) -> tuple[dict[str, Any], About | None]:
    """A dict of forms as it is; an ampform-dpd model or builder through the adapter (with its
    ``about``)."""
    from modelstore.publish.ampform_adapter import (
        about_ampform_dpd,
        forms_from_ampform_dpd,
        forms_from_ampform_dpd_builder,
        is_ampform_dpd_builder,
        is_ampform_dpd_model,
    )

    if isinstance(model, dict):
        return model, None
    if is_ampform_dpd_builder(model):  # its model, and α⃗'s forms for a spin-1/2 decay
        forms, amplitude_model = forms_from_ampform_dpd_builder(model)
        return forms, about_ampform_dpd(amplitude_model)
    if not is_ampform_dpd_model(model):
        return model, None  # check_forms says what is wrong with anything else
    return forms_from_ampform_dpd(model), about_ampform_dpd(model)


def _merge_about(derived: About | None, given: Mapping[str, Any]) -> About | None:
    from dataclasses import replace

    from modelstore.format.about import About, Particle

    about = derived or About()
    changes: dict[str, Any] = {}
    for key, given_value in given.items():
        if given_value is None or given_value == () or given_value == []:
            continue
        value: Any = given_value
        if key == "particles":
            value = tuple(
                p
                if isinstance(p, Particle)
                else Particle(*p)
                if isinstance(p, tuple)
                else Particle(p)
                for p in given_value
            )
        elif key in ("references", "authors"):
            value = tuple(given_value)
        elif key == "packages":
            value = tuple(sorted({**dict(about.packages), **dict(given_value)}.items()))
        changes[key] = value
    merged = replace(about, **changes)
    return About.from_dict(merged.to_dict(), "about")  # the same checks as a manifest read


def publish_forms(
    forms: Any,
    model_id: str,
    version: str,
    *,
    registry: Registry | str | PathLike[str] | None = None,
    title: str | None = None,
    decay: str | None = None,
    particles: Sequence[Any] = (),
    description: str | None = None,
    references: Sequence[str] = (),
    authors: Sequence[str] = (),
    license: str | None = None,
    packages: Mapping[str, str] | None = None,
    native: bool = True,
    signing_keys: Sequence[Ed25519PrivateKey] | None = None,
) -> PublishOutcome:
    """Publish a model's forms (the seed's dict, an ampform-dpd ``AmplitudeModel`` or builder).

    ``forms`` is ``{"intensity_expr", "variables", "parameter_defaults", "sigma3"}`` as the seed
    recipe exports it (unfolded with ``doit``); an ampform-dpd model is turned into that dict
    (needs ampform-dpd, imported only then); an ampform-dpd ``DalitzPlotDecompositionBuilder``
    gives its model and, for a spin-½ decaying particle, the polarimeter α⃗ too. ``particles``
    are the 4 labels (or ``(label, mass)``) of 0 → 1 2 3; the other keywords fill the
    manifest's ``about``.
    Publishing the same forms again under an existing version is ``unchanged``. The new index
    is signed with ``signing_keys``; by default with your own key (``trust.own_key``), so your
    registry is trusted to run its code here; ``()`` leaves it unsigned (data-only elsewhere).
    On a terminal, a line before and after the build and the write (`modelstore.progress`).

    Raises:
        InvalidNameError: ``model_id`` or ``version`` does not follow the grammar.
        InvalidInputError: unusable forms (one line naming the problem), or NaN everywhere.
        UnsafePickleError: the forms hold a class outside the allow-list (not unfolded).
        ManifestError: the ``about`` fields are malformed.
        ModelstoreError: a generated program disagrees with sympy's lambdify.
        BackendUnavailableError: ``native`` and no C compiler here (or ampform-dpd missing).
        PublishConflictError: the version exists with other content, or the id names another
            model in this registry.
        RemoteError: the registry is not a local folder.
    """
    from modelstore.registry import Registry, default_registry

    start = time.perf_counter()
    check_model_id(model_id)
    check_version(version)
    plain, derived = _as_forms(forms)
    about = _merge_about(
        derived,
        {
            "decay": decay, "particles": particles, "description": description,
            "references": references, "authors": authors, "license": license,
            "packages": packages,
        },
    )  # fmt: skip
    ref = f"{model_id}@{version}"
    with step(f"building {ref}: array program{', C source' if native else ''}, checks"):
        built = build_forms(plain, model_id, version, title=title, about=about, native=native)
    if registry is None:
        target = default_registry()
    elif isinstance(registry, Registry):
        target = registry
    else:
        target = Registry(registry)
    if signing_keys is None:
        from modelstore.trust.own_key import own_signing_key

        signing_keys = [own_signing_key()]
    with step(f"writing {ref} to {target.location}"):
        status = target.publish(built.manifest, built.blobs, signing_keys)
    return PublishOutcome(status, built.manifest, built.gate, time.perf_counter() - start)


def read_forms_file(data: bytes, where: str) -> dict[str, Any]:
    """The forms in a pickle file's bytes, through the allow-listed unpickler.

    Raises:
        UnsafePickleError: a global outside the allow-list (an ampform class: use ``doit()``).
    """
    return load_forms_pickle(data, where)
