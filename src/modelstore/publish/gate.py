"""The publish-time gate: the generated programs against sympy's own routes, point by point.

Two independent routes, both sympy ``lambdify`` with numpy, neither using modelstore's lowering:

* the seed's route (:func:`independent_intensity`): the intensity with the variables, σ3 and the
  parameter defaults substituted (``xreplace``), lambdified in σ1, σ2;
* the staged route (:func:`staged_intensity`, upstream's documented one): the variables
  lambdified first, then the intensity with the angles as inputs.

Inside the Dalitz region both give the model's values (NaN where the model is NaN). Outside it
they can differ: substituting lets sympy simplify ``cos(acos(z))`` to ``z``, finite for
``|z| > 1``, where the angle itself (and the staged route, and every modelstore backend) is NaN.
So the programs must agree with the seed's route at points inside the region and with the
staged route everywhere (the reference grid's points, phase-space points inside, a ring
outside), to ``RTOL`` relative (absolute where the value is 0) and with NaN at exactly the same
points; otherwise the publish is refused, naming the worst point. The stored reference values of
a model without its own are the staged route's on the reference grid.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from modelstore.errors import BackendUnavailableError, InvalidInputError, ModelstoreError

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from modelstore.format.manifest import Parameter
    from modelstore.publish.forms_check import CheckedForms

__all__ = [
    "RTOL",
    "GateReport",
    "check_against_route",
    "gate_points",
    "independent_alpha",
    "independent_intensity",
    "run_gate",
    "staged_intensity",
]

RTOL = 1e-9
SEED = "sympy's lambdify of the substituted expression"
STAGED = "sympy's lambdify (staged)"
INSIDE_POINTS = 1000
OUTSIDE_RING = 64


class GateReport(dict):
    """``{what: largest relative deviation}`` of each program checked, plus point counts."""


def _substitution(forms: Mapping[str, Any]) -> dict[Any, Any]:
    """One ``xreplace`` map doing the seed's three substitutions (variables, σ3, parameters)."""
    defaults = forms["parameter_defaults"]
    sigma3 = {k: v.xreplace(defaults) for k, v in forms["sigma3"].items()}
    variables = {k: v.xreplace(sigma3).xreplace(defaults) for k, v in forms["variables"].items()}
    return {**defaults, **sigma3, **variables}


def _lambdify(expr: Any) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    import sympy as sp

    s1, s2 = sp.symbols("sigma1:3", nonnegative=True)
    function = sp.lambdify((s1, s2), expr, modules="numpy", cse=True)

    def evaluate(sigma1: np.ndarray, sigma2: np.ndarray) -> np.ndarray:
        with np.errstate(all="ignore"):
            value = np.asarray(function(sigma1, sigma2))
        return np.broadcast_to(np.real(value), np.shape(sigma1)).astype(np.float64)

    return evaluate


def independent_intensity(
    forms: Mapping[str, Any],
) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """The seed's route: the fully substituted intensity, lambdified (real part, NaN kept).

    Raises:
        InvalidInputError: the substituted intensity still depends on other symbols than σ1, σ2.
    """
    import sympy as sp

    expr = forms["intensity_expr"].xreplace(_substitution(forms))
    stray = expr.free_symbols - set(sp.symbols("sigma1:3", nonnegative=True))
    if stray:
        names = ", ".join(sorted(str(s) for s in stray)[:12])
        msg = f"after substituting variables, sigma3 and parameters the intensity still has {names}"
        raise InvalidInputError(msg)
    return _lambdify(expr)


