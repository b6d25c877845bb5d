"""The C kernel of a coupling-only fit: Σ w log I and its gradient from cached basis values.

One fixed C source (no model's code in it), built through :mod:`modelstore._native.build`
into the native build cache like a model's evaluator, and called through cffi. Events come in
blocks of :data:`LANES`; a block holds, for each stored column ``v``, ``LANES`` real then
``LANES`` imaginary parts. Per event it forms

* the amplitudes ``A_j = Σ_p D_p V_{v(p)}`` over the pairs ``p = (j, v)`` (``v < 0``: 1),
* the aligned amplitudes ``X_λ = Σ_f (c_f V_{v(f)}) A_{j(f)}`` and ``I = Σ_λ |X_λ|²`` (with
  half the work where ``fr[f]`` says the factor is real),
* ``r_λ = (w / I) X_λ``, ``s_j = Σ_f conj(c_f V_{v(f)}) r_{λ(f)}``,

and sums ``Σ w log I`` and ``T_p = Σ conj(V_{v(p)}) s_{j(p)}``, from which the caller gets the
gradient. Vectorised across the events of a block (AVX-512, AVX2 or portable code, chosen at
run time, bit-identical: no FMA, no reassociation), OpenMP over blocks; each thread's partial
sums are added in thread order, so a result does not depend on scheduling.
"""

from __future__ import annotations

import functools
from typing import Any

from modelstore.errors import BackendUnavailableError

__all__ = ["CDEF", "LANES", "kernel_library", "kernel_source"]

LANES = 8
MAX_SIZE = 4096  # amplitudes, helicities: the stack arrays of one block

CDEF = """
int mc_lanes(void);
double mc_nll(size_t n_blocks, int n_v, const double *vals, const double *w,
              int n_a, int n_x, int n_p, const int *pj, const int *pv, const double *pd,
              int n_f, const int *fx, const int *fj, const int *fv, const int *fr,
              const double *fc, double *t_out, double *i_out, int n_threads);
"""

_BODY = """
    double a_re[n_a][L], a_im[n_a][L], x_re[n_x][L], x_im[n_x][L];
    double s_re[n_a][L], s_im[n_a][L], g_re[L], g_im[L], scale[L], inten[L];
    for (int j = 0; j < n_a; ++j)
        for (int l = 0; l < L; ++l) { a_re[j][l] = 0.0; a_im[j][l] = 0.0; s_re[j][l] = 0.0; s_im[j][l] = 0.0; }
    for (int x = 0; x < n_x; ++x)
        for (int l = 0; l < L; ++l) { x_re[x][l] = 0.0; x_im[x][l] = 0.0; }
    for (int p = 0; p < n_p; ++p) {
        const int j = pj[p], v = pv[p];
        const double dr = pd[2 * p], di = pd[2 * p + 1];
        if (v < 0) {
            for (int l = 0; l < L; ++l) { a_re[j][l] += dr; a_im[j][l] += di; }
        } else {
            const double *vr = blk + (size_t)v * 2 * L, *vi = vr + L;
            for (int l = 0; l < L; ++l) {
                a_re[j][l] += dr * vr[l] - di * vi[l];
                a_im[j][l] += dr * vi[l] + di * vr[l];
            }
        }
    }
    for (int f = 0; f < n_f; ++f) {
        const int x = fx[f], j = fj[f], v = fv[f];
        const double cr = fc[2 * f], ci = fc[2 * f + 1];
        if (fr[f]) {  /* a real factor: c and V real */
            if (v < 0) for (int l = 0; l < L; ++l) g_re[l] = cr;
            else for (int l = 0; l < L; ++l) g_re[l] = cr * blk[(size_t)v * 2 * L + l];
            for (int l = 0; l < L; ++l) {
                x_re[x][l] += g_re[l] * a_re[j][l];
                x_im[x][l] += g_re[l] * a_im[j][l];
            }
            continue;
        }
        if (v < 0) {
            for (int l = 0; l < L; ++l) { g_re[l] = cr; g_im[l] = ci; }
        } else {
            const double *vr = blk + (size_t)v * 2 * L, *vi = vr + L;
            for (int l = 0; l < L; ++l) { g_re[l] = cr * vr[l] - ci * vi[l]; g_im[l] = cr * vi[l] + ci * vr[l]; }
        }
        for (int l = 0; l < L; ++l) {
            x_re[x][l] += g_re[l] * a_re[j][l] - g_im[l] * a_im[j][l];
            x_im[x][l] += g_re[l] * a_im[j][l] + g_im[l] * a_re[j][l];
        }
    }
    for (int l = 0; l < L; ++l) inten[l] = x_re[0][l] * x_re[0][l] + x_im[0][l] * x_im[0][l];
    for (int x = 1; x < n_x; ++x)
        for (int l = 0; l < L; ++l) inten[l] += x_re[x][l] * x_re[x][l] + x_im[x][l] * x_im[x][l];
    for (int l = 0; l < L; ++l) {
        nll[l] += wb[l] * log(inten[l]);
        scale[l] = wb[l] / inten[l];
    }
    if (iout) for (int l = 0; l < L; ++l) iout[l] = inten[l];
    for (int x = 0; x < n_x; ++x)
        for (int l = 0; l < L; ++l) { x_re[x][l] *= scale[l]; x_im[x][l] *= scale[l]; }
    for (int f = 0; f < n_f; ++f) {
        const int x = fx[f], j = fj[f], v = fv[f];
        const double cr = fc[2 * f], ci = fc[2 * f + 1];
        if (fr[f]) {
            if (v < 0) for (int l = 0; l < L; ++l) g_re[l] = cr;
            else for (int l = 0; l < L; ++l) g_re[l] = cr * blk[(size_t)v * 2 * L + l];
            for (int l = 0; l < L; ++l) {
                s_re[j][l] += g_re[l] * x_re[x][l];
                s_im[j][l] += g_re[l] * x_im[x][l];
            }
            continue;
        }
        if (v < 0) {
            for (int l = 0; l < L; ++l) { g_re[l] = cr; g_im[l] = ci; }
        } else {
            const double *vr = blk + (size_t)v * 2 * L, *vi = vr + L;
            for (int l = 0; l < L; ++l) { g_re[l] = cr * vr[l] - ci * vi[l]; g_im[l] = cr * vi[l] + ci * vr[l]; }
        }
        for (int l = 0; l < L; ++l) {  /* s_j += conj(g) r_x */
            s_re[j][l] += g_re[l] * x_re[x][l] + g_im[l] * x_im[x][l];
            s_im[j][l] += g_re[l] * x_im[x][l] - g_im[l] * x_re[x][l];
        }
    }
    for (int p = 0; p < n_p; ++p) {
        const int j = pj[p], v = pv[p];
        double *tr = acc + (size_t)p * 2 * L, *ti = tr + L;
        if (v < 0) {
            for (int l = 0; l < L; ++l) { tr[l] += s_re[j][l]; ti[l] += s_im[j][l]; }
        } else {
            const double *vr = blk + (size_t)v * 2 * L, *vi = vr + L;
            for (int l = 0; l < L; ++l) {  /* T_p += conj(V) s_j */
                tr[l] += vr[l] * s_re[j][l] + vi[l] * s_im[j][l];
                ti[l] += vr[l] * s_im[j][l] - vi[l] * s_re[j][l];
            }
        }
    }
"""

