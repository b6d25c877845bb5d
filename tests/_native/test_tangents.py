"""Forward-mode tangents of lowered code: every derivative rule against central differences."""

from __future__ import annotations

import re

import numpy as np
import pytest

from modelstore._native.emitter import _Emitter
from modelstore._native.gradient_array import compile_gradient_program, gradient_array_source
from modelstore._native.lowering import LoweredModel
from modelstore._native.tangents import code_of, differentiate, parse_c
from modelstore.errors import ModelstoreError

# (name, body): body is C in x (a real parameter), c_re/c_im (a complex one) and the event's
# sigma1 (kept in (0.2, 0.8) by the test), as the emitter writes it.
RULES = [
    ("product", "x * sigma1 * c_re"),
    ("quotient", "(c_im / (x + sigma1))"),
    ("difference", "(x - -(c_re * sigma1)) - 0.5"),
    ("sqrt", "sqrt(x * sigma1 + c_re * c_re)"),
    ("fabs", "fabs(x - 2.0 * sigma1)"),
    ("ternary", "((x >= sigma1) ? x * x : c_im * sigma1)"),
    ("copysign", "copysign(x * sigma1, c_re - 0.1)"),
    ("exp", "exp(x * sigma1)"),
    ("log", "log(x + c_re * sigma1)"),
    ("sin", "sin(x * sigma1)"),
    ("cos", "cos(c_im * sigma1)"),
    ("tan", "tan(x * sigma1)"),
    ("asin", "asin(x * sigma1)"),
    ("acos", "acos(c_re * sigma1)"),
    ("atan", "atan(x * sigma1)"),
    ("sinh", "sinh(x * sigma1)"),
    ("cosh", "cosh(c_im * sigma1)"),
    ("tanh", "tanh(x * sigma1)"),
    ("atan2", "atan2(c_im * sigma1, x - c_re)"),
    ("pow", "pow(x + sigma1, c_re)"),
]
CALLS = {"exp", "log", "sin", "cos", "tan", "asin", "acos", "atan", "sinh", "cosh", "tanh",
         "atan2", "pow"}  # fmt: skip


def lowered_of(body: str) -> LoweredModel:
    """A two-parameter model whose intensity is ``body`` squared plus a parameter-only term,
    built with the emitter's own temporaries (levels, libm calls in their own temporaries)."""
    e = _Emitter()
    x = e.temp("p0_x + 0.0").code
    c_re, c_im = e.temp("p1_c_re + 0.0").code, e.temp("p1_c_im + 0.0").code
    code = re.sub(r"\bx\b", x, body.replace("c_re", c_re).replace("c_im", c_im))
    function = code.split("(")[0].strip()
    value = e.temp(code, call=function in CALLS)
    constant = e.temp(f"{x} * {c_re} + {c_im}")  # parameters only: computed once per call
    result = e.temp(f"{value.code} * {value.code} + {constant.code}").code
    return LoweredModel(["x", "c"], [("p0_x", 0, False), ("p1_c", 1, True)], 3, e.temps, result, e)


@pytest.mark.parametrize(("name", "body"), RULES, ids=[r[0] for r in RULES])
def test_every_rule_agrees_with_central_differences(name, body):
    lowered = lowered_of(body)
    columns = [(0, ""), (1, "re"), (1, "im")]
    program = compile_gradient_program(gradient_array_source(lowered, columns), name)
    s1 = np.linspace(0.2, 0.8, 7)
    s2 = np.zeros_like(s1)
    par = np.array([0.37, 0.61, -0.43])
    value, *grad = (np.broadcast_to(v, s1.shape) for v in program(s1, s2, par, np))
    assert np.all(np.isfinite(value))
    for column in range(3):
        h = 1e-6
        up, down = par.copy(), par.copy()
        up[column] += h
        down[column] -= h
        fd = (program(s1, s2, up, np)[0] - program(s1, s2, down, np)[0]) / (2 * h)
        np.testing.assert_allclose(grad[column], fd, rtol=1e-7, atol=1e-7 * np.abs(fd).max())
    # the parameter-only term reaches the gradient too: ∂(x c_re + c_im)/∂c_im = 1
    assert np.abs(grad[2]).max() > 0


def test_value_temporaries_are_kept_verbatim_and_in_order():
    lowered = lowered_of("sqrt(x * sigma1 + c_re * c_re)")
    diff = differentiate(lowered, ["p0_x", "p1_c_re", "p1_c_im"])
    kept = [t for t in diff.temps if t.name in {u.name for u in lowered.temps}]
    assert [(t.name, t.code, t.level, t.call) for t in kept] == [
        (t.name, t.code, t.level, t.call) for t in lowered.temps
    ]
    assert len(diff.temps) > len(lowered.temps)


def test_tangents_exist_only_where_a_column_reaches():
    lowered = lowered_of("exp(x * sigma1)")
    only_c_im = differentiate(lowered, ["p1_c_im"])
    # exp(x σ1) does not depend on Im c: no libm call and no tangent temporary for it
    added = only_c_im.temps[len(lowered.temps) :]
    assert not any("exp" in t.code for t in added)


def test_the_parser_round_trips_and_refuses_foreign_text():
    for _, body in RULES:
        tree = parse_c(body)
        assert parse_c(code_of(tree)) == tree
    for bad in ("x = 1", "x;", "x[0]", "(x", "x ? y"):
        with pytest.raises(ModelstoreError):
            parse_c(bad)


def test_a_function_without_a_rule_is_refused():
    e = _Emitter()
    x = e.temp("p0_x + 0.0").code
    e.temp(f"erf({x} * sigma1)", call=True)
    lowered = LoweredModel(["x"], [("p0_x", 0, False)], 1, e.temps, e.temps[-1].name, e)
    with pytest.raises(ModelstoreError, match="no derivative for the C function 'erf'"):
        differentiate(lowered, ["p0_x"])
