"""The contract every evaluator backend fulfils."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any

import numpy as np

from modelstore.errors import InvalidInputError

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from modelstore.format.manifest import Parameter

__all__ = ["Evaluator", "chunk_as_float64", "pack_parameters"]


def pack_parameters(spec: Sequence[Parameter], values: Mapping[str, Any]) -> np.ndarray:
    """Parameter values in the manifest's order as doubles; complex ones take (re, im).

    This is the ``par`` array of the generated C source and of the array program.

    Raises:
        InvalidInputError: a real parameter is given a complex value with an imaginary part.
    """
    packed = []
    for parameter in spec:
        value = values[parameter.name]
        if parameter.dtype == "complex128":
            value = complex(value)
            packed += [value.real, value.imag]
            continue
        if isinstance(value, complex):
            if value.imag != 0:
                msg = f"parameter {parameter.name!r} is real; got the complex value {value}"
                raise InvalidInputError(msg)
            value = value.real
        packed.append(float(value))
    return np.array(packed, dtype=np.float64)


class Evaluator(ABC):
    """Evaluates one model's intensity for 1-D float64 arrays of σ1 and σ2 of equal length.

    ``parameters`` holds a value for every parameter of the model, by name (as in the manifest).
    The result is a new 1-D float64 array; NaN marks points where the model is undefined
    (outside the Dalitz region).
    """

    name: str
    chunk_size: int = 1 << 18
    """Events per call; callers split larger inputs, so memory does not grow with the input."""
    pad_chunks: bool = False
    """Pad the last chunk to ``chunk_size`` (for backends that compile one function per shape)."""
    whole_arrays: bool = False
    """Takes any number of events in one call without memory of its own per event (the native
    evaluator): inputs that need no conversion go in one call, not in chunks."""

    @abstractmethod
    def __call__(
        self,
        sigma1: np.ndarray,
        sigma2: np.ndarray,
        parameters: Mapping[str, complex | float | int],
        out: np.ndarray | None = None,
    ) -> np.ndarray:
        """Return the intensity; if ``out`` is given, write into it and return it.

        Raises:
            InvalidInputError: an unknown parameter, a value of the wrong kind, or unusable arrays.
        """

    def polarimetry(
        self,
        sigma1: np.ndarray,
        sigma2: np.ndarray,
        parameters: Mapping[str, complex | float | int],
        out: np.ndarray | None = None,
    ) -> np.ndarray:
        """Intensity and polarimeter vector as rows ``(I, αx, αy, αz)`` of a ``(4, n)`` array.

        Raises:
            BackendUnavailableError: this evaluator has no polarimetry (versions before 1.4.0).
        """
        from modelstore.errors import BackendUnavailableError

        msg = f"the {self.name} evaluator has no polarimetry (published from 1.4.0 on)"
        raise BackendUnavailableError(msg)


def chunk_as_float64(array: np.ndarray, start: int, stop: int) -> np.ndarray:
    """Elements ``start:stop`` of ``array`` in flat (C) order as contiguous float64.

    A view when the array is already 1-D contiguous float64, otherwise a copy of the chunk only.
    Never raises for the numeric arrays callers pass.
    """
    if array.ndim == 1 and array.dtype == np.float64 and array.flags.c_contiguous:
        return array[start:stop]
    if array.ndim == 1:
        return np.ascontiguousarray(array[start:stop], dtype=np.float64)
    return np.asarray(array.flat[start:stop], dtype=np.float64)