_SIGNATURE = """(const double *restrict blk, const double *restrict wb, int n_a, int n_x,
    int n_p, const int *restrict pj, const int *restrict pv, const double *restrict pd,
    int n_f, const int *restrict fx, const int *restrict fj, const int *restrict fv,
    const int *restrict fr, const double *restrict fc, double *restrict acc, double *restrict nll, double *restrict iout)"""

_DRIVER = """
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

double mc_nll(size_t n_blocks, int n_v, const double *vals, const double *w,
              int n_a, int n_x, int n_p, const int *pj, const int *pv, const double *pd,
              int n_f, const int *fx, const int *fj, const int *fv, const int *fr,
              const double *fc, double *t_out, double *i_out, int n_threads)
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
                mc_block_avx512(blk, wb, n_a, n_x, n_p, pj, pv, pd, n_f, fx, fj, fv, fr, fc, acc, nll, iout);
                continue;
            }
            if (isa == 1) {
                mc_block_avx2(blk, wb, n_a, n_x, n_p, pj, pv, pd, n_f, fx, fj, fv, fr, fc, acc, nll, iout);
                continue;
            }
#endif
            mc_block(blk, wb, n_a, n_x, n_p, pj, pv, pd, n_f, fx, fj, fv, fr, fc, acc, nll, iout);
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


@functools.cache
def kernel_source() -> str:
    """The kernel's C source (fixed; its digest keys the build cache).

    Never raises.
    """
    body = _BODY.strip("\n")
    head = f"""\
/* modelstore coupling-fit kernel; do not edit. Blocks of {LANES} events. */
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#define L {LANES}
#if defined(__GNUC__) && defined(__x86_64__)
#define MC_X86_DISPATCH 1
__attribute__((target("avx512f")))
static void mc_block_avx512{_SIGNATURE}
{{
{body}
}}

__attribute__((target("avx2")))
static void mc_block_avx2{_SIGNATURE}
{{
{body}
}}
#endif

static void mc_block{_SIGNATURE}
{{
{body}
}}
"""
    return head + _DRIVER


@functools.cache
def kernel_library() -> Any:
    """The built (or cached) kernel: the cffi module with ``ffi`` and ``lib``.

    Raises:
        BackendUnavailableError: no working C compiler, or the build failed.
        IntegrityError: a cached library fails verification.
    """
    from modelstore._native.build import load_or_build
    from modelstore.store.hashing import bytes_digest

    source = kernel_source()
    digest = bytes_digest((CDEF + source).encode("utf-8"))
    module = load_or_build(digest, lambda: source, cdef=CDEF).module
    if module.lib.mc_lanes() != LANES:
        msg = "the coupling-fit kernel was built for another block size"
        raise BackendUnavailableError(msg)
    return module
