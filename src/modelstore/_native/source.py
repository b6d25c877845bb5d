"""The C source a version publishes: intensity only (ABI 3), or with polarimetry (ABI 4)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from modelstore._native.codegen import intensity_c_source
from modelstore._native.emitter import INTENSITY_ABI
from modelstore._native.multi import generate_polarimetry_c_source

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

__all__ = ["generate_c_source"]


def generate_c_source(forms: Mapping[str, Any], parameter_names: Sequence[str]) -> str:
    """C source of ``ms_evaluate`` for the model in ``forms`` (the pickled dict of a version).

    ``parameter_names`` fixes the order of the packed parameter array (the manifest's order).
    Complex parameters take two slots (real, imaginary), real ones one. Forms with polarimetry
    (1.4.0 on) give ABI 4: ``ms_evaluate_polarimetry`` too
    (:mod:`modelstore._native.multi`).

    Raises:
        ModelstoreError: an expression has no C translation, or a parameter name cannot be mangled.
    """
    if "polarimetry" in forms:
        return generate_polarimetry_c_source(forms, parameter_names)
    return intensity_c_source(forms, parameter_names, INTENSITY_ABI)
