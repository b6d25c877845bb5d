"""The C kernel of a coupling-only fit: Σ w log I and its gradient from cached basis values.

The C source is generated for one cache's structure (its terms and alignment factors, below),
built through :mod:`modelstore._native.build` into the native build cache like a model's
evaluator (keyed by the source's digest, so a structure is compiled once), and called through
cffi. Events come in blocks of :data:`LANES`; a block holds, for each stored column ``v``,
``LANES`` real then ``LANES`` imaginary parts, only the real parts of a real column, and one
real factor of a column that is another times a real number (``KernelStructure.layout``: the
kernel reads memory as fast as it computes, so every byte left out counts). Per event the
kernel forms

* the terms ``P_g = D_g V_{u(g)}`` (``u < 0``: 1), with the coefficients ``D`` passed per
  call (they hold the couplings; each repeated over the ``LANES`` events of a block, so that the
  code reads them as vectors, not broadcasts), and the amplitudes ``A_j = Σ μ r P_g`` over the
  members ``(j, r, μ)`` of the terms (``r`` a stored real factor or 1, ``μ`` a constant: the
  pairs of amplitude and column that share a coupling, ``columns.group_pairs``),
* the aligned amplitudes ``X_λ = Σ_f (c_f V_{v(f)}) A_{j(f)}`` (constants ``c_f`` compiled
  in; half the work where the factor is real) and ``I = Σ_λ |X_λ|²``,
* ``r_λ = (w / I) X_λ``, ``s_j = Σ_f conj(c_f V_{v(f)}) r_{λ(f)}``,

and sums ``Σ w log I`` and (unless ``grad`` is 0) ``T_g = Σ conj(V_{u(g)}) Σ μ r s_j``, from
which the caller gets the gradient. Straight-line code vectorised across the events of a block
(``omp simd``), a few amplitudes at a time (those that share terms) so that few values are
live at once; every multiply-add is an explicit ``fma`` (rounded once wherever it runs), so
the AVX-512 + FMA, AVX2 + FMA and portable code chosen at run time give identical bits (the
portable code on an x86 CPU without FMA calls libm's ``fma``: right, but slow). Each thread
prefetches the block after next while it computes one (without it the kernel waited on memory:
2.2× slower over 10⁵ events); OpenMP over blocks; each thread's partial sums, on cache lines of
their own, are added in thread order, so a result does not depend on scheduling. The
generated text holds only numbers and fixed identifiers, never a model's names.
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

    ``terms``: ``(u, ((j, r slot, μ), ...))``: ``D_g V_u`` goes into amplitude ``j`` times
    ``μ`` and the real factor in slot ``r`` (``-1``: none); ``factors``:
    ``(λ, j, v, real, c_re, c_im)``; ``u, v < 0`` mean 1.
    ``layout``: per column ``v``, where a block holds it: ``(COMPLEX, re slot, im slot)``,
    ``(REAL, slot, -1)`` (its imaginary part is 0), or ``(SCALED, slot, u)``: a real factor
    times complex column ``u`` (``V_v = r V_u``; columns that differ by a real factor, such as
    one lineshape times two Wigner d's, cost one real number per event). A slot is ``LANES``
    doubles; a block is ``n_slots`` slots.
    """

    n_columns: int
    n_amplitudes: int
    n_helicities: int
    terms: tuple[tuple[int, tuple[tuple[int, int, float], ...]], ...]
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


def _coefficient(slot: int, mu: float) -> str | None:
    """The operand ``μ r`` (``r`` the real factor in ``slot``, none for -1); None for 1."""
    factor = None if slot < 0 else f"blk[{slot} * L + l]"
    if mu == 1.0:
        return factor
    if mu == -1.0:
        return f"(-{factor})" if factor else "-1.0"
    return f"({_num(mu)} * {factor})" if factor else _num(mu)


def _add(target: str, started: set[str], coefficient: str | None, value: str) -> str:
    """``target += coefficient · value`` (``fma``; ``coefficient`` None: 1), the first time
    ``target = coefficient · value``."""
    if coefficient is None:
        term = value
    elif coefficient == "-1.0":
        term = f"(-{value})"
    else:
        term = f"{coefficient} * {value}"
    if target not in started:
        started.add(target)
        return f"{target} = {term};"
    if coefficient is None or coefficient == "-1.0":
        return f"{target} = {target} + {term};"
    return f"{target} = fma({coefficient}, {value}, {target});"


def _clusters(st: KernelStructure) -> list[tuple[list[int], list[int]]]:
    """Amplitudes joined by shared terms (union-find), in order of their first amplitude:
    ``(amplitudes, terms)``."""
    parent: dict[int, int] = {}

    def root(j: int) -> int:
        while parent.setdefault(j, j) != j:
            j = parent[j]
        return j

    for _, members in st.terms:
        first, *others = (root(j) for j, _, _ in members)
        for other in others:
            parent[other] = first
    terms_of: dict[int, list[int]] = {}
    for g, (_, members) in enumerate(st.terms):
        terms_of.setdefault(root(members[0][0]), []).append(g)
    clusters = [
        (sorted({j for g in gs for j, _, _ in st.terms[g][1]}), gs) for gs in terms_of.values()
    ]
    return sorted(clusters, key=lambda cluster: cluster[0][0])


