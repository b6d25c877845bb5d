"""Generate C99 source that evaluates a model's intensity, from its sympy expressions.

Semantics follow numpy, as upstream's lambdified functions do: every intermediate is typed
real or complex by following the expression (numpy's dtype promotion), so a real ``sqrt`` of a
negative number gives NaN and a complex one does not.

Speed comes from the math and from the layout, not from unsafe flags:

* the helicity angles enter only as ``cos``/``sin`` of half-integer multiples of
  ``θ = ±acos(z)``; these are rewritten exactly as polynomials in ``cos(θ/2) = sqrt((1+z)/2)``
  and ``sin(θ/2) = ±sqrt((1-z)/2)``, with ``z`` replaced by NaN where ``|z| > 1`` (where
  ``acos`` gives NaN), which removes all trigonometric calls;
* complex values are split into real and imaginary parts, so the generated code is plain
  real arithmetic that the compiler vectorises across events (``#pragma omp simd``) over
  blocks of events; the few remaining libm calls run in scalar loops between the vector loops;
* expressions that depend only on parameters are computed once per call.

Symbol names never become C identifiers by themselves: parameters are read from a packed
``par`` array into locals with mangled names (``p<k>_<letters and digits>``), which cannot
clash with C keywords, ``complex.h`` names or sympy's ``I``.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

from modelstore._native.emitter import (
    _TEMP_RE,
    BLOCK,
    NATIVE_ABI,
    SUPPORTED_ABIS,
    _Emitter,
)
from modelstore._native.lowering import LoweredModel, lower_model
from modelstore._native.names import mangle, parameter_signature
from modelstore._native.units import header_words

__all__ = [
    "BLOCK",
    "NATIVE_ABI",
    "SUPPORTED_ABIS",
    "LoweredModel",
    "intensity_c_source",
    "lower_model",
    "mangle",
    "parameter_signature",
]


def _c_string(text: str) -> str:
    out = []
    for byte in text.encode("utf-8"):
        ch = chr(byte)
        out.append(ch if (ch.isalnum() or ch in " _-+.,:;()[]{}^/") else f"\\{byte:03o}")
    return '"' + "".join(out) + '"'


def _loops(emitter: _Emitter, result: str, outputs: Sequence[tuple[str, str]] | None = None) -> str:
    """The body of the block function: vector loops and scalar call loops, level by level.

    ``outputs`` holds ``(array name, code)`` pairs, all written in the last vector loop; by
    default the one output ``out`` with code ``result``.
    """
    outputs = [("out", result)] if outputs is None else list(outputs)
    temps = [t for t in emitter.temps if t.level >= 0]
    loop_of = {}
    for t in temps:
        loop_of[t.name] = ("call" if t.call else "vec", t.level)
    result_loop = ("vec", max([emitter.level_of(code) for _, code in outputs] + [0]))
    uses: dict[str, set[tuple[str, int]]] = {t.name: set() for t in temps}
    for t in temps:
        for name in _TEMP_RE.findall(t.code):
            if name in uses:
                uses[name].add(loop_of[t.name])
    for _, code in outputs:
        for name in _TEMP_RE.findall(code):
            if name in uses:
                uses[name].add(result_loop)
    arrays = {t.name for t in temps if t.call or any(u != loop_of[t.name] for u in uses[t.name])}

    def ref(code: str) -> str:
        code = _TEMP_RE.sub(
            lambda m: f"{m.group(1)}[j]" if m.group(1) in arrays else m.group(1), code
        )
        return re.sub(r"\bsigma([12])\b", r"s\1[j]", code)

    lines = []
    if arrays:
        ordered = sorted(arrays, key=lambda n: int(n[1:]))
        lines.append(f"double {', '.join(f'{n}[{BLOCK}]' for n in ordered)};")
    max_level = max([t.level for t in temps] + [result_loop[1]])
    for level in range(max_level + 1):
        calls = [t for t in temps if t.call and t.level == level]
        if calls:
            lines.append("for (size_t j = 0; j < m; ++j) {")
            lines.extend(f"    {t.name}[j] = {ref(t.code)};" for t in calls)
            lines.append("}")
        vector = [t for t in temps if not t.call and t.level == level]
        is_last = level == result_loop[1]
        if vector or is_last:
            lines.append("#pragma omp simd")
            lines.append("for (size_t j = 0; j < m; ++j) {")
            for t in vector:
                if t.name in arrays:
                    lines.append(f"    {t.name}[j] = {ref(t.code)};")
                else:
                    lines.append(f"    const double {t.name} = {ref(t.code)};")
            if is_last:
                lines.extend(f"    {name}[j] = {ref(code)};" for name, code in outputs)
            lines.append("}")
    return "\n".join("    " + line for line in lines)


def intensity_c_source(
    forms: Mapping[str, Any], parameter_names: Sequence[str], abi: int, lowering: int = 1
) -> str:
    """The intensity-only C file (``ms_evaluate``) declaring native ABI ``abi``.

    Raises:
        ModelstoreError: an expression has no C translation, a parameter name cannot be
            mangled, or ``lowering`` is unknown.
    """
    lowered = lower_model(forms, parameter_names, lowering)
    emitter, result_code, slot = lowered.emitter, lowered.result, lowered.n_slots
    kinds = [cplx for _, _, cplx in lowered.parameters]
    param_lines = [
        f"const double {local}_re = par[{first}], {local}_im = par[{first + 1}];"
        if cplx
        else f"const double {local} = par[{first}];"
        for local, first, cplx in lowered.parameters
    ]

    setup = [t for t in emitter.temps if t.level < 0]
    signature = parameter_signature(parameter_names, kinds)
    names_table = ",\n    ".join(_c_string(n) for n in parameter_names)
    n_params = len(parameter_names)
    nl = "\n    "
    unpack = nl.join(
        f"const double {t.name} = st->v[{k}]; (void){t.name};" for k, t in enumerate(setup)
    )
    body = unpack + "\n" + _loops(emitter, result_code)
    lowering_line, axes, _, schedule = header_words(lowering)
    return f"""\
