"""The C kernel of a coupling-only fit: Σ w log I and its gradient from cached basis values.

The C source is generated for one cache's structure (its pairs and alignment factors, below),
built through :mod:`modelstore._native.build` into the native build cache like a model's
evaluator (keyed by the source's digest, so a structure is compiled once), and called through
cffi. Events come in blocks of :data:`LANES`; a block holds, for each stored column ``v``,
``LANES`` real then ``LANES`` imaginary parts. Per event the kernel forms

* the amplitudes ``A_j = Σ_p D_p V_{v(p)}`` over the pairs ``p = (j, v)`` (``v < 0``: 1), with
  the coefficients ``D`` passed per call (they hold the couplings),
* the aligned amplitudes ``X_λ = Σ_f (c_f V_{v(f)}) A_{j(f)}`` (constants ``c_f`` compiled
  in; half the work where the factor is real) and ``I = Σ_λ |X_λ|²``,
* ``r_λ = (w / I) X_λ``, ``s_j = Σ_f conj(c_f V_{v(f)}) r_{λ(f)}``,

and sums ``Σ w log I`` and (unless ``grad`` is 0) ``T_p = Σ conj(V_{v(p)}) s_{j(p)}``, from
which the caller gets the gradient. Straight-line code vectorised across the events of a block
(``omp simd``; AVX-512, AVX2 or portable code chosen at run time, bit-identical: no FMA, no
reassociation), OpenMP over blocks; each thread's partial sums are added in thread order, so
a result does not depend on scheduling. The generated text holds only numbers and fixed
identifiers, never a model's names.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from modelstore.errors import BackendUnavailableError

__all__ = ["CDEF", "LANES", "KernelStructure", "kernel_library", "kernel_source"]

LANES = 8

CDEF = """
int mc_lanes(void);
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
    """

    n_columns: int
    n_amplitudes: int
    n_helicities: int
    pairs: tuple[tuple[int, int], ...]
    factors: tuple[tuple[int, int, int, bool, float, float], ...]


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


def _sum(terms: list[str]) -> str:
    return " + ".join(terms) if terms else "0.0"


def _loads(columns: set[int]) -> list[str]:
    return [
        f"const double v{v}r = blk[{2 * v} * L + l], v{v}i = blk[{2 * v + 1} * L + l];"
        for v in sorted(columns)
    ]


def _factor(f: int, v: int, real: bool, cr: float, ci: float) -> list[str]:
    """``g{f}`` = c_f V_v (``g{f}r`` only where real)."""
    if v < 0:
        return (
            [f"const double g{f}r = {_num(cr)}, g{f}i = {_num(ci)};"]
            if not real
            else [f"const double g{f}r = {_num(cr)};"]
        )
    if real:
        return [f"const double g{f}r = {_num(cr)} * v{v}r;"]
    return [
        f"const double g{f}r = {_num(cr)} * v{v}r - {_num(ci)} * v{v}i,"
        f" g{f}i = {_num(cr)} * v{v}i + {_num(ci)} * v{v}r;"
    ]


def _body(st: KernelStructure) -> str:
    used = {v for _, v in st.pairs if v >= 0} | {f[2] for f in st.factors if f[2] >= 0}
    fwd = _loads(used)
    a_re: dict[int, list[str]] = {}
    a_im: dict[int, list[str]] = {}
    for p, (j, v) in enumerate(st.pairs):
        if v < 0:
            a_re.setdefault(j, []).append(f"d{p}r")
            a_im.setdefault(j, []).append(f"d{p}i")
        else:
            a_re.setdefault(j, []).append(f"(d{p}r * v{v}r - d{p}i * v{v}i)")
            a_im.setdefault(j, []).append(f"(d{p}r * v{v}i + d{p}i * v{v}r)")
    for j in sorted(a_re):
        fwd.append(f"const double a{j}r = {_sum(a_re[j])}, a{j}i = {_sum(a_im[j])};")
    x_re: dict[int, list[str]] = {}
    x_im: dict[int, list[str]] = {}
    back: list[str] = []
    s_re: dict[int, list[str]] = {}
    s_im: dict[int, list[str]] = {}
    for f, (x, j, v, real, cr, ci) in enumerate(st.factors):
        if j not in a_re:
            continue
        lines = _factor(f, v, real, cr, ci)
        fwd += lines
        back += lines
        if real:
            x_re.setdefault(x, []).append(f"g{f}r * a{j}r")
            x_im.setdefault(x, []).append(f"g{f}r * a{j}i")
            s_re.setdefault(j, []).append(f"g{f}r * x{x}r")
            s_im.setdefault(j, []).append(f"g{f}r * x{x}i")
        else:
            x_re.setdefault(x, []).append(f"(g{f}r * a{j}r - g{f}i * a{j}i)")
            x_im.setdefault(x, []).append(f"(g{f}r * a{j}i + g{f}i * a{j}r)")
            s_re.setdefault(j, []).append(f"(g{f}r * x{x}r + g{f}i * x{x}i)")
            s_im.setdefault(j, []).append(f"(g{f}r * x{x}i - g{f}i * x{x}r)")
    helicities = sorted(x_re)
    for x in helicities:
        fwd.append(f"const double x{x}r = {_sum(x_re[x])}, x{x}i = {_sum(x_im[x])};")
        fwd.append(f"xs[{2 * x}][l] = x{x}r; xs[{2 * x + 1}][l] = x{x}i;")
    squares = [f"x{x}r * x{x}r + x{x}i * x{x}i" for x in helicities]
    fwd.append(f"inten[l] = {_sum(squares)};")
    bwd = _loads(used)
    for x in helicities:
        re_, im = f"xs[{2 * x}][l] * scale[l]", f"xs[{2 * x + 1}][l] * scale[l]"
        bwd.append(f"const double x{x}r = {re_}, x{x}i = {im};")
    bwd += back
    for j in sorted(s_re):
        bwd.append(f"const double s{j}r = {_sum(s_re[j])}, s{j}i = {_sum(s_im[j])};")
    for p, (j, v) in enumerate(st.pairs):
        if j not in s_re:
            continue
        if v < 0:
            bwd.append(f"acc[{2 * p} * L + l] += s{j}r; acc[{2 * p + 1} * L + l] += s{j}i;")
        else:
            bwd.append(
                f"acc[{2 * p} * L + l] += v{v}r * s{j}r + v{v}i * s{j}i;"
                f" acc[{2 * p + 1} * L + l] += v{v}r * s{j}i - v{v}i * s{j}r;"
            )
    nl = "\n        "
    coefficients = "\n    ".join(
        f"const double d{p}r = pd[{2 * p}], d{p}i = pd[{2 * p + 1}];" for p in range(len(st.pairs))
    )
    return f"""{{
    {coefficients}
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
enum { n_v = N_V, n_p = N_P };
int mc_lanes(void) { return L; }

static int mc_isa(void)
{
    int level = 0;
#ifdef MC_X86_DISPATCH
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2")) level = 1;
    if (__builtin_cpu_supports("avx512f")) level = 2;
#endif
    return level;
}

double mc_nll(size_t n_blocks, const double *vals, const double *w, const double *pd,
              double *t_out, double *i_out, int grad, int n_threads)
{
    const int isa = mc_isa();
    if (n_threads < 1) n_threads = 1;
    if ((size_t)n_threads > n_blocks) n_threads = n_blocks > 0 ? (int)n_blocks : 1;
    const size_t per = (size_t)n_p * 2 * L + L;  /* one thread's sums: T, then the log sum */
    double *part = calloc((size_t)n_threads * per, sizeof(double));
    if (!part) return NAN;
#pragma omp parallel num_threads(n_threads)
    {
        int t = 0;
#ifdef _OPENMP
        t = omp_get_thread_num();
#endif
        double *acc = part + (size_t)t * per, *nll = acc + (size_t)n_p * 2 * L;
#pragma omp for schedule(static)
        for (size_t b = 0; b < n_blocks; ++b) {
            const double *blk = vals + b * (size_t)n_v * 2 * L;
            const double *wb = w + b * L;
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
    free(part);
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
{_LOG}#define N_V {structure.n_columns}
#define N_P {len(structure.pairs)}
#if defined(__GNUC__) && defined(__x86_64__)
#define MC_X86_DISPATCH 1
__attribute__((target("avx512f")))
static void mc_block_avx512{_SIGNATURE}
{body}

__attribute__((target("avx2")))
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