def _body(st: KernelStructure) -> str:
    """One block's code, a cluster of amplitudes at a time (few values live: no spills).

    Forward: each term ``P_g`` into its amplitudes, then at once their terms of the ``X_λ``;
    backward: the cluster's ``s_j`` from the ``X_λ``, then each term's sum ``T_g``.
    """
    factors_of: dict[int, list[int]] = {}
    for f, (_, j, _, _, _, _) in enumerate(st.factors):
        factors_of.setdefault(j, []).append(f)
    clusters = _clusters(st)
    amplitudes = {j for js, _ in clusters for j in js}
    helicities = sorted({st.factors[f][0] for j in amplitudes for f in factors_of.get(j, [])})
    fwd = [f"double x{x}r = 0.0, x{x}i = 0.0;" for x in helicities]
    bwd = [
        f"const double x{x}r = xs[{2 * x}][l] * scale[l], x{x}i = xs[{2 * x + 1}][l] * scale[l];"
        for x in helicities
    ]
    for js, gs in clusters:
        started: set[str] = set()
        fwd.append("{ double " + ", ".join(f"a{j}r, a{j}i" for j in js) + ";")
        for g in gs:
            u, members = st.terms[g]
            dr, di = f"pd[{2 * g} * L + l]", f"pd[{2 * g + 1} * L + l]"
            if u < 0:
                fwd.append(f"{{ const double pr = {dr}, pi = {di};")
            else:
                vr, vi = _col(st, u)
                re: _Terms = [(dr, vr), (_neg(vi), di)]
                im: _Terms = [(vi, dr), (di, vr)]
                fwd.append(f"{{ const double pr = {_chain(re)}, pi = {_chain(im)};")
            for j, slot, mu in members:
                coefficient = _coefficient(slot, mu)
                fwd.append(_add(f"a{j}r", started, coefficient, "pr"))
                fwd.append(_add(f"a{j}i", started, coefficient, "pi"))
            fwd.append("}")
        for j in js:
            for f in factors_of.get(j, []):
                x, real = st.factors[f][0], st.factors[f][3]
                fwd.append(_factor(st, f))
                if real:
                    fwd.append(
                        f"x{x}r = fma(g{f}r, a{j}r, x{x}r); x{x}i = fma(g{f}r, a{j}i, x{x}i);"
                    )
                else:
                    fwd.append(
                        f"x{x}r = fma(-g{f}i, a{j}i, fma(g{f}r, a{j}r, x{x}r));"
                        f" x{x}i = fma(g{f}i, a{j}r, fma(g{f}r, a{j}i, x{x}i));"
                    )
        fwd.append("}")
        with_s = [j for j in js if factors_of.get(j)]
        if not with_s:
            continue
        bwd.append("{ double " + ", ".join(f"s{j}r, s{j}i" for j in with_s) + ";")
        for j in with_s:
            s_re: _Terms = []
            s_im: _Terms = []
            for f in factors_of[j]:
                x, real = st.factors[f][0], st.factors[f][3]
                bwd.append(_factor(st, f))
                if real:
                    s_re.append((f"g{f}r", f"x{x}r"))
                    s_im.append((f"g{f}r", f"x{x}i"))
                else:
                    s_re += [(f"g{f}r", f"x{x}r"), (f"g{f}i", f"x{x}i")]
                    s_im += [(f"g{f}r", f"x{x}i"), (f"-g{f}i", f"x{x}r")]
            bwd.append(f"s{j}r = {_chain(s_re)}; s{j}i = {_chain(s_im)};")
        for g in gs:
            u, members = st.terms[g]
            used = [(j, slot, mu) for j, slot, mu in members if j in with_s]
            if not used:
                continue
            started = set()
            bwd.append("{ double qr, qi;")
            for j, slot, mu in used:
                coefficient = _coefficient(slot, mu)
                bwd.append(_add("qr", started, coefficient, f"s{j}r"))
                bwd.append(_add("qi", started, coefficient, f"s{j}i"))
            t_re, t_im = f"acc[{2 * g} * L + l]", f"acc[{2 * g + 1} * L + l]"
            if u < 0:
                bwd.append(f"{t_re} += qr; {t_im} += qi; }}")
            else:
                vr, vi = _col(st, u)
                bwd.append(
                    f"{t_re} = {_chain([(t_re, None), (vr, 'qr'), (vi, 'qi')])};"
                    f" {t_im} = {_chain([(t_im, None), (vr, 'qi'), (_neg(vi), 'qr')])}; }}"
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
#define N_P {len(structure.terms)}
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
