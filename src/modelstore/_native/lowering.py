"""Lowering a model's forms to straight-line real code (the half-angle rewrite included).

The result (``LoweredModel``) is what the C source and the array program are printed from.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from modelstore.errors import ModelstoreError

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

from modelstore._native.emitter import _Emitter, _Real, _Temp, _Value
from modelstore._native.names import mangle
from modelstore._native.rewrites import collect_factors, emit_squares, merge_roots, without_roots

# -- the half-angle rewrite --------------------------------------------------------------------


def _rewrite_angles(
    intensity: Any, variables: Mapping[Any, Any], lowering: int = 1
) -> tuple[Any, list[tuple[Any, Any, Any]], dict[Any, Any]]:
    """Replace cos/sin of half-integer multiples of ``θ = ±acos(z)`` by half-angle polynomials.

    Returns the rewritten expression, ``(symbols, sign, z)`` for each rewritten angle, and the
    variables that must still be computed. The symbols are ``(c, s)`` for ``cos(θ/2)``,
    ``sin(θ/2)``; from lowering 2 on ``(c, s, c², s², c·s)``, each monomial ``c^a s^b`` being
    written with the squares (no root) and at most one of ``c``, ``s``, ``c·s`` (one root),
    and unused symbols None.
    """
    import sympy as sp

    zeros = {symbol: 0 for symbol, expr in variables.items() if expr == 0}
    intensity = intensity.xreplace(zeros)
    halves: dict[Any, tuple[Any, ...]] = {}
    angles = []
    for symbol, expr in variables.items():
        if symbol in zeros:
            continue
        sign, core = (-1, -expr) if expr.could_extract_minus_sign() else (1, expr)
        if isinstance(core, sp.acos):
            c = sp.Dummy(f"c_{symbol}", real=True)
            s = sp.Dummy(f"s_{symbol}", real=True)
            halves[symbol] = (c, s)
            if lowering >= 2:
                squares = (sp.Dummy(f"cc_{symbol}", real=True), sp.Dummy(f"ss_{symbol}", real=True))
                halves[symbol] = (c, s, *squares, sp.Dummy(f"cs_{symbol}", real=True))
            angles.append((symbol, sign, core.args[0]))

    def replace(node: Any) -> Any:
        coefficient, angle = node.args[0].as_coeff_Mul()
        if angle not in halves or not (2 * coefficient).is_Integer:
            return None
        n = int(2 * coefficient)
        c, s = halves[angle][:2]
        re_, im = sp.expand((c + sp.I * s) ** abs(n)).as_real_imag()
        if isinstance(node, sp.cos):
            return re_
        return im if n >= 0 else -im

    def is_trig_of_angle(node: Any) -> bool:
        return isinstance(node, (sp.cos, sp.sin)) and replace(node) is not None

    intensity = intensity.replace(is_trig_of_angle, replace)
    if lowering >= 2:
        for symbols in halves.values():
            intensity = without_roots(intensity, symbols)
    free = intensity.free_symbols  # once: sympy walks the whole expression for it
    remaining = {s: e for s, e in variables.items() if s in free}
    used = [(symbol, sign, z) for symbol, sign, z in angles if set(halves[symbol]) & free]
    if lowering >= 2:
        return (
            intensity,
            [(tuple(h if h in free else None for h in halves[s]), sign, z) for s, sign, z in used],
            remaining,
        )
    return intensity, [(halves[s], sign, z) for s, sign, z in used], remaining


# -- the C file --------------------------------------------------------------------------------


def emit_parameters(
    emitter: _Emitter, forms: Mapping[str, Any], parameter_names: Sequence[str]
) -> tuple[list[tuple[str, int, bool]], int]:
    """Read the packed ``par`` array into mangled locals: ``(local, first slot, complex)``, slots.

    Complex parameters take two slots (real, imaginary), real ones one.

    Raises:
        ModelstoreError: the names do not match the model's parameters, or one cannot be mangled.
    """
    defaults = forms["parameter_defaults"]
    by_name = {str(symbol): symbol for symbol in defaults}
    if sorted(by_name) != sorted(parameter_names):
        msg = "the parameter names given do not match the model's parameters"
        raise ModelstoreError(msg)
    parameters = []
    slot = 0
    for k, name in enumerate(parameter_names):
        symbol = by_name[name]
        local = mangle(k, name)
        cplx = isinstance(defaults[symbol], complex)
        parameters.append((local, slot, cplx))
        if cplx:
            emitter.symbols[symbol] = _Value(
                emitter.temp(f"{local}_re + 0.0"), emitter.temp(f"{local}_im + 0.0"), True
            )
            slot += 2
        else:
            emitter.symbols[symbol] = _Value(emitter.temp(f"{local} + 0.0"), None, False)
            slot += 1
    return parameters, slot


def emit_angles(
    emitter: _Emitter, angles: list[tuple[Any, Any, Any]], remaining: Mapping[Any, Any]
) -> None:
    """Give the half-angle symbols of ``_rewrite_angles`` and the remaining variables values.

    Raises:
        ModelstoreError: a helicity angle's cosine is complex.
    """
    for halves, sign, z in angles:
        z_value = emitter.value(z)
        if z_value.cplx:
            msg = "a helicity angle's cosine is complex; cannot rewrite it"
            raise ModelstoreError(msg)
        zc = emitter.temp(z_value.re.code)  # type: ignore[union-attr]
        # acos(z) is NaN for |z| > 1 (and for NaN z): keep that, as upstream does.
        guarded = emitter.temp(f"((fabs({zc.code}) <= 1.0) ? {zc.code} : NAN)")
        if len(halves) == 5:
            emit_squares(emitter, halves, sign, guarded)
            continue
        c, s = halves
        emitter.symbols[c] = _Value(
            emitter.temp(f"sqrt((1.0 + {guarded.code}) * 0.5)"), None, False
        )
        half_sin = emitter.temp(f"sqrt((1.0 - {guarded.code}) * 0.5)")
        emitter.symbols[s] = _Value(
            half_sin if sign > 0 else emitter.temp(f"(-{half_sin.code})"), None, False
        )
    for symbol, expr in remaining.items():
        emitter.bind(symbol, expr)


@dataclass
class LoweredModel:
    """A model as straight-line real code: what the C file and the array program are printed from.

    ``parameters`` holds ``(local name, first slot, is complex)`` in the packed order; complex
    parameters are read as ``<local>_re``/``<local>_im``. ``temps`` are in evaluation order
    (level -1: parameters only); ``result`` is the code of the intensity.
    """

    parameter_names: list[str]
    parameters: list[tuple[str, int, bool]]
    n_slots: int
    temps: list[_Temp]
    result: str
    emitter: _Emitter


# The last lowering of each kind, kept with the very objects it was made from: a publish prints
# the C source and the array program from one lowering each (sympy rebuilds a large expression
# slowly).
_LAST: list[tuple[tuple[Any, ...], LoweredModel]] = []


def lower_model(
    forms: Mapping[str, Any], parameter_names: Sequence[str], lowering: int = 1
) -> LoweredModel:
    """Lower the model in ``forms`` to straight-line real code (typed as numpy would).

    ``parameter_names`` fixes the order of the packed parameter array (the manifest's order).
    Complex parameters take two slots (real, imaginary), real ones one. ``lowering`` is one of
    ``LOWERINGS`` (``modelstore._native.emitter``). Lowering the same forms objects again
    returns the same (read-only) result.

    Raises:
        ModelstoreError: the names do not match the model, the expression has a node without
            a translation, or ``lowering`` is unknown.
    """
    objects = tuple(
        forms[k] for k in ("intensity_expr", "variables", "parameter_defaults", "sigma3")
    )
    key = (*objects, tuple(parameter_names), tuple(map(len, objects[1:])), lowering)
    for last_key, lowered in _LAST:
        if all(a is b for a, b in zip(last_key[:4], objects, strict=True)) and (
            last_key[4:] == key[4:]
        ):
            return lowered
    lowered = _lower_model(forms, parameter_names, lowering)
    _LAST[:] = [*(entry for entry in _LAST if entry[0][-1] != lowering), (key, lowered)]
    return lowered


def _lower_model(
    forms: Mapping[str, Any], parameter_names: Sequence[str], lowering: int
) -> LoweredModel:
    import sympy as sp

    emitter = _Emitter(lowering)
    parameters, slot = emit_parameters(emitter, forms, parameter_names)

    s1, s2 = sp.symbols("sigma1 sigma2", nonnegative=True)
    emitter.symbols[s1] = _Value(_Real("sigma1"), None, False)
    emitter.symbols[s2] = _Value(_Real("sigma2"), None, False)
    ((s3, s3_expr),) = forms["sigma3"].items()
    emitter.symbols[s3] = emitter.materialize(emitter.value(s3_expr))

    intensity, angles, remaining = _rewrite_angles(
        forms["intensity_expr"], forms["variables"], lowering
    )
    emit_angles(emitter, angles, remaining)
    if lowering >= 2:
        intensity = collect_factors(intensity)

    replacements, (reduced,) = sp.cse([intensity], order="none", list=True)
    for symbol, expr in replacements:
        emitter.bind(symbol, expr)
    result = emitter.value(reduced)
    if result.re is None:
        msg = "the intensity is identically zero"
        raise ModelstoreError(msg)
    result_code = emitter.temp(result.re.code).code
    if lowering >= 2:
        merge_roots(emitter.temps, [result_code])
    return LoweredModel(
        list(parameter_names), parameters, slot, emitter.temps, result_code, emitter
    )
