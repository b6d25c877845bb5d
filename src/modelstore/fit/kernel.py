"""The C kernel of a coupling-only fit: Σ w log I and its gradient from cached basis values.

The C source is generated for one cache's structure (its pairs and alignment factors, below),
built through :mod:`modelstore._native.build` into the native build cache like a model's
evaluator (keyed by the source's digest, so a structure is compiled once), and called through
cffi. Events come in blocks of :data:`LANES`; a block holds, for each stored column ``v``,
``LANES`` real then ``LANES`` imaginary parts, only the real parts of a real column, and one
real factor of a column that is another times a real number (``KernelStructure.layout``: the
kernel reads memory as fast as it computes, so every byte left out counts). Per event the
kernel forms

* the amplitudes ``A_j = Σ_p D_p V_{v(p)}`` over the pairs ``p = (j, v)`` (``v < 0``: 1), with
  the coefficients ``D`` passed per call (they hold the couplings; each repeated over the
  ``LANES`` events of a block, so that the code reads them as vectors, not broadcasts),
* the aligned amplitudes ``X_λ = Σ_f (c_f V_{v(f)}) A_{j(f)}`` (constants ``c_f`` compiled
  in; half the work where the factor is real) and ``I = Σ_λ |X_λ|²``,
* ``r_λ = (w / I) X_λ``, ``s_j = Σ_f conj(c_f V_{v(f)}) r_{λ(f)}``,

and sums ``Σ w log I`` and (unless ``grad`` is 0) ``T_p = Σ conj(V_{v(p)}) s_{j(p)}``, from
which the caller gets the gradient. Straight-line code vectorised across the events of a block
(``omp simd``), amplitude by amplitude so that few values are live at once; every multiply-add
is an explicit ``fma`` (rounded once wherever it runs), so the AVX-512 + FMA, AVX2 + FMA and
portable code chosen at run time give identical bits (the portable code on an x86 CPU without
FMA calls libm's ``fma``: right, but slow). Each thread prefetches the block after next while
it computes one (without it the kernel waited on memory: 2.2× slower over 10⁵ events);
OpenMP over blocks; each thread's partial sums are added in thread order, so a result does not
depend on scheduling. The generated text holds only numbers and fixed identifiers, never a
model's names.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from modelstore.errors import BackendUnavailableError

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["CDEF", "LANES", "KernelStructure", "kernel_library", "kernel_source"]

LANES = 8

CDEF = """
int mc_lanes(void);
int mc_limit_isa(int level);
double mc_nll(size_t n_blocks, const double *vals, const double *w, const double *pd,
              double *t_out, double *i_out, int grad, int n_threads);
