"""Several outputs from one lowering: the intensity and the polarimeter vector α⃗ (1.4.0 on).

The polarimetry forms hold the model in structured form (see
:mod:`modelstore.format.polarimetry_forms`): the twelve amplitudes ``A^k[λ0, λ1, 0, 0]`` as
expressions of σ1, σ2 and the parameters, and the intensity and the three α⃗ numerators in
terms of these amplitude symbols and the alignment angles ζ. They are lowered in two stages on
one :class:`~modelstore._native.emitter._Emitter`:

1. the amplitudes, jointly (one ``sp.cse`` of all twelve), each materialised as a complex value;
2. the intensity and the three numerators on top of them (a second joint ``sp.cse``).

Then ``α_i = re(N_i / I)`` as upstream (``formulate_polarimetry``: numerator over intensity,
reference subsystem 1). The half-angle rewrite runs once over all expressions together, so the
amplitudes and the numerators share one set of half-angle symbols.

The C file of a 1.4.0 version holds the intensity-only ``ms_evaluate`` exactly as before
(the same lowering of the unfolded intensity) and, after it, ``ms_evaluate_polarimetry``
with planar outputs and the same block, instruction-set and thread structure (native ABI 4).
The array program gains a second function ``polarimetry(sigma1, sigma2, par, xp)`` that
returns ``(intensity, ax, ay, az)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from modelstore._native.codegen import _loops, intensity_c_source
from modelstore._native.emitter import (
    BLOCK,
    NATIVE_ABI,
    _Emitter,
    _Real,
    _Temp,
    _Value,
)
from modelstore._native.lowering import _rewrite_angles, emit_angles, emit_parameters
from modelstore._native.rewrites import collect_factors, merge_roots
from modelstore._native.units import header_words
from modelstore.errors import ModelstoreError

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

__all__ = [
    "OUTPUTS",
    "LoweredPolarimetry",
    "generate_polarimetry_c_source",
    "lower_polarimetry",
]

OUTPUTS = ("out_i", "out_x", "out_y", "out_z")


@dataclass
class LoweredPolarimetry:
    """The structured model as straight-line real code with four outputs (I, αx, αy, αz)."""

    parameter_names: list[str]
    parameters: list[tuple[str, int, bool]]
    n_slots: int
    temps: list[_Temp]
    outputs: list[str]  # code (a temporary's name) of I, αx, αy, αz
    emitter: _Emitter


def lower_polarimetry(
    forms: Mapping[str, Any], parameter_names: Sequence[str], lowering: int = 1
) -> LoweredPolarimetry:
    """Lower the amplitudes, the intensity and the α⃗ numerators of ``forms`` jointly.

    ``lowering`` as in :func:`modelstore._native.lowering.lower_model`.

    Raises:
        ModelstoreError: the forms have no polarimetry, the names do not match the model,
            an expression has a node without a translation, or ``lowering`` is unknown.
    """
    import sympy as sp

    if "polarimetry" not in forms or "amplitudes" not in forms:
        msg = "these forms have no polarimetry (published from 1.4.0 on)"
        raise ModelstoreError(msg)
    emitter = _Emitter(lowering)
    parameters, slot = emit_parameters(emitter, forms, parameter_names)

    s1, s2 = sp.symbols("sigma1 sigma2", nonnegative=True)
    emitter.symbols[s1] = _Value(_Real("sigma1"), None, False)
    emitter.symbols[s2] = _Value(_Real("sigma2"), None, False)
    ((s3, s3_expr),) = forms["sigma3"].items()
    emitter.symbols[s3] = emitter.materialize(emitter.value(s3_expr))

    amplitudes = forms["amplitudes"]
    polarimetry = forms["polarimetry"]
    # The amplitude symbols are Indexed objects; plain complex dummies keep cse away from them.
    symbols = list(amplitudes)
    dummies = {a: sp.Dummy(f"A{k}") for k, a in enumerate(symbols)}
    numerators = list(polarimetry["alpha_numerators"])
    if len(numerators) != 3:
        msg = "the polarimetry forms must hold three numerators (x, y, z)"
        raise ModelstoreError(msg)
    structured = [sp.sympify(e).xreplace(dummies) for e in (polarimetry["intensity"], *numerators)]
    everything = sp.Tuple(*(amplitudes[a] for a in symbols), *structured)
    # one rewrite of everything: one shared set of half-angle symbols
    rewritten, angles, remaining = _rewrite_angles(everything, forms["variables"], lowering)
    emit_angles(emitter, angles, remaining)
    if lowering >= 2:
        rewritten = collect_factors(rewritten)

    n = len(symbols)
    parts = list(rewritten.args)
    replacements, reduced = sp.cse(
        parts[:n], order="none", list=True, symbols=sp.numbered_symbols("ms_amp", cls=sp.Dummy)
    )
    for symbol, expr in replacements:
        emitter.bind(symbol, expr)
    for a, expr in zip(symbols, reduced, strict=True):
        emitter.symbols[dummies[a]] = emitter.materialize(emitter.value(expr))
    replacements, reduced = sp.cse(
        parts[n:], order="none", list=True, symbols=sp.numbered_symbols("ms_pol", cls=sp.Dummy)
    )
    for symbol, expr in replacements:
        emitter.bind(symbol, expr)
    intensity = emitter.value(reduced[0])
    if intensity.re is None:
        msg = "the intensity is identically zero"
        raise ModelstoreError(msg)
    intensity = emitter.materialize(intensity)
    outputs = [intensity.re.code]  # type: ignore[union-attr]
    for numerator in reduced[1:]:
        alpha = emitter.div(emitter.value(numerator), intensity)  # upstream: re(N / I)
        code = alpha.re.code if alpha.re is not None else f"(0.0 / {intensity.re.code})"  # type: ignore[union-attr]
        outputs.append(emitter.temp(code).code)
    if lowering >= 2:
        merge_roots(emitter.temps, outputs)
    return LoweredPolarimetry(
        list(parameter_names), parameters, slot, emitter.temps, outputs, emitter
    )


def _polarimetry_c_part(lowered: LoweredPolarimetry) -> str:
    emitter = lowered.emitter
    _, _, frame, schedule = header_words(emitter.lowering)
    setup = [t for t in emitter.temps if t.level < 0]
    nl = "\n    "
    param_lines = [
        f"const double {local}_re = par[{first}], {local}_im = par[{first + 1}];"
        if cplx
        else f"const double {local} = par[{first}];"
        for local, first, cplx in lowered.parameters
    ]
    unpack = nl.join(
        f"const double {t.name} = st->v[{k}]; (void){t.name};" for k, t in enumerate(setup)
    )
    body = unpack + "\n" + _loops(emitter, "", list(zip(OUTPUTS, lowered.outputs, strict=True)))
    outs = ", ".join(f"double *restrict {name}" for name in OUTPUTS)
    offsets = ", ".join(f"{name} + start" for name in OUTPUTS)
    return f"""
