from __future__ import annotations

import contextlib
import pickle
import signal
import time

import pytest
import sympy as sp

from modelstore import published_model
from modelstore.errors import SreprParseError
from modelstore.format.srepr import MAX_DEPTH, parse_srepr


def distinct_srepr_versions(registry):
    """One ref per distinct srepr blob (models that differ only in parameters share one)."""
    seen = {}
    for model_id, entry in registry.index().models.items():
        manifest = registry.manifest(f"{model_id}@{entry.latest}")
        seen.setdefault(manifest.file("intensity-srepr").digest, f"{model_id}@{entry.latest}")
    return sorted(seen.values())


def test_two_published_sreprs_parse_to_the_pickled_expression(embedded):
    """A Breit-Wigner/exponential model and the LS-couplings one (every distinct one: slow)."""
    refs = distinct_srepr_versions(embedded)
    chosen = [ref for ref in refs if ref.split("@")[0] in ("bugg-exp-ff", "ls-couplings")]
    assert len(chosen) == 2
    check_parses_to_the_pickled_expression(embedded, chosen)


@pytest.mark.slow
def test_every_published_srepr_parses_to_the_pickled_expression(embedded):
    refs = distinct_srepr_versions(embedded)
    assert 5 <= len(refs) < 18
    check_parses_to_the_pickled_expression(embedded, refs)


def check_parses_to_the_pickled_expression(embedded, refs):
    for ref in refs:
        model = published_model(ref, registry=embedded)
        parsed = model.expression
        pickled = model.load_forms()["intensity_expr"]
        assert parsed == pickled, ref
        assert hash(parsed) == hash(pickled), ref
        assert {
            (s.name, tuple(sorted(s.assumptions0.items())))
            for s in parsed.free_symbols
            if isinstance(s, sp.Symbol)
        } == {
            (s.name, tuple(sorted(s.assumptions0.items())))
            for s in pickled.free_symbols
            if isinstance(s, sp.Symbol)
        }


def test_round_trip_of_assorted_expressions():
    x = sp.Symbol("x", positive=True)
    y = sp.Symbol(r"\Gamma_{K(892)}", real=True)
    h = sp.IndexedBase(r"\mathcal{H}")[sp.core.symbol.Str("K(892)"), -1, sp.Rational(-1, 2)]
    exprs = [
        sp.sqrt(x) * sp.exp(-sp.I * y) + sp.Float("1.25", 30) * h,
        sp.Abs(h) ** 2 + sp.cos(x / 2) * sp.sin(3 * x / 2),
        sp.Piecewise((x, x < 1), (y, True)),
        sp.acos(x - 1) + sp.pi + sp.conjugate(h),
    ]
    for expr in exprs:
        assert parse_srepr(sp.srepr(expr)) == expr


@pytest.mark.parametrize(
    ("payload", "match"),
    [
        ("__import__('os').system('touch /tmp/pwned')", "not an allowed sympy class"),
        ("Symbol('x').__class__", "unexpected character"),
        ("Add(Symbol('x'), (lambda: 1)())", "without a class name"),
        ("Add(*[Integer(1) for i in range(3)])", "unexpected character"),
        ("eval('1')", "not an allowed"),
        ("Symbol('x', __dict__=True)", "not allowed"),
        ("Symbol('x', commutative=1)", "True/False"),
        ("Symbol('x', evaluate=False)", "assumption"),
        ("Pow(Integer(10), Integer(10000000000))", "too large"),
        ("Integer(" + "9" * 5000 + ")", "digits"),
        ("Float('1e999999999')", "not a decimal"),
        (
            "Float('\U000104a00.125')",
            "not a decimal",
        ),  # a non-ASCII digit (found by the slow fuzz run)
        ("Float('1.0', precision=10**9)", "unexpected character"),
        ("Add(" * (MAX_DEPTH + 1) + "Integer(1)" + ")" * (MAX_DEPTH + 1), "nesting"),
        ("Add(Integer(1), Integer(2)", "unbalanced"),
        ("Integer(1) Integer(2)", "unexpected name"),
        ("x", "not an allowed constant"),
        ("'a'", "does not describe"),
        ("Add(Integer(1), 'a')", "must be a sympy object"),
        ("Rational(1, 0)", "zero denominator"),
        ("Add(Str('a'), Integer(1))", "not an expression"),
        ("Indexed(I)", "sympy refused"),  # sympy's IndexException (found by the slow fuzz run)
        ("Symbol('\\q')", "unknown escape"),
        ("I.conjugate()", "unexpected character"),
    ],
)
def test_hostile_input_is_refused_without_running_anything(payload, match, tmp_path):
    with pytest.raises(SreprParseError, match=match):
        parse_srepr(payload)