"""

_SIGNATURE = """(const double *restrict blk, const double *restrict wb,
    const double *restrict pd, double *restrict acc, double *restrict nll,
    double *restrict iout, int grad)"""


@dataclass(frozen=True)
class KernelStructure:
    """What the generated kernel is specialised for.

    ``pairs``: ``(j, v)``; ``factors``: ``(λ, j, v, real, c_re, c_im)``; ``v < 0`` means 1.
    ``layout``: per column ``v``, where a block holds it: ``(COMPLEX, re slot, im slot)``,
    ``(REAL, slot, -1)`` (its imaginary part is 0), or ``(SCALED, slot, u)``: a real factor
    times complex column ``u`` (``V_v = r V_u``; columns that differ by a real factor, such as
    one lineshape times two Wigner d's, cost one real number per event). A slot is ``LANES``
    doubles; a block is ``n_slots`` slots.
    """

    n_columns: int
    n_amplitudes: int
    n_helicities: int
    pairs: tuple[tuple[int, int], ...]
    factors: tuple[tuple[int, int, int, bool, float, float], ...]
    layout: tuple[tuple[int, int, int], ...]
    n_slots: int


COMPLEX, REAL, SCALED = 0, 1, 2
_Terms = list[tuple[str | None, str | None]]


# log(x) for normal positive x, vectorisable: x = 2^e m with m in [√½, √2), then
# log m = 2 atanh(s), s = (m - 1) / (m + 1), |s| < 0.1716, by its series to s^21 (truncation
# below 3e-17 relative); e as a double by the 2^52 trick (no integer conversion). Within 2 ulp
# of libm's log; zero, subnormal, infinite and NaN values go to libm's log (the caller).
_LOG = """
static inline __attribute__((always_inline)) double mc_log(double x)
{
    uint64_t bits, eb;
    memcpy(&bits, &x, sizeof bits);
    eb = (bits >> 52) | 0x4330000000000000ULL;
    double e;
    memcpy(&e, &eb, sizeof e);
    e = e - 4503599627370496.0 - 1023.0;
    bits = (bits & 0x000fffffffffffffULL) | 0x3ff0000000000000ULL;
    double m;
    memcpy(&m, &bits, sizeof m);
    const int big = m > 1.4142135623730951;
    m = big ? 0.5 * m : m;
    e = big ? e + 1.0 : e;
    const double s = (m - 1.0) / (m + 1.0), z = s * s;
    double q = 2.0 / 21.0;
    q = 2.0 / 19.0 + z * q;
    q = 2.0 / 17.0 + z * q;
    q = 2.0 / 15.0 + z * q;
    q = 2.0 / 13.0 + z * q;
    q = 2.0 / 11.0 + z * q;
    q = 2.0 / 9.0 + z * q;
    q = 2.0 / 7.0 + z * q;
    q = 2.0 / 5.0 + z * q;
    q = 2.0 / 3.0 + z * q;
    return e * 0.6931471805599453 + (2.0 * s + s * (z * q));
}
"""


def _num(x: float) -> str:
    text = repr(float(x))
    return text if ("." in text or "e" in text) else text + ".0"


def _col(st: KernelStructure, v: int) -> tuple[str, str | None]:
    """Column ``v``'s real and imaginary parts at event ``l`` as C (None: exactly 0)."""
    kind, a, b = st.layout[v]
    slot = f"blk[{a} * L + l]"
    if kind == COMPLEX:
        return slot, f"blk[{b} * L + l]"
    if kind == REAL:
        return slot, None
    ur, ui = _col(st, b)
    return f"({slot} * {ur})", f"({slot} * {ui})"


def _neg(code: str | None) -> str | None:
    return None if code is None else f"-{code}"


def _factor(st: KernelStructure, f: int) -> str:
    """``g{f}`` = c_f V_v (``g{f}r`` only where real)."""
    _, _, v, real, cr, ci = st.factors[f]
    if v < 0:
        if real:
            return f"const double g{f}r = {_num(cr)};"
        return f"const double g{f}r = {_num(cr)}, g{f}i = {_num(ci)};"
    vr, vi = _col(st, v)
    if real:
        return f"const double g{f}r = {_num(cr)} * {vr};"
    if vi is None:
        return f"const double g{f}r = {_num(cr)} * {vr}, g{f}i = {_num(ci)} * {vr};"
    return (
        f"const double g{f}r = {_num(cr)} * {vr} - {_num(ci)} * {vi},"
        f" g{f}i = {_num(cr)} * {vi} + {_num(ci)} * {vr};"
    )


def _chain(terms: Sequence[tuple[str | None, str | None]]) -> str:
    """``Σ`` of ``terms`` in order: ``(a, None)`` adds ``a``, ``(a, b)`` adds ``a·b`` by ``fma``,
    ``(None, b)`` (a product with an exact zero) adds nothing.

    ``fma`` rounds once on every instruction set (hardware or libm), so the sum has the same
    bits wherever it runs.
    """
    expr: str | None = None
    for a, b in terms:
        if a is None:  # a product with an exact zero
            continue
        if b is None:
            expr = a if expr is None else f"({expr} + {a})"
        elif expr is None:
            expr = f"{a} * {b}"
        else:
            expr = f"fma({a}, {b}, {expr})"
    return expr or "0.0"


def _body(st: KernelStructure) -> str:
    """One block's code, amplitude by amplitude (few values live at once: no register spills).

    Forward: each ``A_j`` from its pairs, then at once its terms of the ``X_λ``; backward: each
    ``s_j`` from the ``X_λ``, then at once its pairs' sums ``T_p``.
    """
    pairs_of: dict[int, list[int]] = {}
    for p, (j, _) in enumerate(st.pairs):
        pairs_of.setdefault(j, []).append(p)
    factors_of: dict[int, list[int]] = {}
    for f, (_, j, _, _, _, _) in enumerate(st.factors):
        if j in pairs_of:
            factors_of.setdefault(j, []).append(f)
    helicities = sorted({st.factors[f][0] for fs in factors_of.values() for f in fs})
    fwd = [f"double x{x}r = 0.0, x{x}i = 0.0;" for x in helicities]
    bwd = [
        f"const double x{x}r = xs[{2 * x}][l] * scale[l], x{x}i = xs[{2 * x + 1}][l] * scale[l];"
        for x in helicities
    ]
    for j in sorted(pairs_of):
        re: _Terms = []
        im: _Terms = []
        for p in pairs_of[j]:
            v = st.pairs[p][1]
            if v < 0:
                re.append((f"pd[{2 * p} * L + l]", None))
                im.append((f"pd[{2 * p + 1} * L + l]", None))
            else:
                vr, vi = _col(st, v)
                dr, di = f"pd[{2 * p} * L + l]", f"pd[{2 * p + 1} * L + l]"
                re += [(dr, vr), (_neg(vi), di)]
                im += [(vi, dr), (di, vr)]
        fwd.append(f"{{ const double ar = {_chain(re)}, ai = {_chain(im)};")
        s_re: _Terms = []
        s_im: _Terms = []
        for f in factors_of.get(j, []):
            x, real = st.factors[f][0], st.factors[f][3]
            fwd.append(_factor(st, f))
            if real:
                fwd.append(f"x{x}r = fma(g{f}r, ar, x{x}r); x{x}i = fma(g{f}r, ai, x{x}i);")
                s_re.append((f"g{f}r", f"x{x}r"))
                s_im.append((f"g{f}r", f"x{x}i"))
            else:
                fwd.append(
                    f"x{x}r = fma(-g{f}i, ai, fma(g{f}r, ar, x{x}r));"
                    f" x{x}i = fma(g{f}i, ar, fma(g{f}r, ai, x{x}i));"
                )
                s_re += [(f"g{f}r", f"x{x}r"), (f"g{f}i", f"x{x}i")]
                s_im += [(f"g{f}r", f"x{x}i"), (f"-g{f}i", f"x{x}r")]
        fwd.append("}")
        if not s_re:
            continue
        bwd.append("{")
        bwd += [_factor(st, f) for f in factors_of[j]]
        bwd.append(f"const double sr = {_chain(s_re)}, si = {_chain(s_im)};")
        for p in pairs_of[j]:
            v = st.pairs[p][1]
            t_re, t_im = f"acc[{2 * p} * L + l]", f"acc[{2 * p + 1} * L + l]"
            if v < 0:
                bwd.append(f"{t_re} += sr; {t_im} += si;")
            else:
                vr, vi = _col(st, v)
                bwd.append(
                    f"{t_re} = {_chain([(t_re, None), (vr, 'sr'), (vi, 'si')])};"
                    f" {t_im} = {_chain([(t_im, None), (vr, 'si'), (_neg(vi), 'sr')])};"
                )
        bwd.append("}")
    for x in helicities:
        fwd.append(f"xs[{2 * x}][l] = x{x}r; xs[{2 * x + 1}][l] = x{x}i;")
    squares = [t for x in helicities for t in ((f"x{x}r", f"x{x}r"), (f"x{x}i", f"x{x}i"))]
    fwd.append(f"inten[l] = {_chain(squares)};")
    nl = "\n        "
    return f"""{{
    double xs[{max(2 * st.n_helicities, 1)}][L], inten[L], scale[L];
#pragma omp simd
    for (int l = 0; l < L; ++l) {{
        {nl.join(fwd)}
    }}
    double lg[L];
#pragma omp simd
    for (int l = 0; l < L; ++l) {{
        lg[l] = mc_log(inten[l]);
        scale[l] = wb[l] / inten[l];
    }}
    for (int l = 0; l < L; ++l) {{
        if (!(inten[l] >= DBL_MIN && inten[l] <= DBL_MAX)) lg[l] = log(inten[l]);
        nll[l] += wb[l] * lg[l];
        if (iout) iout[l] = inten[l];
    }}
    if (!grad) return;
#pragma omp simd
    for (int l = 0; l < L; ++l) {{
        {nl.join(bwd)}
    }}
}}"""


_DRIVER = """
enum { n_s = N_S, n_p = N_P };
#ifndef MC_AHEAD
#define MC_AHEAD 2
#endif
int mc_lanes(void) { return L; }

static int mc_isa_limit = 2;  /* 2: AVX-512 where the CPU has it, 1: AVX2 at most, 0: portable */

/* Caps the instruction set used from now on (the tests compare the bits of every level);
   returns the level the next call uses. */
static int mc_isa(void);
int mc_limit_isa(int level)
{
    mc_isa_limit = level < 0 ? 0 : level;
    return mc_isa();
}

static int mc_isa(void)
{
    int level = 0;
#ifdef MC_X86_DISPATCH
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("fma")) return 0;
    if (__builtin_cpu_supports("avx2")) level = 1;
    if (__builtin_cpu_supports("avx512f")) level = 2;
#endif
    return level < mc_isa_limit ? level : mc_isa_limit;
}

double mc_nll(size_t n_blocks, const double *vals, const double *w, const double *pd,
              double *t_out, double *i_out, int grad, int n_threads)
{
    const int isa = mc_isa();
    if (n_threads < 1) n_threads = 1;
    if ((size_t)n_threads > n_blocks) n_threads = n_blocks > 0 ? (int)n_blocks : 1;
    /* one thread's sums (T, then the log sum), each on its own cache lines: threads writing
       one line (calloc aligns to 16 bytes) took turns for it on every block */
    const size_t per = ((size_t)n_p * 2 * L + L + 7) / 8 * 8 + 8;
    double *raw = calloc((size_t)n_threads * per + 8, sizeof(double));
    if (!raw) return NAN;
    double *part = (double *)(((uintptr_t)raw + 63) & ~(uintptr_t)63);
#pragma omp parallel num_threads(n_threads)
    {
        int t = 0;
#ifdef _OPENMP
        t = omp_get_thread_num();
#endif
        double *acc = part + (size_t)t * per, *nll = acc + (size_t)n_p * 2 * L;
#pragma omp for schedule(static)
        for (size_t b = 0; b < n_blocks; ++b) {
            const double *blk = vals + b * (size_t)n_s * L;
            const double *wb = w + b * L;
            if (b + MC_AHEAD < n_blocks) {  /* the block MC_AHEAD on, while this one computes */
                const char *next = (const char *)(blk + MC_AHEAD * (size_t)n_s * L);
                for (size_t o = 0; o < (size_t)n_s * L * sizeof(double); o += 64)
                    __builtin_prefetch(next + o, 0, 0);
            }
            double *iout = i_out ? i_out + b * L : 0;
#ifdef MC_X86_DISPATCH
            if (isa == 2) {
                mc_block_avx512(blk, wb, pd, acc, nll, iout, grad);
                continue;
            }
            if (isa == 1) {
                mc_block_avx2(blk, wb, pd, acc, nll, iout, grad);
                continue;
            }
#endif
            mc_block(blk, wb, pd, acc, nll, iout, grad);
        }
    }
    double total = 0.0;
    for (int p = 0; p < 2 * n_p; ++p) t_out[p] = 0.0;
    for (int t = 0; t < n_threads; ++t) {
        const double *acc = part + (size_t)t * per, *nll = acc + (size_t)n_p * 2 * L;
        for (int p = 0; p < n_p; ++p)
            for (int l = 0; l < L; ++l) {
                t_out[2 * p] += acc[(size_t)p * 2 * L + l];
                t_out[2 * p + 1] += acc[(size_t)p * 2 * L + L + l];
            }
        for (int l = 0; l < L; ++l) total += nll[l];
    }
    free(raw);
    return total;
}
"""


def kernel_source(structure: KernelStructure) -> str:
    """The kernel's C source for ``structure`` (its digest keys the build cache).

    Never raises.
    """
    body = _body(structure)
    head = f"""\
/* modelstore coupling-fit kernel, generated for one structure; do not edit. */
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <float.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#define L {LANES}
{_LOG}#define N_S {structure.n_slots}
#define N_P {len(structure.pairs)}
#if defined(__GNUC__) && defined(__x86_64__)
#define MC_X86_DISPATCH 1
__attribute__((target("avx512f,fma")))
static void mc_block_avx512{_SIGNATURE}
{body}

__attribute__((target("avx2,fma")))
static void mc_block_avx2{_SIGNATURE}
{body}
#endif

static void mc_block{_SIGNATURE}
{body}
"""
    return head + _DRIVER


def kernel_library(structure: KernelStructure) -> Any:
    """The built (or cached) kernel for ``structure``: the cffi module (``ffi``, ``lib``).

    Raises:
        BackendUnavailableError: no working C compiler, or the build failed.
        IntegrityError: a cached library fails verification.
    """
    from modelstore._native.build import load_or_build
    from modelstore.store.hashing import bytes_digest

    source = kernel_source(structure)
    digest = bytes_digest((CDEF + source).encode("utf-8"))
    module = load_or_build(digest, lambda: source, label="coupling cache", cdef=CDEF).module
    if module.lib.mc_lanes() != LANES:
        msg = "the coupling-fit kernel was built for another block size"
        raise BackendUnavailableError(msg)
    return module
