"""Threat 3: symbol names that look like code never become code, in C or in Python."""

from __future__ import annotations

import numpy as np
import sympy as sp

from modelstore.backends._tensorwaves import TensorwavesEvaluator


def test_hostile_symbol_names_in_generated_python(tmp_path):
    canary = tmp_path / "canary"
    evil = f"__import__('os').system('touch {canary}')"
    s1, s2, s3 = sp.symbols("sigma1:4", nonnegative=True)
    m0, m1, m2, m3 = sp.symbols("m:4", nonnegative=True)
    theta = sp.Symbol("theta_23; import os", real=True)
    coupling = sp.Symbol(evil)
    width = sp.Symbol("x)\n__import__('os').system('touch " + str(canary) + "')#", positive=True)
    forms = {
        "intensity_expr": sp.Abs(coupling / (s1 - 1 - sp.I * width)) ** 2 * sp.cos(theta) ** 2,
        "variables": {theta: sp.acos((s2 - s3) / (s2 + s3))},
        "parameter_defaults": {
            coupling: 1.5 + 0.5j,
            width: 0.1,
            m0: 2.28646,
            m1: 0.938272046,
            m2: 0.13957018,
            m3: 0.493677,
        },
        "sigma3": {s3: m0**2 + m1**2 + m2**2 + m3**2 - s1 - s2},
    }
    evaluator = TensorwavesEvaluator(forms, "numpy")
    parameters = {str(k): v for k, v in forms["parameter_defaults"].items()}
    values = evaluator(np.array([1.2]), np.array([3.0]), parameters)
    assert not canary.exists()
    s3_value = sum(v**2 for v in (2.28646, 0.938272046, 0.13957018, 0.493677)) - 1.2 - 3.0
    cos = (3.0 - s3_value) / (3.0 + s3_value)
    expected = abs((1.5 + 0.5j) / (1.2 - 1 - 0.1j)) ** 2 * cos**2
    np.testing.assert_allclose(values, [expected], rtol=1e-12)
