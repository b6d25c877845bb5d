"""The structured polarimetry forms of a model (1.4.0 on), as pickled and as srepr text.

Beside the unfolded intensity, a 1.4.0 version's forms dict holds

* ``"amplitudes"``: {amplitude symbol ``A^k[λ0, λ1, 0, 0]``: its unfolded expression};
* ``"polarimetry"``: {``"intensity"``: the intensity in terms of the amplitude symbols and the
  alignment angles ζ, ``"alpha_numerators"``: (N_x, N_y, N_z) likewise}.

The polarimeter vector is ``α_i = N_i / I`` (real part), with reference subsystem 1, as upstream's
``formulate_polarimetry(builder, reference_subsystem=1)`` defines it. The text twin, the role
``polarimetry-srepr``, is the srepr of

    Tuple(Tuple(Tuple(A, expression), ...),   # amplitudes, in a fixed order
          intensity,                          # structured intensity
          Tuple(N_x, N_y, N_z))               # numerators

read by the allow-list parser, so the forms can be rebuilt with nothing unpickled.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from modelstore.errors import ManifestError, ModelstoreError

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = [
    "REFERENCE_SUBSYSTEM",
    "formulate_polarimetry_forms",
    "polarimetry_forms_from_srepr",
    "polarimetry_srepr",
    "upstream_alpha_expressions",
]

REFERENCE_SUBSYSTEM: Literal[1] = 1


def polarimetry_srepr(forms: Mapping[str, Any]) -> str:
    """The ``polarimetry-srepr`` text of the structured forms in ``forms``.

    Raises:
        KeyError: ``forms`` has no ``amplitudes`` or ``polarimetry`` (a version before 1.4.0).
    """
    import sympy as sp

    polarimetry = forms["polarimetry"]
    document = sp.Tuple(
        sp.Tuple(*(sp.Tuple(a, e) for a, e in forms["amplitudes"].items())),
        polarimetry["intensity"],
        sp.Tuple(*polarimetry["alpha_numerators"]),
    )
    return sp.srepr(document)


def polarimetry_forms_from_srepr(text: str, where: str = "polarimetry srepr") -> dict[str, Any]:
    """The ``amplitudes`` and ``polarimetry`` entries of the forms, from ``polarimetry-srepr`` text.

    Raises:
        SreprParseError: the text is outside the parser's allow-list or malformed.
        ManifestError: the document does not have the expected layout.
    """
    import sympy as sp

    from modelstore.format.srepr import parse_srepr

    document = parse_srepr(text)
    try:
        amplitudes, intensity, numerators = document.args
        amplitudes = {pair.args[0]: pair.args[1] for pair in amplitudes.args if len(pair.args) == 2}
        numerators = tuple(numerators.args)
        ok = (
            isinstance(document, sp.Tuple)
            and len(amplitudes) == len(document.args[0].args)
            and len(numerators) == 3
            and all(isinstance(a, sp.Indexed) for a in amplitudes)
        )
    except (AttributeError, ValueError, IndexError, TypeError):
        ok = False
    if not ok:
        msg = (
            f"{where}: the polarimetry document is not"
            " Tuple(amplitudes, intensity, Tuple(Nx, Ny, Nz))"
        )
        raise ManifestError(msg)
    return {
        "amplitudes": amplitudes,
        "polarimetry": {"intensity": intensity, "alpha_numerators": numerators},
    }


def _split_alpha(alpha: Any, intensity: Any) -> Any:
    """The numerator of upstream's ``α_i = PoolSum(...) * intensity**-1`` (checked)."""
    import sympy as sp

    numerator, denominator = [], []
    for factor in sp.Mul.make_args(alpha):
        if factor.is_Pow and factor.exp == -1:
            denominator.append(factor.base)
        else:
            numerator.append(factor)
    if len(denominator) != 1:
        msg = "upstream's polarimeter component is not numerator * intensity**-1"
        raise ModelstoreError(msg)
    if denominator[0] != intensity and denominator[0].doit() != intensity.doit():
        msg = "upstream's polarimeter denominator is not the model's intensity"
        raise ModelstoreError(msg)
    return sp.Mul(*numerator)


def formulate_polarimetry_forms(model: Any, builder: Any) -> dict[str, Any]:
    """The ``amplitudes`` and ``polarimetry`` forms of an upstream model.

    Needs the upstream stack (the ``publish`` extra).

    Raises:
        ModelstoreError: upstream's α⃗ is not a numerator over the model's intensity.
    """
    import polarimetry
    from ampform.sympy import perform_cached_doit

    alpha = polarimetry.formulate_polarimetry(builder, reference_subsystem=REFERENCE_SUBSYSTEM)
    numerators = tuple(_split_alpha(a, model.intensity).doit() for a in alpha)
    return {
        "amplitudes": {
            symbol: perform_cached_doit(expr) for symbol, expr in model.amplitudes.items()
        },
        "polarimetry": {"intensity": model.intensity.doit(), "alpha_numerators": numerators},
    }


def upstream_alpha_expressions(model: Any, builder: Any) -> list[Any]:
    """α⃗ as upstream unfolds it: ``perform_cached_doit(a.doit().xreplace(model.amplitudes))``.

    Raises:
        ImportError: the upstream stack (the ``publish`` extra) is not installed.
    """
    import polarimetry
    from ampform.sympy import perform_cached_doit

    alpha = polarimetry.formulate_polarimetry(builder, reference_subsystem=REFERENCE_SUBSYSTEM)
    return [perform_cached_doit(a.doit().xreplace(model.amplitudes)) for a in alpha]


def check_program_against(
    array_source: str,
    parameters: Any,
    sigma1: Any,
    sigma2: Any,
    expected: Mapping[str, Any],
    where: str,
    atol: float = 1e-9,
) -> float:
    """Run the array program's ``polarimetry`` with numpy and compare with ``expected`` arrays.

    Returns the largest absolute difference of α⃗; raises ModelstoreError beyond ``atol`` or
    where NaN marks differ (the publish-time gate).
    """
    import numpy as np

    from modelstore.backends.base import pack_parameters
    from modelstore.format.arraycode import compile_array_program

    program = compile_array_program(array_source, where, function="polarimetry")
    par = pack_parameters(parameters, {p.name: p.value for p in parameters})
    with np.errstate(all="ignore"):
        values = program(np.asarray(sigma1, dtype=float), np.asarray(sigma2, dtype=float), par, np)
    worst = 0.0
    for name, value in zip(("intensity", "alpha_x", "alpha_y", "alpha_z"), values, strict=True):
        want = np.asarray(expected[name], dtype=float)
        got = np.broadcast_to(np.asarray(value, dtype=float), want.shape)
        if not np.array_equal(np.isnan(got), np.isnan(want)):
            msg = f"{where}: {name} is NaN at other points than upstream's"
            raise ModelstoreError(msg)
        inside = ~np.isnan(want)
        if name == "intensity":
            scale = np.abs(want[inside]).max(initial=1.0)
            diff = float(np.abs(got[inside] - want[inside]).max(initial=0.0)) / scale
        else:
            diff = float(np.abs(got[inside] - want[inside]).max(initial=0.0))
            worst = max(worst, diff)
        if diff > atol:
            msg = f"{where}: {name} differs from upstream's by {diff:.3g} (> {atol:g})"
            raise ModelstoreError(msg)
    return worst
