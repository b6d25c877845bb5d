"""Native gradients: the derivative C unit of a version, generated, cached, built and called.

The unit (:mod:`modelstore._native.gradient_source`) is generated here from the version's forms
by this package's own code generator: from the pickle where the registry is trusted to run code
(faster to load), else from the srepr files (data, rebuilt by the allow-list parser; versions
from 1.3.0 on). No code of an untrusted registry runs, so its model is differentiated as well
as a trusted one's. The generated text is kept in ``<cache>/generated`` under a key made of
the forms' digests in the manifest, the parameter signature, the columns and a digest of the
generator's own modules (:mod:`modelstore._native.generated`), and the library in the verified
build cache under the digest of that text (:func:`modelstore._native.build.load_or_build`): a
second process neither runs sympy nor compiles.

One unit is made per set of columns: a unit computes only the tangents its columns need (most
temporaries depend on few parameters), so four columns cost a fraction of all of them (see
``benchmarks/bench_gradient.py``).
"""

from __future__ import annotations

import functools
import hashlib
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from modelstore._native.names import parameter_signature
from modelstore.errors import IntegrityError, InvalidInputError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from modelstore.format.manifest import Parameter
    from modelstore.model import PublishedModel

__all__ = ["NativeGradient", "gradient_columns", "model_forms", "native_gradient", "unit_key"]

_GENERATOR_MODULES = (  # every module the generated text depends on
    "emitter.py",
    "names.py",
    "units.py",
    "rewrites.py",
    "lowering.py",
    "codegen.py",
    "tangents.py",
    "gradient_source.py",
)
_UNITS: dict[str, NativeGradient] = {}
_LOCK = threading.Lock()


def gradient_columns(parameters: Sequence[Parameter], wrt: Any) -> list[tuple[int, str]]:
    """Columns ``(parameter index, part)`` for the names in ``wrt``, in their order.

    A real (or int64) parameter gives one column (part ``""``); a complex one two, ``"re"``
    then ``"im"`` (∂I/∂Re p, ∂I/∂Im p). A single name may be given as a string.

    Raises:
        InvalidInputError: ``wrt`` is empty, holds something other than names, an unknown name
            or a name twice.
    """
    names = [wrt] if isinstance(wrt, str) else wrt
    try:
        names = list(names)
    except TypeError:
        names = None
    if not names or not all(isinstance(n, str) for n in names):
        msg = f"wrt must be a non-empty list of parameter names, not {wrt!r}"[:300]
        raise InvalidInputError(msg)
    index = {p.name: k for k, p in enumerate(parameters)}
    unknown = [n for n in names if n not in index]
    if unknown:
        msg = f"wrt: unknown parameters {unknown}"
        raise InvalidInputError(msg)
    if len(set(names)) != len(names):
        msg = f"wrt: a parameter is named twice in {names}"
        raise InvalidInputError(msg)
    columns: list[tuple[int, str]] = []
    for name in names:
        k = index[name]
        columns += [(k, "re"), (k, "im")] if parameters[k].dtype == "complex128" else [(k, "")]
    return columns


@functools.cache
def _generator_digest() -> str:
    here = Path(__file__).parent
    h = hashlib.sha256()
    for name in _GENERATOR_MODULES:
        h.update((here / name).read_bytes())
    return h.hexdigest()


def unit_key(model: PublishedModel, columns: Sequence[tuple[int, str]], kind: str) -> str:
    """The generation key of a unit of ``kind`` (``c`` or ``py``) for ``model`` and ``columns``.

    Never raises for a loaded model.
    """
    from modelstore._native.generated import generation_key

    manifest = model.manifest
    roles: tuple[str, ...] = ("intensity-srepr", "kinematics-srepr")
    if not manifest.has_file("kinematics-srepr"):
        roles = ("expressions",)
    parameters = manifest.parameters
    kinds = [p.dtype == "complex128" for p in parameters]
    return generation_key({
        "kind": kind,
        "generator": _generator_digest(),
        "forms": [manifest.file(role).digest for role in roles],
        "signature": parameter_signature([p.name for p in parameters], kinds),
        "columns": [list(c) for c in columns],
    })  # fmt: skip


