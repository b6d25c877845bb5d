"""A model's forms (the seed's dict of expressions) as srepr text, without a pickle.

The forms are ``intensity_expr``, ``variables`` (helicity and alignment angles in terms of
σ1, σ2, σ3 and masses), ``parameter_defaults`` and ``sigma3`` (σ3 in terms of σ1, σ2). From
1.3.0 on a version stores, beside the intensity's srepr, a ``kinematics-srepr`` file:

    Tuple(Tuple(Tuple(angle, expression), ...),   # variables
          Tuple(Tuple(sigma3, expression)),        # sigma3
          Tuple(parameter, ...))                   # parameter symbols, in the manifest's order

Both are read by the allow-list parser, and the parameter values come from the manifest, so
the whole dict can be rebuilt with nothing unpickled.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from modelstore.errors import ManifestError

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from modelstore.format.manifest import Parameter

__all__ = ["forms_from_srepr", "kinematics_srepr"]


def kinematics_srepr(forms: Mapping[str, Any], parameter_names: Sequence[str]) -> str:
    """The ``kinematics-srepr`` text of ``forms``; parameters in ``parameter_names`` order.

    Never raises.
    """
    import sympy as sp

    by_name = {str(symbol): symbol for symbol in forms["parameter_defaults"]}
    document = sp.Tuple(
        sp.Tuple(*(sp.Tuple(k, v) for k, v in forms["variables"].items())),
        sp.Tuple(*(sp.Tuple(k, v) for k, v in forms["sigma3"].items())),
        sp.Tuple(*(by_name[name] for name in parameter_names)),
    )
    return sp.srepr(document)


def forms_from_srepr(
    intensity_text: str, kinematics_text: str, parameters: Sequence[Parameter], where: str = "srepr"
) -> dict[str, Any]:
    """Rebuild the forms dict from the two srepr files and the manifest's parameters.

    Raises:
        SreprParseError: either text is outside the parser's allow-list or malformed.
        ManifestError: the kinematics document does not have the expected layout, or its
            parameter symbols do not match the manifest's parameters.
    """
    import sympy as sp

    from modelstore.format.srepr import parse_srepr

    document = parse_srepr(kinematics_text)
    try:
        variables, sigma3, symbols = document.args
        variables = {pair.args[0]: pair.args[1] for pair in variables.args}
        sigma3 = {pair.args[0]: pair.args[1] for pair in sigma3.args}
        symbols = list(symbols.args)
    except (AttributeError, ValueError, IndexError):
        msg = f"{where}: the kinematics document is not Tuple(variables, sigma3, parameters)"
        raise ManifestError(msg) from None
    if not isinstance(document, sp.Tuple) or [str(s) for s in symbols] != [
        p.name for p in parameters
    ]:
        msg = f"{where}: the kinematics document's parameter symbols differ from the manifest's"
        raise ManifestError(msg)
    return {
        "intensity_expr": parse_srepr(intensity_text),
        "variables": variables,
        "parameter_defaults": {s: p.value for s, p in zip(symbols, parameters, strict=True)},
        "sigma3": sigma3,
    }