def test_deep_nesting_is_refused_quickly():
    text = "Add(" * 100_000 + "Integer(1)" + ")" * 100_000
    start = time.perf_counter()
    with pytest.raises(SreprParseError, match="nesting"):
        parse_srepr(text)
    assert time.perf_counter() - start < 5


def test_parser_never_imports_or_evaluates_names():
    # a name that exists in sympy's namespace but is not allow-listed is still refused
    for name in ("lambdify", "sympify", "Function", "Lambda", "Dummy", "srepr"):
        with pytest.raises(SreprParseError, match="not an allowed"):
            parse_srepr(f"{name}(Symbol('x'))")


def test_pickle_and_srepr_expressions_agree_for_a_fresh_pickle():
    expr = sp.Symbol("a", positive=True) ** sp.Rational(3, 2) + sp.I
    assert parse_srepr(sp.srepr(pickle.loads(pickle.dumps(expr)))) == expr


NESTED_POWERS = "Pow(Pow(Pow(Integer(10), Integer(1000)), Integer(1000)), Integer(1000))"


@pytest.mark.parametrize(
    "payload",
    [
        NESTED_POWERS,  # 71 bytes; 10**(10**9) if evaluated
        "Pow(Integer(" + "9" * 40 + "), Integer(1000))",  # one power of a big literal
        "Pow(Mul(Integer(3), I), Integer(" + "9" * 39 + "))",  # a number hidden in a product
        "Pow(Pow(Mul(Integer(2), I), Integer(1000)), Integer(1000))",
        "Add("
        + ", ".join(["Pow(Integer(" + "9" * 40 + "), Integer(400))"] * 300)
        + ")",  # many siblings
    ],
)
def test_powers_that_would_exhaust_time_or_memory_are_refused(payload):
    assert len(NESTED_POWERS) == 71
    start = time.perf_counter()
    with pytest.raises(SreprParseError, match="bits"):
        parse_srepr(payload)
    assert time.perf_counter() - start < 2


def test_modest_powers_of_numbers_still_evaluate():
    assert parse_srepr("Pow(Integer(2), Integer(1000))") == sp.Integer(2) ** 1000
    assert parse_srepr("Pow(Rational(1, 3), Integer(-20))") == sp.Integer(3) ** 20
    x = sp.Symbol("x")
    assert parse_srepr(sp.srepr(x**5000)) == x**5000  # no numbers in the base: nothing computed


def big_rationals(n: int) -> list[str]:
    """``n`` distinct Rationals with 40-digit denominators (pairwise mostly coprime)."""
    return [f"Rational(1, {10**39 + 7 * k + 1})" for k in range(n)]


@contextlib.contextmanager
def hang_guard(seconds: int = 10):
    """Fail instead of hanging: each step of the arithmetic is short, so the alarm is seen."""

    def alarm(_signum: int, _frame: object) -> None:
        msg = f"still parsing after {seconds} s"
        raise TimeoutError(msg)

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@pytest.mark.parametrize("terms", [1500, 2000])
def test_sums_of_many_big_numbers_are_refused_fast(terms):
    """Issue 18, finding 7: these took 32 s and 100 s to parse (only powers were priced)."""
    text = "Add(" + ", ".join(big_rationals(terms)) + ")"
    assert len(text) > 80_000
    with hang_guard(), pytest.raises(SreprParseError, match="this sum would combine numbers of"):
        parse_srepr(text)


X = "Symbol('x')"