def model_forms(model: PublishedModel) -> dict[str, Any]:
    """The forms to generate from: the pickle where the registry is trusted to run code (the
    default model's: 0.2 s, against 2.8 s to parse its srepr files), else the srepr files
    (1.3.0 on; data, so an untrusted registry's model is differentiated too). Both give the
    same expressions (``tests/format/test_forms.py``), so the same unit.

    Raises:
        UntrustedCodeError: a version before 1.3.0 of a registry not trusted to run code.
        IntegrityError: a file fails verification.
    """
    if model.manifest.has_file("kinematics-srepr") and model.registry.code_trust() is None:
        return model.load_forms("srepr")
    model.registry.require_code_trust(f"{model.ref} pickle (gradients before 1.3.0)")
    return model.load_forms("pickle")


class NativeGradient:
    """A built gradient unit: ``ms_gradient`` for one model and one set of columns."""

    def __init__(self, build: Any, parameters: Sequence[Parameter], n_columns: int) -> None:
        self._ffi, self._lib = build.module.ffi, build.module.lib
        self.library_path = build.library_path
        self.build_status = build.status
        self.generated = False
        names = [p.name for p in parameters]
        kinds = [p.dtype == "complex128" for p in parameters]
        signature = self._ffi.string(self._lib.ms_signature()).decode()
        if signature != parameter_signature(names, kinds) or (
            self._lib.ms_grad_n_columns() != n_columns
        ):
            msg = f"{self.library_path}: the gradient unit does not match the model's parameters"
            raise IntegrityError(msg)
        self.n_columns = n_columns
        from modelstore._native.evaluator import default_threads

        self.threads = default_threads()

    def __call__(
        self, sigma1: np.ndarray, sigma2: np.ndarray, packed: np.ndarray, out: np.ndarray,
        grad: np.ndarray,
    ) -> None:  # fmt: skip
        """Write I to ``out`` (n) and ∂I/∂column c to ``grad[c]`` (``grad``: (columns, ≥ n)).

        Raises:
            InvalidInputError: arrays of the wrong shape, dtype or layout.
        """
        n = sigma1.size
        arrays = (sigma1, sigma2, packed, out, grad)
        if (
            any(a.dtype != np.float64 or not a.flags.c_contiguous for a in arrays)
            or sigma2.size != n
            or out.size != n
            or grad.ndim != 2
            or grad.shape[0] != self.n_columns
            or grad.shape[1] < n
        ):
            msg = "ms_gradient: arrays of the wrong shape, dtype or layout"
            raise InvalidInputError(msg)
        ffi = self._ffi
        self._lib.ms_gradient(
            ffi.from_buffer("double[]", sigma1), ffi.from_buffer("double[]", sigma2),
            ffi.from_buffer("double[]", out, require_writable=True),
            ffi.from_buffer("double[]", grad, require_writable=True), grad.shape[1], n,
            ffi.from_buffer("double[]", packed), self.threads,
        )  # fmt: skip


def native_gradient(model: PublishedModel, columns: Sequence[tuple[int, str]]) -> NativeGradient:
    """The gradient unit of ``model`` for ``columns``: from this process, the caches, or made.

    Raises:
        BackendUnavailableError: no working C compiler, or the build failed.
        IntegrityError: a file of the version or a cached library fails verification.
        UntrustedCodeError: a version before 1.3.0 of a registry not trusted to run code.
        ModelstoreError: the forms cannot be lowered or differentiated.
    """
    from modelstore._native.build import load_or_build
    from modelstore._native.generated import cached_text, read_text, recorded_digest
    from modelstore._native.gradient_source import GRADIENT_CDEF

    key = unit_key(model, columns, "c")
    with _LOCK:
        if key in _UNITS:
            return _UNITS[key]

    def generate() -> str:
        from modelstore._native.gradient_source import gradient_c_source
        from modelstore._native.lowering import lower_model

        names = [p.name for p in model.manifest.parameters]
        return gradient_c_source(lower_model(model_forms(model), names), columns)

    generated = False
    digest = recorded_digest(key)
    build = None
    if digest is not None:
        recorded = digest

        def read_cached() -> str:
            text = read_text(key, recorded)
            if text is None:
                raise _StaleRecordError
            return text

        try:
            build = load_or_build(digest, read_cached, label="gradient", cdef=GRADIENT_CDEF)
        except _StaleRecordError:
            build = None
    if build is None:
        text, digest, generated = cached_text(key, generate)
        build = load_or_build(digest, lambda: text, label="gradient", cdef=GRADIENT_CDEF)
    unit = NativeGradient(build, model.manifest.parameters, len(columns))
    unit.generated = generated
    with _LOCK:
        _UNITS[key] = unit
    return unit


class _StaleRecordError(Exception):
    """The cache records a digest whose text is gone: generate it again."""
