"""The native evaluator: a cffi-built C library generated for one model version.

A version's library is built whole (:class:`~modelstore._native.library.WholeLibrary`) or, from
a published model, unit by unit as it is used (:class:`~modelstore._native.library.SplitLibrary`):
the first value compiles only the intensity entry point for this processor's instruction set.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import numpy as np

from modelstore._native.codegen import SUPPORTED_ABIS, parameter_signature
from modelstore._native.library import SplitLibrary, WholeLibrary
from modelstore.backends.base import Evaluator, pack_parameters
from modelstore.errors import IntegrityError, InvalidInputError

if TYPE_CHECKING:
    from collections.abc import Mapping

    from modelstore.model import PublishedModel

__all__ = ["NativeEvaluator", "default_threads"]

THREADS_ENV = "MODELSTORE_NUM_THREADS"
MAX_THREADS = 4096
ISA_ENV = "MODELSTORE_NATIVE_ISA"
ISA_LEVELS = {"portable": 0, "avx2": 1, "avx512": 2}


def isa_level(name: str, where: str = "the instruction set") -> int:
    """The level of an instruction set name (case-insensitive); InvalidInputError if unknown."""
    level = ISA_LEVELS.get(name.strip().lower()) if isinstance(name, str) else None
    if level is None:
        msg = f"{where}={name!r}: expected one of {', '.join(ISA_LEVELS)}"
        raise InvalidInputError(msg)
    return level


def isa_limit_from_environment() -> int | None:
    """The level ``$MODELSTORE_NATIVE_ISA`` names, or None when it is unset or empty.

    Raises:
        InvalidInputError: the variable names no instruction set.
    """
    limit = os.environ.get(ISA_ENV)
    if limit is None or not limit.strip():
        return None
    return isa_level(limit, f"${ISA_ENV}")


def default_threads() -> int:
    """``$MODELSTORE_NUM_THREADS``, else the number of cores this process may run on.

    Raises:
        InvalidInputError: ``$MODELSTORE_NUM_THREADS`` is not a whole number in range.
    """
    env = os.environ.get(THREADS_ENV)
    if env is not None and env.strip():
        try:
            threads = int(env)
        except ValueError:
            threads = 0
        if not 1 <= threads <= MAX_THREADS:
            msg = (
                f"${THREADS_ENV}={env!r}: expected a whole number of threads"
                f" from 1 to {MAX_THREADS}"
            )
            raise InvalidInputError(msg)
        return threads
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


class NativeEvaluator(Evaluator):
    """Calls the generated ``ms_evaluate`` with the GIL released, over OpenMP threads.

    ``library``, when given, replaces ``module`` (a library built unit by unit).
    """

    name = "native"
    whole_arrays = True

    def __init__(
        self,
        module: Any,
        library_path: Any,
        build_status: str,
        parameters: Any,
        library: WholeLibrary | SplitLibrary | None = None,
    ) -> None:
        self.threads = default_threads()  # a bad $MODELSTORE_NUM_THREADS fails before any work
        if library is None:
            library = WholeLibrary(module, library_path, build_status)
        self._library = library
        self.library_path = library.library_path
        self.build_status = library.build_status
        self._parameters = tuple(parameters)
        self._checked: set[int] = set()
        self.abi = self._module("intensity").lib.ms_abi()
        level = isa_limit_from_environment()
        if level is not None and self.abi >= 3:
            library.set_isa_limit(level)

    def _module(self, entry: str) -> Any:
        """The cffi module of ``entry``, checked against the manifest the first time."""
        module = self._library.module(entry)
        if id(module) not in self._checked:
            self._check_signature(module)
            self._checked.add(id(module))
        return module

    def _check_signature(self, module: Any) -> None:
        names = [p.name for p in self._parameters]
        kinds = [p.dtype == "complex128" for p in self._parameters]
        lib = module.lib
        if lib.ms_abi() not in SUPPORTED_ABIS or module.ffi.string(
            lib.ms_signature()
        ).decode() != parameter_signature(names, kinds):
            msg = (
                f"{self.library_path}: the native library does not match the manifest's parameters"
            )
            raise IntegrityError(msg)

    def build_entry_points(self) -> str:
        """Build (or load) every entry point at the instruction set in use; ``built`` or ``cached``.

        What ``modelstore build`` does ahead of time: a library built unit by unit otherwise
        compiles its polarimetry unit on the first α⃗.

        Raises:
            BackendUnavailableError: a unit cannot be built.
            IntegrityError: a cached unit fails verification.
        """
        if self.abi >= 4:
            self._module("polarimetry")
        if isinstance(self._library, SplitLibrary):
            statuses = {b.status for (_, isa), b in self._library.units.items() if isa == self.isa}
            return "built" if "built" in statuses else "cached"
        return self.build_status

    @property
    def isa(self) -> str:
        """The instruction set in use: ``avx512``, ``avx2`` or ``portable``."""
        if self.abi < 3:
            return "avx2 or portable"
        return {2: "avx512", 1: "avx2", 0: "portable"}[self._library.isa()]

    def limit_isa(self, name: str) -> None:
        """Use at most the instruction set ``name`` (``avx512``, ``avx2``, ``portable``).

        Raises:
            InvalidInputError: the library's ABI cannot limit its instruction set, or ``name``
                is unknown.
        """
        if self.abi < 3:
            msg = f"{self.library_path}: native ABI {self.abi} cannot limit its instruction set"
            raise InvalidInputError(msg)
        self._library.set_isa_limit(isa_level(name))

    @classmethod
    def for_model(cls, model: PublishedModel) -> NativeEvaluator:
        """The native evaluator of ``model``: its verified C source, built or loaded from the cache.

        A registry not trusted to run code is refused before the build cache is consulted,
        so whether it runs never depends on what some other registry left in the cache.

        Raises:
            UntrustedCodeError: the registry is not trusted to run code.
            BackendUnavailableError: no working C compiler, or the build failed.
            IntegrityError: the source or a cached library fails verification.
        """
        from modelstore._native.library import open_library

        entry = model.manifest.file("native-source")
        model.registry.require_code_trust(f"{model.ref} {entry.name} (native backend)")
        level = isa_limit_from_environment()  # a bad value fails before any build

        def read_source() -> str:
            return model.registry.read_file(model.manifest, "native-source").decode("utf-8")

        library = open_library(entry.digest, read_source, model.ref, 2 if level is None else level)
        return cls(None, None, "", model.manifest.parameters, library=library)

    def __call__(
        self,
        sigma1: np.ndarray,
        sigma2: np.ndarray,
        parameters: Mapping[str, Any],
        out: np.ndarray | None = None,
    ) -> np.ndarray:
        """Evaluate one chunk of events into ``out`` (allocated if None).

        Raises:
            InvalidInputError: inputs of unequal length or not 1-D, an unusable ``out``, or an
                unknown parameter.
        """
        s1 = np.ascontiguousarray(sigma1, dtype=np.float64)
        s2 = np.ascontiguousarray(sigma2, dtype=np.float64)
        if s1.shape != s2.shape or s1.ndim != 1:
            msg = "sigma1 and sigma2 must be 1-D arrays of equal length"
            raise InvalidInputError(msg)
        if out is None:
            out = np.empty_like(s1)
        elif out.shape != s1.shape or out.dtype != np.float64 or not out.flags.c_contiguous:
            msg = "out must be a C-contiguous float64 array of the inputs' shape"
            raise InvalidInputError(msg)
        packed = pack_parameters(self._parameters, parameters)
        module = self._module("intensity")
        ffi = module.ffi
        module.lib.ms_evaluate(
            ffi.from_buffer("double[]", s1),
            ffi.from_buffer("double[]", s2),
            ffi.from_buffer("double[]", out, require_writable=True),
            s1.size,
            ffi.from_buffer("double[]", packed),
            self.threads,
        )
        return out

    def polarimetry(
        self,
        sigma1: np.ndarray,
        sigma2: np.ndarray,
        parameters: Mapping[str, Any],
        out: np.ndarray | None = None,
    ) -> np.ndarray:
        """Rows ``(I, αx, αy, αz)`` from ``ms_evaluate_polarimetry`` (native ABI 4).

        Raises:
            BackendUnavailableError: the library is of native ABI 2 or 3 (no polarimetry).
            InvalidInputError: unusable arrays, or a real parameter given a complex value.
        """
        from modelstore.errors import BackendUnavailableError

        if self.abi < 4:
            msg = (
                f"{self.library_path}: native ABI {self.abi} has no polarimetry"
                " (published from 1.4.0 on)"
            )
            raise BackendUnavailableError(msg)
        s1 = np.ascontiguousarray(sigma1, dtype=np.float64)
        s2 = np.ascontiguousarray(sigma2, dtype=np.float64)
        if s1.shape != s2.shape or s1.ndim != 1:
            msg = "sigma1 and sigma2 must be 1-D arrays of equal length"
            raise InvalidInputError(msg)
        if out is None:
            out = np.empty((4, s1.size), dtype=np.float64)
        elif (
            out.shape != (4, s1.size)
            or out.dtype != np.float64
            or not all(row.flags.c_contiguous for row in out)
        ):
            msg = "out must be a float64 array of shape (4, n) with contiguous rows"
            raise InvalidInputError(msg)
        packed = pack_parameters(self._parameters, parameters)
        module = self._module("polarimetry")
        ffi = module.ffi
        rows = [ffi.from_buffer("double[]", row, require_writable=True) for row in out]
        module.lib.ms_evaluate_polarimetry(
            ffi.from_buffer("double[]", s1), ffi.from_buffer("double[]", s2), *rows,
            s1.size, ffi.from_buffer("double[]", packed), self.threads,
        )  # fmt: skip
        return out