@pytest.mark.parametrize(
    "payload",
    [
        "Add(" + ", ".join(f"Mul({r}, {X})" for r in big_rationals(300)) + ")",  # coefficients
        "Mul(" + ", ".join(f"Pow({X}, {r})" for r in big_rationals(300)) + ")",  # exponents
        "Mul(" + ", ".join(f"exp(Mul({r}, {X}))" for r in big_rationals(300)) + ")",  # exp too
        "Mul(" + ", ".join(big_rationals(300)) + ")",  # a product of numbers
        # a chain of sums, each within the limit, whose running result grows
        "Add(" * 299
        + ", ".join(big_rationals(2))
        + "".join(f"), {r}" for r in big_rationals(298))
        + ")",
    ],
    ids=["coefficients", "exponents", "exp", "product", "chain"],
)
def test_numbers_are_priced_wherever_add_and_mul_combine_them(payload):
    with hang_guard(), pytest.raises(SreprParseError, match="would combine numbers of"):
        parse_srepr(payload)


def test_many_sums_each_within_the_limit_exhaust_the_budget_of_a_parse(monkeypatch):
    from modelstore.format import srepr

    monkeypatch.setattr(srepr, "MAX_TOTAL_ARITHMETIC_BITS", 1 << 14, raising=False)
    sums = [f"Add({', '.join(big_rationals(20)[k : k + 2])})" for k in range(0, 20, 2)]
    assert parse_srepr(sums[0]) == sp.Rational(1, 10**39 + 1) + sp.Rational(1, 10**39 + 8)
    with pytest.raises(SreprParseError, match="at most [0-9]+ allowed"):
        parse_srepr("Tuple(" + ", ".join(sums * 40) + ")")


def test_modest_sums_and_products_of_numbers_still_evaluate():
    x = sp.Symbol("x")
    assert parse_srepr("Add(" + ", ".join(big_rationals(20)) + ")") == sum(
        sp.Rational(1, 10**39 + 7 * k + 1) for k in range(20)
    )
    expr = sp.Rational(3, 7) * x**2 + sp.Rational(-5, 11) * x + sp.Integer(2) ** 100
    assert parse_srepr(sp.srepr(expr)) == expr


def test_a_number_times_a_sum_is_priced_with_the_sum_s_coefficients():
    """Mul(c, a + b + ...) distributes c over the terms: their coefficients count too."""
    from modelstore.format import srepr

    terms = srepr.MAX_ARITHMETIC_BITS // (1 + (10**39).bit_length())  # 1/d: 131 bits each
    inner = (
        "Add("
        + ", ".join(f"Mul({r}, Symbol('x{k}'))" for k, r in enumerate(big_rationals(terms)))
        + ")"
    )
    parse_srepr(inner)
    with pytest.raises(SreprParseError, match="this product would combine numbers of"):
        parse_srepr(f"Mul(Rational(1, {10**39 - 1}), {inner})")


@pytest.mark.parametrize("name", ["Max", "Min"])
def test_max_and_min_of_many_arguments_are_refused(name):
    """sympy compares every pair of Max/Min arguments (200 symbols: 54 s); nesting flattens."""

    def alarm(*_):
        raise TimeoutError

    symbols = ", ".join(f"Symbol('x{i}')" for i in range(200))
    nested = (
        f"{name}({name}("
        + ", ".join(f"Symbol('y{i}')" for i in range(10))
        + "), "
        + ", ".join(f"Symbol('z{i}')" for i in range(10))
        + ")"
    )
    old = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(10)
    try:
        for text in (f"{name}({symbols})", nested):
            with pytest.raises(SreprParseError, match="arguments"):
                parse_srepr(text)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
    assert parse_srepr(f"{name}(Symbol('a'), Symbol('b'))").func.__name__ == name


def test_exp_of_a_multiple_of_a_log_is_not_evaluated():
    """sympy turns exp(n*log(b)) into b**n: 10**(10**8) took minutes; kept as written."""

    def alarm(*_):
        raise TimeoutError

    old = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(10)
    try:
        value = parse_srepr("exp(Mul(Integer(100000000), log(Integer(10))))")
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
    assert value.func == sp.exp and value.args[0] == 100000000 * sp.log(10)