/* Polarimetry (native ABI {NATIVE_ABI}): the intensity and the polarimeter vector
 * alpha = (x, y, z) = re(numerator / intensity), {frame}, from the model's
 * structured form: {len(lowered.outputs)} planar outputs, {len(emitter.temps)} temporaries, {len(setup)} of them
 * computed once per call; the same blocks, instruction sets and threads as ms_evaluate.
 */
typedef struct {{ double v[{max(len(setup), 1)}]; }} ms_polarimetry_setup_t;

static void ms_polarimetry_prepare(const double *par, ms_polarimetry_setup_t *st)
{{
    {nl.join(param_lines)}
    {nl.join(f"const double {t.name} = {t.code};" for t in setup)}
    {nl.join(f"st->v[{k}] = {t.name};" for k, t in enumerate(setup))}
}}

#ifdef MS_X86_DISPATCH
__attribute__((target("avx512f")))
static void ms_polarimetry_block_avx512(const double *restrict s1, const double *restrict s2,
    {outs}, size_t m, const ms_polarimetry_setup_t *st)
{{
    {body}
}}

__attribute__((target("avx2")))
static void ms_polarimetry_block_avx2(const double *restrict s1, const double *restrict s2,
    {outs}, size_t m, const ms_polarimetry_setup_t *st)
{{
    {body}
}}
#endif

static void ms_polarimetry_block(const double *restrict s1, const double *restrict s2,
    {outs}, size_t m, const ms_polarimetry_setup_t *st)
{{
    {body}
}}

void ms_evaluate_polarimetry(const double *s1, const double *s2, double *out_i, double *out_x,
                             double *out_y, double *out_z, size_t n, const double *par,
                             int n_threads)
{{
    ms_polarimetry_setup_t st;
    ms_polarimetry_prepare(par, &st);
    const int isa = ms_isa();
    if (n_threads < 1) n_threads = 1;
    const size_t n_blocks = (n + {BLOCK} - 1) / {BLOCK};
#pragma omp parallel for num_threads(n_threads) {schedule} if(n > 4096)
    for (size_t b = 0; b < n_blocks; ++b) {{
        const size_t start = b * {BLOCK};
        const size_t m = (n - start < {BLOCK}) ? n - start : {BLOCK};
#ifdef MS_X86_DISPATCH
        if (isa == 2) {{
            ms_polarimetry_block_avx512(s1 + start, s2 + start, {offsets}, m, &st);
            continue;
        }}
        if (isa == 1) {{
            ms_polarimetry_block_avx2(s1 + start, s2 + start, {offsets}, m, &st);
            continue;
        }}
#endif
        ms_polarimetry_block(s1 + start, s2 + start, {offsets}, m, &st);
    }}
}}
"""


def generate_polarimetry_c_source(
    forms: Mapping[str, Any], parameter_names: Sequence[str], lowering: int = 1
) -> str:
    """The ABI 4 C file: ``ms_evaluate`` (intensity, as before) and ``ms_evaluate_polarimetry``.

    Raises:
        ModelstoreError: an expression has no C translation, a parameter name cannot be
            mangled, or ``lowering`` is unknown.
    """
    intensity = intensity_c_source(forms, parameter_names, NATIVE_ABI, lowering)
    return intensity + _polarimetry_c_part(lower_polarimetry(forms, parameter_names, lowering))
