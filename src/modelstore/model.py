"""A published model loaded from a registry, and `published_model`, the way to get one."""

from __future__ import annotations

import os
from functools import cached_property
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from modelstore.backends.base import chunk_as_float64
from modelstore.errors import InvalidInputError, InvalidNameError
from modelstore.registry import Registry, default_registry

if TYPE_CHECKING:
    from collections.abc import Mapping

    from modelstore.backends.base import Evaluator
    from modelstore.fit.function import ModelFunction
    from modelstore.format.manifest import Manifest, Parameter, ParameterValue

__all__ = ["PublishedModel", "published_model"]

_V = TypeVar("_V")


class PublishedModel:
    """One verified model version: manifest, parameters, expressions and an evaluator.

    Files are read and checked against the manifest only when first needed; each is verified
    on the very bytes that are then unpickled, parsed or compiled.
    """

    def __init__(self, registry: Registry, manifest: Manifest, backend: str = "auto") -> None:
        self.registry = registry
        self.manifest = manifest
        self._backend_name = backend

    def __repr__(self) -> str:
        return f"<PublishedModel {self.ref} backend={self._backend_name!r}>"

    @property
    def ref(self) -> str:
        return f"{self.manifest.model_id}@{self.manifest.version}"

    @property
    def model_id(self) -> str:
        return self.manifest.model_id

    @property
    def version(self) -> str:
        return self.manifest.version

    @property
    def title(self) -> str:
        return self.manifest.title

    @property
    def parameters(self) -> dict[str, ParameterValue]:
        """Default parameter values by name (a fresh dict each time)."""
        return self.manifest.parameter_defaults

    @property
    def parameter_names(self) -> list[str]:
        """The parameters' names as the manifest spells them (LaTeX), in the manifest's order."""
        return [p.name for p in self.manifest.parameters]

    @property
    def parameter_aliases(self) -> dict[str, str]:
        """``{alias: name}``: the ASCII alias of each parameter name (``m_K892``: ``m_{K(892)}``).

        Every override accepts a name or its alias; see `modelstore.format.aliases` for the
        rules. A name that is an identifier already (``m0``), or whose alias would be ambiguous,
        has none. A fresh dict each time.
        """
        return dict(self._aliases)

    @cached_property
    def _spec(self) -> dict[str, Parameter]:
        return {p.name: p for p in self.manifest.parameters}

    @cached_property
    def _aliases(self) -> dict[str, str]:
        from modelstore.format.aliases import parameter_aliases

        return parameter_aliases(self.parameter_names)

    def parameter_overrides(self, overrides: Mapping[str, _V]) -> dict[str, _V]:
        """``overrides`` keyed by the manifest's names: each key a name or its ASCII alias.

        The values are not checked here (see `parameter_values`).

        Raises:
            InvalidInputError: an unknown name (the message suggests the closest known names),
                or one parameter given twice (by its name and its alias).
        """
        names = self._spec
        aliases = self._aliases
        by_name: dict[str, _V] = {}
        unknown = []
        for key, value in overrides.items():
            name = key if key in names else aliases.get(key)
            if name is None:
                unknown.append(key)
            elif name in by_name:
                msg = f"{self.ref}: parameter {name!r} is given twice (by its name and its alias)"
                raise InvalidInputError(msg)
            else:
                by_name[name] = value
        if unknown:
            from modelstore.suggest import did_you_mean

            hint = did_you_mean(str(unknown[0]), [*names, *aliases])
            msg = (
                f"{self.ref}: unknown parameters {sorted(map(str, unknown))}{hint}"
                f" (see its parameters and their aliases with `modelstore show {self.ref}`)"
            )
            raise InvalidInputError(msg)
        return by_name

    def parameter_values(self, overrides: Mapping[str, object]) -> dict[str, ParameterValue]:
        """Every parameter's value: the defaults, with ``overrides`` checked and applied.

        ``overrides`` are keyed by name or by ASCII alias (`parameter_aliases`). Each must
        suit its parameter's kind in the manifest (see ``Parameter.check_value``: finite, real
        for a real parameter, within the int64 range for an ``int64`` one).

        Raises:
            InvalidInputError: an unknown parameter name (with a suggestion), one given twice,
                or a value unfit for its parameter.
        """
        values = self.parameters
        if overrides:
            by_name = self.parameter_overrides(overrides)
            spec = self._spec
            where = f"{self.ref}: parameter"
            values.update({n: spec[n].check_value(v, where) for n, v in by_name.items()})
        return values

    @cached_property
    def expression(self) -> Any:
        """The sympy intensity expression, built from the verified srepr file by the safe parser."""
        from modelstore.format.srepr import parse_srepr

        data = self.registry.read_file(self.manifest, "intensity-srepr")
        return parse_srepr(data.decode("utf-8"))

    def load_forms(self, source: str = "pickle") -> dict[str, Any]:
        """The model's forms: intensity expression, variables, parameter defaults, σ3.

        Args:
            source: ``"pickle"`` reads the verified pickle through the allow-listed unpickler;
                ``"srepr"`` rebuilds the dict from the srepr files and the manifest, unpickling
                nothing (versions from 1.3.0 on).

        Raises:
            IntegrityError: a file fails verification.
            UnsafePickleError: the pickle references a global outside the allow-list.
            ModelNotFoundError: ``source="srepr"`` for a version without ``kinematics-srepr``.
            InvalidInputError: ``source`` is neither ``"pickle"`` nor ``"srepr"``.
        """
        if source == "pickle":
            from modelstore.format.unpickle import load_model_pickle

            data = self.registry.read_file(self.manifest, "expressions")
            return load_model_pickle(data, f"{self.ref} pickle")
        if source == "srepr":
            from modelstore.format.forms import forms_from_srepr

            kinematics = self.registry.read_file(self.manifest, "kinematics-srepr").decode("utf-8")
            intensity = self.registry.read_file(self.manifest, "intensity-srepr").decode("utf-8")
            forms = forms_from_srepr(
                intensity, kinematics, self.manifest.parameters, f"{self.ref} srepr"
            )
            if self.manifest.has_file("polarimetry-srepr"):  # 1.4.0 on
                from modelstore.format.polarimetry_forms import polarimetry_forms_from_srepr

                text = self.registry.read_file(self.manifest, "polarimetry-srepr").decode("utf-8")
                forms.update(polarimetry_forms_from_srepr(text, f"{self.ref} polarimetry srepr"))
            return forms
        msg = f"source must be 'pickle' or 'srepr', not {source!r}"
        raise InvalidInputError(msg)

    def reference(self) -> dict[str, np.ndarray]:
        """The stored reference values: arrays ``sigma1``, ``sigma2``, ``intensity``.

        Raises:
            ModelNotFoundError: the version has no reference values.
            IntegrityError: the file fails verification or declares arrays beyond the budget.
        """
        from modelstore.format.reference import read_reference

        data = self.registry.read_file(self.manifest, "reference-values")
        return read_reference(data, f"{self.ref} reference values")

    @cached_property
    def evaluator(self) -> Evaluator:
        from modelstore.backends import create_evaluator

        return create_evaluator(self, self._backend_name)

    @property
    def requested_backend(self) -> str:
        """The backend asked for when loading (``auto`` unresolved); never builds anything.

        Pass it on to load related models the same way (``published_model(..., backend=...)``).
        """
        return self._backend_name

    @property
    def backend(self) -> str:
        """Name of the backend in use (resolves ``auto``, which may build or JIT-compile)."""
        return self.evaluator.name

    def intensity(self, sigma1: Any, sigma2: Any, **parameters: ParameterValue) -> Any:
        """Intensity at σ1 = m²(23), σ2 = m²(31) in GeV² (LHCb: m²(K⁻π⁺), m²(pK⁻)), any shape.

        Inputs broadcast against each other; scalars give a float. Keyword arguments override
        parameter defaults by name (``**{"m_{K(892)}": 0.9}``) or ASCII alias (``m_K892=0.9``,
        see `parameter_aliases`); NaN marks points outside the Dalitz region.

        Raises:
            InvalidInputError: an unknown parameter name, a value unfit for its parameter (see
                ``parameter_values``), non-real inputs, or shapes that do not broadcast.
            BackendUnavailableError: the backend cannot run here (first call builds or compiles).
            IntegrityError: a file the backend loads fails verification.
        """
        values = self.parameter_values(parameters)
        s1 = np.asarray(sigma1)
        s2 = np.asarray(sigma2)
        for name, arr in (("sigma1", s1), ("sigma2", s2)):
            if arr.dtype.kind not in "iuf":
                msg = f"{name} must be real numbers, got {arr.dtype} values"
                raise InvalidInputError(msg)
        b1, b2 = np.broadcast_arrays(s1, s2)
        out = np.empty(b1.shape, dtype=np.float64)
        flat1 = b1.reshape(-1) if b1.flags.c_contiguous else b1
        flat2 = b2.reshape(-1) if b2.flags.c_contiguous else b2
        self._evaluate_chunks(flat1, flat2, out.reshape(-1), values)
        return float(out) if out.ndim == 0 else out

    def gradient(self, sigma1: Any, sigma2: Any, wrt: Any, **parameters: ParameterValue) -> Any:
        """∂I/∂p at σ1, σ2 for the parameters named in ``wrt``: shape ``(..., columns)``.

        One column per real (or int64) parameter; a complex parameter ``p`` gives two,
        ∂I/∂Re p then ∂I/∂Im p (``modelstore.backends.gradient.column_labels`` names them).
        Columns follow the order of ``wrt``; inputs broadcast and parameter overrides apply as
        for :meth:`intensity`. Exact forward-mode derivatives on every backend (native: a
        derivative C unit generated from the version's srepr forms and cached; numpy: the same
        code as an array program; jax: ``jax.jacfwd`` of the array program); NaN outside the
        Dalitz region.

        Raises:
            InvalidInputError: ``wrt`` is not a non-empty list of distinct parameter names, or
                a bad override or σ value (as for :meth:`intensity`).
            BackendUnavailableError: the backend cannot run here.
            IntegrityError: a file or a cached unit fails verification.
        """
        return self.value_and_gradient(sigma1, sigma2, wrt, **parameters)[1]

    def value_and_gradient(
        self, sigma1: Any, sigma2: Any, wrt: Any, **parameters: ParameterValue
    ) -> tuple[Any, np.ndarray]:
        """The intensity and :meth:`gradient` from one pass (native: the value bit for bit).

        Raises:
            InvalidInputError: a bad ``wrt``, override or σ value (see :meth:`gradient`).
            BackendUnavailableError: the backend cannot run here.
        """
        from modelstore.backends.gradient import value_and_gradient

        return value_and_gradient(self, sigma1, sigma2, self._wrt_names(wrt), parameters)

    def _wrt_names(self, wrt: Any) -> Any:
        """``wrt`` with each ASCII alias replaced by its name; an unknown name raises with a
        did-you-mean (as an override would). What is not a list of strings is passed on."""
        names = [wrt] if isinstance(wrt, str) else wrt
        try:
            names = list(names)
        except TypeError:
            return wrt
        if not all(isinstance(name, str) for name in names):
            return wrt
        self.parameter_overrides({n: 0 for n in names if n not in self._spec})  # unknown: raise
        return [self._aliases.get(name, name) for name in names]

    def function(self, backend: str | None = None) -> ModelFunction:
        """This model as tensorwaves' ``ParametrizedFunction`` (:mod:`modelstore.fit.function`).

        ``function({"sigma1": ..., "sigma2": ...})`` is the intensity at the current
        ``function.parameters`` (manifest names; ``update_parameters`` takes aliases too);
        ``backend`` other than this model's loads the same version on that backend.

        Raises:
            InvalidNameError: an unknown backend name.
        """
        from modelstore.fit.function import ModelFunction

        return ModelFunction(self, backend)

    def polarimeter(self, sigma1: Any, sigma2: Any, **parameters: ParameterValue) -> np.ndarray:
        """Polarimeter vector (αx, αy, αz) at σ1, σ2: shape ``(..., 3)`` (versions from 1.4.0 on).

        Reference subsystem 1, ``α = numerator / intensity`` as upstream's
        ``formulate_polarimetry``; inputs and parameter overrides as for :meth:`intensity`;
        NaN outside the Dalitz region.

        Raises:
            BackendUnavailableError: the version has no polarimetry (before 1.4.0).
        """
        from modelstore.backends.polarimeter import evaluate_polarimetry

        return np.ascontiguousarray(evaluate_polarimetry(self, sigma1, sigma2, parameters)[..., 1:])

    def intensity_and_polarimeter(
        self, sigma1: Any, sigma2: Any, **parameters: ParameterValue
    ) -> tuple[Any, np.ndarray]:
        """The intensity (as :meth:`intensity`) and α⃗ (as :meth:`polarimeter`) from one pass.

        Raises:
            BackendUnavailableError: the version has no polarimetry (before 1.4.0).
            InvalidInputError: an unknown parameter, or σ values that are not real numbers.
        """
        from modelstore.backends.polarimeter import evaluate_polarimetry

        both = evaluate_polarimetry(self, sigma1, sigma2, parameters)
        intensity = both[..., 0]
        return (
            float(intensity) if intensity.ndim == 0 else np.ascontiguousarray(intensity)
        ), np.ascontiguousarray(both[..., 1:])

    def polarized_intensity(
        self,
        sigma1: Any,
        sigma2: Any,
        phi: Any,
        theta: Any,
        chi: Any,
        polarization: Any,
        **parameters: ParameterValue,
    ) -> Any:
        """Rate of a Λc⁺ with polarization P⃗: I₀ (1 + Σᵢⱼ Pᵢ Rᵢⱼ(φ, θ, χ) αⱼ), R = R_z R_y R_z.

        See :mod:`modelstore.dalitz.polarized` and docs/polarimetry.md; inputs broadcast.

        Raises:
            InvalidInputError: |P⃗| > 1, bad angles or σ values, or an unknown parameter.
            BackendUnavailableError: the version has no polarimetry (before 1.4.0).
        """
        from modelstore.dalitz.polarized import polarized_intensity

        return polarized_intensity(
            self, sigma1, sigma2, phi, theta, chi, polarization, **parameters
        )

    def sample(
        self, n: int, seed: int | None = None, **parameters: ParameterValue
    ) -> tuple[np.ndarray, np.ndarray]:
        """``n`` toy events (σ1, σ2) distributed as the intensity (checked accept-reject).

        See :func:`modelstore.dalitz.sampling.sample`; the same ``seed`` gives the same events.

        Raises:
            InvalidInputError: bad ``n`` or ``seed``, or an unknown parameter.
        """
        from modelstore.dalitz.sampling import sample

        return sample(self, n, seed=seed, **parameters)

    def decay_rates(
        self, n: int = 1_000_000, seed: int = 0, **parameters: ParameterValue
    ) -> dict[str, float]:
        """Each resonance's rate over the total, by name (``K(892)``, ``L(1405)``, ...).

        Upstream's ``sub_intensity``: the other resonances' couplings set to 0, the intensity
        averaged over ``n`` phase-space points (fixed ``seed``); see
        :mod:`modelstore.dalitz.rates`.

        Raises:
            InvalidInputError: ``n`` out of range, an unknown parameter, or no couplings.
            BackendUnavailableError: the backend cannot run here.
        """
        from modelstore.dalitz.rates import decay_rates

        return decay_rates(self, n, seed, **parameters)

    def interference_terms(
        self, n: int = 1_000_000, seed: int = 0, **parameters: ParameterValue
    ) -> dict[tuple[str, str], float]:
        """Interference term of each pair of resonances over the total, by pair of names.

        On the points of :meth:`decay_rates` (same ``n``, ``seed``): the rates and these terms
        add up to 1; see :mod:`modelstore.dalitz.rates`.

        Raises:
            InvalidInputError: ``n`` out of range, an unknown parameter, or no couplings.
            BackendUnavailableError: the backend cannot run here.
        """
        from modelstore.dalitz.rates import interference_terms

        return interference_terms(self, n, seed, **parameters)

    def averaged_polarimeter(
        self,
        n: int = 1_000_000,
        seed: int = 0,
        frame: str = "resonance",
        **parameters: ParameterValue,
    ) -> dict[str, tuple[float, float, float]]:
        """(ᾱx, ᾱy, ᾱz) of each resonance alone, intensity-weighted over phase space, by name.

        ``frame="resonance"``: in the resonance's own decay chain (as LHCb and upstream tabulate
        it); ``"reference"``: in reference subsystem 1, as :meth:`polarimeter`. On the points of
        :meth:`decay_rates`; see :mod:`modelstore.dalitz.rates`.

        Raises:
            InvalidInputError: bad ``n`` or ``frame``, an unknown parameter, or no couplings.
            BackendUnavailableError: the version has no polarimetry (before 1.4.0).
        """
        from modelstore.dalitz.rates import averaged_polarimeter

        return averaged_polarimeter(self, n, seed, frame, **parameters)

    def _evaluate_chunks(
        self, s1: np.ndarray, s2: np.ndarray, out: np.ndarray, values: dict[str, Any]
    ) -> None:
        """Evaluate chunk by chunk: extra memory stays bounded whatever the input size.

        Inputs of any dtype, stride or shape are converted one chunk at a time.
        """
        evaluator = self.evaluator
        chunk = evaluator.chunk_size
        n = out.size
        if evaluator.whole_arrays and all(
            a.ndim == 1 and a.dtype == np.float64 and a.flags.c_contiguous for a in (s1, s2)
        ):  # views, no conversion: one call (each call starts the threads again)
            chunk = max(n, 1)
        for start in range(0, n, chunk):
            stop = min(start + chunk, n)
            c1 = chunk_as_float64(s1, start, stop)
            c2 = chunk_as_float64(s2, start, stop)
            if evaluator.pad_chunks and n > chunk and stop - start < chunk:
                pad = chunk - (stop - start)
                c1 = np.concatenate([c1, np.full(pad, c1[0])])
                c2 = np.concatenate([c2, np.full(pad, c2[0])])
                out[start:stop] = evaluator(c1, c2, values)[: stop - start]
            else:
                evaluator(c1, c2, values, out=out[start:stop])


