"""An ampform-dpd ``AmplitudeModel`` as the seed's dict of forms (ampform-dpd only imported here).

``model.full_expression`` unfolded with ``doit`` is the intensity, the variables (helicity and
alignment angles) are unfolded too, ampform's ``ComplexSqrt`` (which ``doit`` keeps) becomes
its ``Piecewise`` definition, σ3 is the model's own invariant in σ1 and σ2, and the
parameter defaults become plain numbers. The decay (names, masses) fills the manifest's
``about``.
"""

from __future__ import annotations

from importlib import metadata
from typing import Any

from modelstore.errors import InvalidInputError

__all__ = [
    "about_ampform_dpd",
    "forms_from_ampform_dpd",
    "is_ampform_dpd_model",
    "unfold_definitions",
]


def is_ampform_dpd_model(model: Any) -> bool:
    """True for an object shaped like ampform-dpd's ``AmplitudeModel``. Never raises."""
    return all(
        hasattr(type(model), name) or hasattr(model, name)
        for name in ("full_expression", "decay", "variables", "parameter_defaults", "invariants")
    )


def forms_from_ampform_dpd(model: Any) -> dict[str, Any]:
    """The forms dict of an ampform-dpd ``AmplitudeModel`` (its ``full_expression`` is unfolded).

    Raises:
        InvalidInputError: ``model`` is not an ampform-dpd model, or has no σ3 invariant.
    """
    import sympy as sp

    if not is_ampform_dpd_model(model):
        msg = (
            "expected the dict of forms or an ampform-dpd AmplitudeModel,"
            f" got {type(model).__name__}"
        )
        raise InvalidInputError(msg)
    s3 = sp.Symbol("sigma3", nonnegative=True)
    if s3 not in model.invariants:
        msg = "the ampform-dpd model has no invariant for sigma3"
        raise InvalidInputError(msg)
    return {
        "intensity_expr": unfold_definitions(model.full_expression),  # doit() of everything
        "variables": {k: unfold_definitions(v.doit()) for k, v in model.variables.items()},
        "parameter_defaults": dict(model.parameter_defaults.items()),
        "sigma3": {s3: unfold_definitions(model.invariants[s3].doit())},
    }


def unfold_definitions(expr: Any) -> Any:
    """``expr`` with ampform's printable classes that ``doit()`` keeps (``ComplexSqrt``)
    replaced by their plain sympy definitions (``get_definition()``: for ``ComplexSqrt(x)``,
    ``Piecewise((I*sqrt(-x), x < 0), (sqrt(x), True))``).

    Never raises for a sympy expression.
    """

    def printable(node: Any) -> bool:
        return callable(getattr(node, "get_definition", None)) and type(node).__module__.startswith(
            "ampform"
        )

    return expr.replace(printable, lambda node: node.get_definition())


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def about_ampform_dpd(model: Any) -> Any:
    """The manifest's ``about`` from the model's decay: decay text, particles, packages.

    Never raises (a decay it cannot read gives only the packages).
    """
    from modelstore.format.about import About, Particle

    packages = tuple(
        (name, v) for name in ("ampform", "ampform-dpd", "sympy") if (v := _version(name))
    )
    try:
        states = [model.decay.states[i] for i in range(4)]
        particles = tuple(Particle(str(s.name), float(s.mass)) for s in states)
        decay = f"{particles[0].label} → {' '.join(p.label for p in particles[1:])}"
    except (AttributeError, KeyError, TypeError, ValueError):
        return About(packages=packages)
    return About(decay=decay, particles=particles, packages=packages)