def staged_intensity(forms: Mapping[str, Any]) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """Upstream's documented route: the variables lambdified, then the intensity of them.

    Never raises.
    """
    import sympy as sp

    defaults = forms["parameter_defaults"]
    sigma3 = {k: v.xreplace(defaults) for k, v in forms["sigma3"].items()}
    variables = {k: v.xreplace(sigma3).xreplace(defaults) for k, v in forms["variables"].items()}
    angles = list(variables)
    s1, s2 = sp.symbols("sigma1:3", nonnegative=True)
    intensity = forms["intensity_expr"].xreplace({**defaults, **sigma3})
    function = sp.lambdify((s1, s2, *angles), intensity, modules="numpy", cse=True)
    angle_functions = [_lambdify(variables[a]) for a in angles]

    def evaluate(sigma1: np.ndarray, sigma2: np.ndarray) -> np.ndarray:
        values = [f(sigma1, sigma2) for f in angle_functions]
        with np.errstate(all="ignore"):
            value = np.asarray(function(sigma1, sigma2, *values))
        return np.broadcast_to(np.real(value), np.shape(sigma1)).astype(np.float64)

    return evaluate


def independent_alpha(
    forms: Mapping[str, Any],
) -> list[Callable[[np.ndarray, np.ndarray], np.ndarray]]:
    """α_i = re(N_i / I), amplitudes substituted, by the staged route (angles as inputs).

    The real part is numpy's, of the evaluated complex ratio (``staged_intensity`` keeps the
    real part): sympy's ``re`` of the expression would split every product into real and
    imaginary parts first (``as_real_imag``), which took 40 s of a 46 s publish for a
    two-resonance Ξc⁺ model.

    Never raises.
    """
    amplitudes = forms["amplitudes"]
    polarimetry = forms["polarimetry"]
    intensity = polarimetry["intensity"].xreplace(amplitudes)
    return [
        staged_intensity({**forms, "intensity_expr": n.xreplace(amplitudes) / intensity})
        for n in polarimetry["alpha_numerators"]
    ]


def gate_points(
    masses: Sequence[float], sigma1: np.ndarray, sigma2: np.ndarray, n_inside: int = INSIDE_POINTS
) -> tuple[np.ndarray, np.ndarray]:
    """The given points, ``n_inside`` phase-space points and a ring outside the bounding box.

    Never raises.
    """
    from modelstore.dalitz.kinematics import sample_dalitz
    from modelstore.format.reference import dalitz_limits

    m0, m1, m2, m3 = masses
    inside1, inside2 = sample_dalitz(n_inside, m0, m1, m2, m3, seed=20260)
    (lo1, hi1), (lo2, hi2) = dalitz_limits(m0, m1, m2, m3)
    angle = np.linspace(0, 2 * np.pi, OUTSIDE_RING, endpoint=False)
    ring1 = (lo1 + hi1) / 2 + 0.75 * (hi1 - lo1) * np.cos(angle)
    ring2 = (lo2 + hi2) / 2 + 0.75 * (hi2 - lo2) * np.sin(angle)
    keep = (ring1 > 0) & (ring2 > 0)
    return (
        np.concatenate([inside1, np.asarray(sigma1, dtype=float), ring1[keep]]),
        np.concatenate([inside2, np.asarray(sigma2, dtype=float), ring2[keep]]),
    )


def check_against_route(
    expected: np.ndarray,
    actual: np.ndarray,
    sigma1: np.ndarray,
    sigma2: np.ndarray,
    what: str,
    where: str,
    rtol: float = RTOL,
    route: str = STAGED,
) -> float:
    """The largest relative deviation of ``actual`` from ``expected``; refuse beyond ``rtol``.

    Raises:
        ModelstoreError: NaN at other points, or a deviation beyond ``rtol``; the message
            names the (first or worst) point and both values.
    """
    from modelstore.backends.numeric import compare_reference

    result = compare_reference(expected, actual)
    if result.nan_mismatches:
        i = result.first_nan_mismatch
        msg = (
            f"{where}: {what} is NaN at other points than {route} ({result.nan_mismatches}"
            f" of {result.points}), first at σ1={sigma1[i]:.10g}, σ2={sigma2[i]:.10g} ({route}"
            f" {expected[i]:.15g}, {what} {actual[i]:.15g})"
        )
        raise ModelstoreError(msg)
    if not result.within(rtol):
        i = result.worst
        msg = (
            f"{where}: {what} differs from {route} by {result.max_deviation:.3g}"
            f" relative (tolerance {rtol:g}); worst at σ1={sigma1[i]:.10g}, σ2={sigma2[i]:.10g}"
            f" ({route} {expected[i]:.15g}, {what} {actual[i]:.15g})"
        )
        raise ModelstoreError(msg)
    return result.max_deviation