def published_model(
    model_id: str | int = "default",
    version: str | None = None,
    backend: str = "auto",
    digest: str | None = None,
    registry: Registry | str | os.PathLike[str] | None = None,
    *,
    trust_code: bool = False,
) -> PublishedModel:
    """Load a published model, verified against its manifest.

    Args:
        model_id: a short id (``"default"``), ``"ID@VERSION"``, an upstream title
            (``"Default amplitude model"``) or an upstream integer index (``0``).
        version: a version such as ``"1.0.0"``; None means the latest.
        backend: ``"auto"`` (fastest available), ``"native"``, ``"jax"`` or ``"numpy"``.
        digest: the ``sha256:`` digest of the manifest the caller expects; any other is refused.
        registry: a Registry, a folder or a URL (``https://...``, ``s3://...``; see
            docs/sharing.md); by default ``MODELSTORE_REGISTRY`` or the embedded registry.
        trust_code: run this registry's code (C source, pickle, array program) even if its
            index is not signed by a key you trust; say so only for a registry whose writer you
            trust (see docs/threats.md). Without it, an unsigned folder is evaluated through
            the data-only path. A Registry object passed as ``registry`` keeps its own
            ``trust_code``.

    Raises:
        InvalidNameError: ``model_id``, ``version`` or ``backend`` does not follow the grammar.
        ModelNotFoundError: no such model or version (OfflineError: offline and not cached).
        IntegrityError: the index or manifest fails verification, or the manifest is not the
            one ``digest`` pins (SignatureError, RollbackError, VersionChangedError).
        ManifestError: the index or manifest is malformed.
        RemoteError: a remote registry could not be reached or read.
        MissingExtraError: the registry URL needs an extra (``s3://``: ``modelstore[s3]``).
        BackendUnavailableError: an explicitly requested backend cannot run here.
    """
    if registry is None:
        registry = default_registry(trust_code=trust_code)
    elif not isinstance(registry, Registry):
        registry = Registry(registry, trust_code=trust_code)

    ref = str(model_id)
    if version is not None:
        if "@" in ref:
            msg = f"give the version either in {ref!r} or as version=, not both"
            raise InvalidNameError(msg)
        ref = f"{ref}@{version}"
    manifest = registry.manifest(ref, digest=digest)
    return PublishedModel(registry, manifest, backend)