/* Generated by modelstore (native ABI {abi}); do not edit.
{lowering_line} * Intensity of one published model at arrays of {axes}
 * {n_params} parameters in {slot} double slots; complex ones take (re, im).
 * {len(emitter.temps)} temporaries, {len(setup)} of them computed once per call; events are
 * processed in blocks of {BLOCK}, in vector loops (omp simd) and scalar loops for libm calls,
 * compiled for AVX-512, AVX2 and portable code and chosen at run time (ms_isa).
 */
#include <math.h>
#include <stddef.h>

static const char *const ms_parameter_names[] = {{
    {names_table}
}};

int ms_abi(void) {{ return {abi}; }}
int ms_n_parameters(void) {{ return {n_params}; }}
int ms_n_slots(void) {{ return {slot}; }}
const char *ms_parameter_name(int k) {{
    return (k >= 0 && k < {n_params}) ? ms_parameter_names[k] : 0;
}}
const char *ms_signature(void) {{ return "{signature}"; }}

typedef struct {{ double v[{max(len(setup), 1)}]; }} ms_setup_t;

/* Everything that depends on the parameters alone, once per call. */
static void ms_prepare(const double *par, ms_setup_t *st)
{{
    {nl.join(param_lines)}
    {nl.join(f"const double {t.name} = {t.code};" for t in setup)}
    {nl.join(f"st->v[{k}] = {t.name};" for k, t in enumerate(setup))}
}}

#if defined(__GNUC__) && defined(__x86_64__)
#define MS_X86_DISPATCH 1
/* The same code compiled for AVX-512 and AVX2, chosen at run time. Vectorising across events
 * does not change the order of operations within an event (no FMA contraction, no
 * reassociation), so every variant gives bit-identical results. */
__attribute__((target("avx512f")))
static void ms_block_avx512(const double *restrict s1, const double *restrict s2,
                            double *restrict out, size_t m, const ms_setup_t *st)
{{
    {body}
}}

__attribute__((target("avx2")))
static void ms_block_avx2(const double *restrict s1, const double *restrict s2,
                          double *restrict out, size_t m, const ms_setup_t *st)
{{
    {body}
}}
#endif

static void ms_block(const double *restrict s1, const double *restrict s2,
                     double *restrict out, size_t m, const ms_setup_t *st)
{{
    {body}
}}

/* 0: portable code, 1: AVX2, 2: AVX-512; the best the processor has, at most the limit. */
static int ms_isa_limit = 2;

void ms_set_isa_limit(int level) {{ ms_isa_limit = level; }}

int ms_isa(void)
{{
    int level = 0;
#ifdef MS_X86_DISPATCH
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2")) level = 1;
    if (__builtin_cpu_supports("avx512f")) level = 2;
#endif
    return level < ms_isa_limit ? level : (ms_isa_limit < 0 ? 0 : ms_isa_limit);
}}

void ms_evaluate(const double *s1, const double *s2, double *out, size_t n,
                 const double *par, int n_threads)
{{
    ms_setup_t st;
    ms_prepare(par, &st);
    const int isa = ms_isa();
    if (n_threads < 1) n_threads = 1;
    const size_t n_blocks = (n + {BLOCK} - 1) / {BLOCK};
#pragma omp parallel for num_threads(n_threads) {schedule} if(n > 4096)
    for (size_t b = 0; b < n_blocks; ++b) {{
        const size_t start = b * {BLOCK};
        const size_t m = (n - start < {BLOCK}) ? n - start : {BLOCK};
#ifdef MS_X86_DISPATCH
        if (isa == 2) {{
            ms_block_avx512(s1 + start, s2 + start, out + start, m, &st);
            continue;
        }}
        if (isa == 1) {{
            ms_block_avx2(s1 + start, s2 + start, out + start, m, &st);
            continue;
        }}
#endif
        ms_block(s1 + start, s2 + start, out + start, m, &st);
    }}
}}
"""