def _native_evaluator(c_source: str, parameters: Sequence[Parameter], where: str) -> Any:
    from modelstore._native.build import load_or_build
    from modelstore._native.evaluator import NativeEvaluator
    from modelstore.store.hashing import bytes_digest

    try:
        build = load_or_build(bytes_digest(c_source.encode()), lambda: c_source)
    except BackendUnavailableError as exc:
        msg = (
            f"{where}: cannot check the generated C source ({exc}); publish without it"
            " (--no-native, native=False) or make a C compiler available"
        )
        raise BackendUnavailableError(msg) from None
    return NativeEvaluator(build.module, build.library_path, build.status, parameters)


def run_gate(
    checked: CheckedForms,
    blobs: Mapping[str, bytes],
    parameters: Sequence[Parameter],
    reference: Mapping[str, np.ndarray],
    where: str,
    route: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
) -> GateReport:
    """Check the array program and the C source (if in ``blobs``) against the independent route.

    Points: the reference's points, ``INSIDE_POINTS`` inside the Dalitz region and a ring
    outside; the stored reference intensity is checked at its own points too (what
    ``verify --numeric`` will do).

    Raises:
        InvalidInputError: the intensity is NaN at every point inside the Dalitz region.
        ModelstoreError: a program disagrees (see :func:`check_against_route`).
        BackendUnavailableError: the C source cannot be compiled here.
    """
    from modelstore.backends.base import pack_parameters
    from modelstore.format.arraycode import compile_array_program

    s1, s2 = gate_points(checked.masses, reference["sigma1"], reference["sigma2"])
    inside = slice(0, INSIDE_POINTS)
    seed_route = independent_intensity(checked.forms)(s1[inside], s2[inside])
    if np.isnan(seed_route).all():
        msg = (
            f"{where}: the intensity is NaN at every one of {INSIDE_POINTS} points inside the"
            " Dalitz region (sympy lambdify of the substituted expression): nothing to publish"
        )
        raise InvalidInputError(msg)
    expected = (route or staged_intensity(checked.forms))(s1, s2)
    check_against_route(
        seed_route, expected[inside], s1[inside], s2[inside], "the staged route", where, route=SEED
    )
    defaults = {p.name: p.value for p in parameters}
    report = GateReport()
    report["points"] = float(s1.size)
    report["inside"] = float(INSIDE_POINTS)
    report["nan"] = float(np.isnan(expected).sum())
    program = compile_array_program(blobs["array-source"].decode("utf-8"), f"{where} array program")
    with np.errstate(all="ignore"):
        actual = np.asarray(program(s1, s2, pack_parameters(parameters, defaults), np), dtype=float)
    actual = np.broadcast_to(actual, s1.shape)
    report["array program"] = max(
        check_against_route(expected, actual, s1, s2, "the array program", where),
        check_against_route(
            seed_route,
            actual[inside],
            s1[inside],
            s2[inside],
            "the array program",
            where,
            route=SEED,
        ),
    )
    n = len(reference["sigma1"])
    stored = np.asarray(reference["intensity"], dtype=float)
    report["reference"] = check_against_route(
        stored, actual[INSIDE_POINTS : INSIDE_POINTS + n], s1[INSIDE_POINTS:], s2[INSIDE_POINTS:],
        "the array program", where, route="the stored reference",
    )  # fmt: skip
    if "native-source" in blobs:
        evaluator = _native_evaluator(blobs["native-source"].decode("utf-8"), parameters, where)
        native = evaluator(s1, s2, defaults)
        report["C"] = max(
            check_against_route(expected, native, s1, s2, "the C program", where),
            check_against_route(
                seed_route,
                native[inside],
                s1[inside],
                s2[inside],
                "the C program",
                where,
                route=SEED,
            ),
        )
    return report
