"""The C source a version publishes: intensity only (ABI 3), or with polarimetry (ABI 4)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from modelstore._native.codegen import intensity_c_source
from modelstore._native.emitter import INTENSITY_ABI, LOWERINGS
from modelstore._native.multi import generate_polarimetry_c_source
from modelstore.errors import ManifestError

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

__all__ = ["LOWERING_KEY", "generate_c_source", "native_lowering"]

LOWERING_KEY = "native_lowering"  # in a manifest's provenance, where the lowering is not 1


def generate_c_source(
    forms: Mapping[str, Any], parameter_names: Sequence[str], lowering: int = 1
) -> str:
    """C source of ``ms_evaluate`` for the model in ``forms`` (the pickled dict of a version).

    ``parameter_names`` fixes the order of the packed parameter array (the manifest's order).
    Complex parameters take two slots (real, imaginary), real ones one. Forms with polarimetry
    (1.4.0 on) give ABI 4: ``ms_evaluate_polarimetry`` too
    (:mod:`modelstore._native.multi`). ``lowering`` is the version's own (its manifest's
    provenance ``native_lowering``, 1 where absent: :func:`native_lowering`); new versions are
    published with ``LATEST_LOWERING``.

    Raises:
        ModelstoreError: an expression has no C translation, a parameter name cannot be
            mangled, or ``lowering`` is unknown.
    """
    if "polarimetry" in forms:
        return generate_polarimetry_c_source(forms, parameter_names, lowering)
    return intensity_c_source(forms, parameter_names, INTENSITY_ABI, lowering)


def native_lowering(provenance: Mapping[str, Any]) -> int:
    """The lowering a version's C source was generated with (its provenance; 1 if absent).

    Raises:
        ManifestError: the recorded lowering is not one this modelstore knows.
    """
    value = provenance.get(LOWERING_KEY, 1)
    if isinstance(value, bool) or value not in LOWERINGS:
        msg = f"provenance {LOWERING_KEY}={value!r}: expected one of {LOWERINGS}"
        raise ManifestError(msg)
    return int(value)
