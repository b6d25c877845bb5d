"""Small hand-written models (sympy only) in the seed's dict of forms, for publishing tests."""

from __future__ import annotations

import sympy as sp

# masses of a D⁰ → K⁻ π⁺ π⁰-like decay (GeV); the toy needs no ampform
MASSES = (1.86484, 0.493677, 0.13957, 0.134977)


def kallen(x, y, z):
    return x**2 + y**2 + z**2 - 2 * x * y - 2 * y * z - 2 * z * x


def toy_forms(*, sigma_assumptions=None, threshold=None):
    """A two-resonance model with a helicity angle, a complex coupling and a sqrt that is
    negative in part of the Dalitz region (σ1 < ``threshold``): NaN there, as numpy gives.

    ``sigma_assumptions`` (e.g. ``{}``) makes σ1..σ3 symbols with other assumptions than the
    canonical ``nonnegative=True``, which publishing replaces by name.
    """
    threshold = sp.Rational(3, 10) if threshold is None else threshold
    assumptions = {"nonnegative": True} if sigma_assumptions is None else sigma_assumptions
    s1, s2, s3 = (sp.Symbol(f"sigma{k}", **assumptions) for k in (1, 2, 3))
    m0, m1, m2, m3 = sp.symbols("m0:4", nonnegative=True)
    m_rho, g_rho, m_k, g_k = sp.symbols("m_rho Gamma_rho m_K Gamma_K", positive=True)
    c_rho = sp.Symbol("c_rho")
    c_k = sp.IndexedBase("c")[1]
    theta = sp.Symbol("theta_23", real=True)
    z = (2 * s1 * (s3 - m1**2 - m2**2) - (m0**2 - m1**2 - s1) * (m2**2 - m3**2 + s1)) / (
        sp.sqrt(kallen(m0**2, m1**2, s1)) * sp.sqrt(kallen(s1, m2**2, m3**2))
    )
    q_k = sp.sqrt(kallen(s2, m1**2, m3**2)) / (2 * sp.sqrt(s2))
    width_k = g_k * q_k / sp.sqrt(kallen(m_k**2, m1**2, m3**2)) * 2 * m_k
    rho = c_rho * sp.cos(theta) / (m_rho**2 - s1 - sp.I * m_rho * g_rho)
    kstar = c_k * sp.sqrt(s1 - threshold) / (m_k**2 - s2 - sp.I * sp.sqrt(s2) * width_k)
    half = sp.cos(theta / 2) ** 2 * sp.Rational(1, 4)
    intensity = sp.Abs(rho + kstar) ** 2 + half
    defaults = {
        m0: MASSES[0], m1: MASSES[1], m2: MASSES[2], m3: MASSES[3],
        m_rho: 0.77526, g_rho: 0.1491, m_k: 0.89555, g_k: 0.0473,
        c_rho: complex(1.0, 0.0), c_k: complex(0.3, -1.2),
    }  # fmt: skip
    return {
        "intensity_expr": intensity,
        "variables": {theta: sp.acos(z)},
        "parameter_defaults": defaults,
        "sigma3": {s3: m0**2 + m1**2 + m2**2 + m3**2 - s1 - s2},
    }
