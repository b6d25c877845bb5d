"""An ampform-dpd ``AmplitudeModel`` as the seed's dict of forms (ampform-dpd only imported here).

An ampform-dpd ``DalitzPlotDecompositionBuilder`` gives its model (reference subsystem 1) and,
for a spin-½ decaying particle, the polarimeter vector α⃗'s forms as well
(:func:`polarimetry_forms_of_builder`). ``model.full_expression`` unfolded with ``doit`` is the
intensity, the variables (helicity and alignment angles) are unfolded too, ampform's
``ComplexSqrt`` (which ``doit`` keeps) becomes its ``Piecewise`` definition, σ3 is the model's
own invariant in σ1 and σ2, and the parameter defaults become plain numbers (integers as float
or complex numbers, so that fits can vary them). The decay (names, masses) fills the
manifest's ``about``.
"""

from __future__ import annotations

from importlib import metadata
from typing import Any

from modelstore.errors import InvalidInputError
from modelstore.format.polarimetry_forms import REFERENCE_SUBSYSTEM

__all__ = [
    "about_ampform_dpd",
    "forms_from_ampform_dpd",
    "forms_from_ampform_dpd_builder",
    "is_ampform_dpd_builder",
    "is_ampform_dpd_model",
    "polarimetry_forms_of_builder",
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
        "parameter_defaults": _fittable_defaults(model.parameter_defaults),
        "sigma3": {s3: unfold_definitions(model.invariants[s3].doit())},
    }


def _fittable_defaults(defaults: Any) -> dict[Any, Any]:
    """The defaults, integers made numbers a fit can vary: complex for a symbol not known to be
    real (ampform-dpd's couplings ``H[...]`` default to 1), float for a real one (its meson
    radii ``R`` default to 1). Published as integers, they could not be set to 0.5 or 1+2j.
    """
    out: dict[Any, Any] = {}
    for symbol, value in defaults.items():
        integer = isinstance(value, int) and not isinstance(value, bool)
        if integer or getattr(value, "is_Integer", False):
            out[symbol] = float(value) if symbol.is_real is True else complex(value)
        else:
            out[symbol] = value
    return out


def is_ampform_dpd_builder(builder: Any) -> bool:
    """True for an object shaped like ampform-dpd's ``DalitzPlotDecompositionBuilder``.

    Never raises.
    """
    return all(
        callable(getattr(builder, name, None))
        for name in ("formulate", "formulate_aligned_amplitude")
    ) and hasattr(builder, "decay")


def forms_from_ampform_dpd_builder(builder: Any) -> tuple[dict[str, Any], Any]:
    """The forms of the builder's model (reference subsystem 1), with the polarimetry forms
    where the decaying particle has spin ½; and the model (for its ``about``).

    Raises:
        InvalidInputError: the model has no σ3 invariant.
    """
    model = builder.formulate(reference_subsystem=REFERENCE_SUBSYSTEM)
    forms = forms_from_ampform_dpd(model)
    if float(builder.decay.initial_state.spin) == 0.5:
        forms.update(polarimetry_forms_of_builder(builder, model))
    return forms, model


def polarimetry_forms_of_builder(builder: Any, model: Any) -> dict[str, Any]:
    """The ``amplitudes`` and ``polarimetry`` forms (see
    :mod:`modelstore.format.polarimetry_forms`) of a spin-½ decay: the numerators of
    ``α_i = Σ_{λ0, λ0', λ} conj(A_{λ0 λ}) σ_i[λ0, λ0'] A_{λ0' λ} / I`` with the aligned
    amplitudes of reference subsystem 1 and the Pauli matrices σ_i, as ``formulate_polarimetry``
    of LHCb's ``polarimetry-lc2pkpi`` writes them (Λc⁺ polarimetry, arXiv:2301.07010), here for
    any ampform-dpd decay of a spin-½ particle.

    Raises:
        InvalidInputError: the decaying particle's spin is not ½.
    """
    import sympy as sp
    from ampform.sympy import PoolSum, perform_cached_doit
    from ampform_dpd.spin import create_spin_range
    from sympy.physics.matrices import msigma

    half = sp.Rational(1, 2)
    spin = builder.decay.initial_state.spin
    if float(spin) != 0.5:
        msg = f"α⃗ needs a spin-1/2 decaying particle; {builder.decay.initial_state.name} has {spin}"
        raise InvalidInputError(msg)
    l0, l0_prime = sp.symbols(R"lambda \lambda^{\prime}", rational=True)
    final = {
        sp.Symbol(f"lambda{i}", rational=True): create_spin_range(state.spin)
        for i, state in builder.decay.final_state.items()
    }

    def index(helicity: Any) -> Any:  # -1/2 -> row 1, +1/2 -> row 0 of a Pauli matrix
        return sp.Piecewise((1, sp.LessThan(helicity, 0)), (0, True))

    def aligned(helicity: Any) -> Any:
        return builder.formulate_aligned_amplitude(helicity, *final, REFERENCE_SUBSYSTEM)[0]

    numerators = tuple(
        unfold_definitions(
            PoolSum(
                aligned(l0).conjugate() * pauli[index(l0), index(l0_prime)] * aligned(l0_prime),
                (l0, [-half, half]),
                (l0_prime, [-half, half]),
                *final.items(),
            )
            .cleanup()
            .doit()
        )
        for pauli in map(msigma, (1, 2, 3))
    )
    return {
        "amplitudes": {
            symbol: unfold_definitions(perform_cached_doit(expr))
            for symbol, expr in model.amplitudes.items()
        },
        "polarimetry": {
            "intensity": unfold_definitions(model.intensity.doit()),
            "alpha_numerators": numerators,
        },
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
