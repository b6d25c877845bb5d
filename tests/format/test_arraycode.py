"""The array program: printed from the C source's lowered form, run only if allow-listed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import modelstore
from modelstore import IntegrityError, published_model
from modelstore.backends.base import pack_parameters
from modelstore.errors import ModelstoreError
from modelstore.format.arraycode import (
    ARRAY_FUNCTIONS,
    _translate,
    compile_array_program,
    generate_array_source,
)


def test_c_expressions_translate_with_c_precedence():
    assert _translate("a1 * a2 + a3 / -a4") == "a1 * a2 + a3 / -a4"
    assert _translate("((fabs(a1) <= 1.0) ? a1 : NAN)") == "xp.where(xp.abs(a1) <= 1.0, a1, xp.nan)"
    assert _translate("(a1 - (a2 + a3)) * 2.0") == "(a1 - (a2 + a3)) * 2.0"
    assert _translate("copysign(sqrt(a1), a2)") == "xp.copysign(xp.sqrt(a1), a2)"
    with pytest.raises(ModelstoreError, match="system"):
        _translate("system(a1)")
    with pytest.raises(ModelstoreError):
        _translate("a1 ; a2")


def test_published_array_program_regenerates_byte_for_byte(embedded):
    model = published_model("default", registry=embedded)
    names = [p.name for p in model.manifest.parameters]
    regenerated = generate_array_source(model.load_forms("srepr"), names).encode()
    assert regenerated == embedded.read_file(model.manifest, "array-source")


@pytest.mark.parametrize("model_id", ["default", "ls-couplings", "k700-rbw", "l1405-flatte-free"])
def test_array_program_agrees_with_the_reference_and_native(embedded, model_id):
    model = published_model(model_id, registry=embedded, backend="native")
    source = embedded.read_file(model.manifest, "array-source").decode()
    program = compile_array_program(source)
    reference = model.reference()
    par = pack_parameters(model.manifest.parameters, model.parameters)
    with np.errstate(all="ignore"):
        values = program(reference["sigma1"], reference["sigma2"], par, np)
    expected = reference["intensity"]
    assert np.array_equal(np.isnan(values), np.isnan(expected))
    inside = ~np.isnan(expected)
    np.testing.assert_allclose(values[inside], expected[inside], rtol=1e-10)
    native = model.intensity(reference["sigma1"], reference["sigma2"])
    np.testing.assert_allclose(values[inside], native[inside], rtol=1e-12)


HEADER = "def intensity(sigma1, sigma2, par, xp):\n"
POLAR = "def polarimetry(sigma1, sigma2, par, xp):\n"
SQUARES = (
    HEADER
    + "    a0 = 3\n"
    + "".join(f"    a{k} = a{k - 1} * a{k - 1}\n" for k in range(1, 41))
    + "    return sigma1 * a40\n"
)
HOSTILE = {
    "import": "import os\n" + HEADER + "    return sigma1\n",
    "import inside": HEADER + "    import os\n    return sigma1\n",
    "builtin call": HEADER + "    a = open('CANARY', 'w')\n    return sigma1\n",
    "dunder attribute": HEADER + "    a = xp.__class__\n    return sigma1\n",
    "unlisted xp function": HEADER + "    a = xp.load('x')\n    return sigma1\n",
    "attribute of a value": HEADER + "    a = sigma1.__class__\n    return sigma1\n",
    "string constant": HEADER + "    a = 'x'\n    return sigma1\n",
    "keyword argument": HEADER + "    a = xp.sqrt(sigma1, out=sigma2)\n    return a\n",
    "lambda": HEADER + "    a = (lambda: 1)\n    return sigma1\n",
    "loop": HEADER + "    for a in sigma1:\n        pass\n    return sigma1\n",
    "power operator": HEADER + "    a = sigma1 ** 99999999\n    return a\n",
    "subscript": HEADER + "    a = sigma1[0]\n    return a\n",
    "dunder name": HEADER + "    __builtins__ = 1\n    return sigma1\n",
    "rebinding xp": HEADER + "    xp = 1\n    return sigma1\n",
    "two functions": HEADER + "    return sigma1\n" + HEADER + "    return sigma2\n",
    "decorator": "@xp.sqrt\n" + HEADER + "    return sigma1\n",
    "default argument": "def intensity(sigma1, sigma2, par, xp=1):\n    return sigma1\n",
    "other name": "def evaluate(sigma1, sigma2, par, xp):\n    return sigma1\n",
    "walrus": HEADER + "    a = (b := 1)\n    return sigma1\n",
    "syntax error": HEADER + "    a = (\n",
    # the second function of 1.4.0 programs: polarimetry(...) returning a tuple of four names
    "polarimetry first": POLAR + "    return (sigma1, sigma1, sigma1, sigma1)\n",
    "three functions": HEADER
    + "    return sigma1\n"
    + POLAR
    + "    a = sigma1\n    return (a, a, a, a)\n"
    + POLAR
    + "    return (sigma1, sigma1, sigma1, sigma1)\n",
    "polarimetry returns one value": HEADER + "    return sigma1\n" + POLAR + "    return sigma1\n",
    "polarimetry returns three": HEADER
    + "    return sigma1\n"
    + POLAR
    + "    a = sigma1\n    return (a, a, a)\n",
    "polarimetry returns a call": HEADER
    + "    return sigma1\n"
    + POLAR
    + "    a = sigma1\n    return (a, a, a, open('CANARY', 'w'))\n",
    "polarimetry returns an attribute": HEADER
    + "    return sigma1\n"
    + POLAR
    + "    a = sigma1\n    return (a, a, a, xp.__class__)\n",
    "polarimetry returns a list": HEADER
    + "    return sigma1\n"
    + POLAR
    + "    a = sigma1\n    return [a, a, a, a]\n",
    "polarimetry returns a starred name": HEADER
    + "    return sigma1\n"
    + POLAR
    + "    a = sigma1\n    return (a, a, a, *a)\n",
    "polarimetry returns an argument": HEADER
    + "    return sigma1\n"
    + POLAR
    + "    a = sigma1\n    return (a, a, a, sigma2)\n",
    "polarimetry returns xp": HEADER
    + "    return sigma1\n"
    + POLAR
    + "    a = sigma1\n    return (a, a, a, xp)\n",
    "polarimetry imports": HEADER
    + "    return sigma1\n"
    + POLAR
    + "    import os\n    return (sigma1, sigma1, sigma1, sigma1)\n",
    "polarimetry builtin call": HEADER
    + "    return sigma1\n"
    + POLAR
    + "    a = open('CANARY', 'w')\n    return (a, a, a, a)\n",
    "polarimetry other arguments": HEADER
    + "    return sigma1\n"
    + "def polarimetry(sigma1, sigma2, par, xp, extra):\n"
    + "    return (sigma1, sigma1, sigma1, sigma1)\n",
    "polarimetry decorated": HEADER
    + "    return sigma1\n"
    + "@xp.sqrt\n"
    + POLAR
    + "    return (sigma1, sigma1, sigma1, sigma1)\n",
    "intensity returns a tuple of names": HEADER + "    return (sigma1, sigma1, sigma1, sigma1)\n",
    "statement between functions": HEADER
    + "    return sigma1\n"
    + "x = 1\n"
    + POLAR
    + "    return (sigma1, sigma1, sigma1, sigma1)\n",
    # issue 18, finding 6: Python integers grow without bound (3 ** (2 ** 40) here)
    "integer squaring": SQUARES,
    "integer constant": HEADER + "    a = sigma1 * 2\n    return a\n",
    "boolean constant": HEADER + "    a = sigma1 * True\n    return a\n",
    "complex constant": HEADER + "    a = sigma1 * 1j\n    return a\n",
    "comparison as a number": HEADER  # True + True == 2: integer arithmetic again
    + "    a = 3.0 > 1.0\n    b = a + a\n    c = b * b\n    return sigma1 * c\n",
    "comparison in arithmetic": HEADER
    + "    a = xp.where((sigma1 > 1.0) + (sigma1 > 1.0), sigma1, sigma2)\n    return a\n",
    "comparison as a branch of where": HEADER
    + "    a = xp.where(sigma1 > 1.0, sigma1 > 2.0, sigma2)\n    return a\n",
    "where with one argument": HEADER  # a tuple, and t + t doubles it
    + "    t = xp.where(sigma1)\n    u = t + t\n    return sigma1\n",
    "output array by position": HEADER + "    a = xp.sqrt(sigma1, sigma2)\n    return a\n",
    "starred arguments": HEADER + "    a = xp.arctan2(*sigma1)\n    return a\n",
    # finding 8b: names are read only after the function assigned them
    "returns its own function": HEADER + "    return intensity\n",
    "reads a name before assigning it": HEADER + "    a = b * 1.0\n    b = sigma1\n    return a\n",
    "reads a deleted name": HEADER + "    a = sigma1\n    del a\n    return a\n",
    "deletes a name twice": HEADER + "    a = sigma1\n    del a, a\n    return sigma1\n",
    "reads a builtin": HEADER + "    a = open\n    return sigma1\n",
    "reads xp itself": HEADER + "    a = xp\n    return sigma1\n",
    "polarimetry returns the intensity function": HEADER
    + "    return sigma1\n"
    + POLAR
    + "    a = sigma1\n    return (a, a, a, intensity)\n",
    "polarimetry reads the intensity function": HEADER
    + "    return sigma1\n"
    + POLAR
    + "    a = intensity\n    return (a, a, a, a)\n",
    # finding 8a and the size budget, checked before compile()
    "1,500-term sum": HEADER + "    a = " + " + ".join(["sigma1"] * 1500) + "\n    return a\n",
    "deeply nested calls": HEADER + "    a = " + "xp.abs(" * 150 + "sigma1" + ")" * 150 + "\n"
    "    return a\n",
    "too many expression nodes": HEADER
    + ("    b = sigma1" + " + sigma1" * 40 + "\n") * 4000
    + "    return b\n",
    "too many lines": HEADER + "    a = sigma1\n" * 20_000 + "    return a\n",
    "huge par index": HEADER + "    return par[" + "9" * 30 + "]\n",
    "too many characters": HEADER + "    a = 1." + "0" * (2 << 20) + "\n    return a\n",
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_programs_are_refused_before_they_run(case, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(IntegrityError, match="refused"):
        compile_array_program(HOSTILE[case], "hostile.py")
    assert not (tmp_path / "CANARY").exists()


def test_a_minimal_program_runs_without_builtins():
    program = compile_array_program(
        HEADER
        + "    a = xp.where(sigma1 > 1.0, xp.sqrt(sigma1), xp.nan)\n"
        + "    del a\n    return sigma2 * par[0]\n"
    )
    np.testing.assert_array_equal(
        program(np.array([4.0]), np.array([2.0]), np.array([3.0]), np), [6.0]
    )


def test_a_minimal_polarimetry_program_runs_and_old_programs_have_none():
    source = (
        HEADER
        + "    return sigma1\n\n\n"
        + POLAR
        + "    i = sigma1 * par[0]\n    x = sigma2 / i\n"
        + "    z = sigma2 + 0.0\n    return (i, x, x, z)\n"
    )
    program = compile_array_program(source, function="polarimetry")
    values = program(np.array([2.0]), np.array([3.0]), np.array([2.0]), np)
    np.testing.assert_array_equal(np.array(values).ravel(), [4.0, 0.75, 0.75, 3.0])
    with pytest.raises(IntegrityError, match="1.4.0"):
        compile_array_program(HEADER + "    return sigma1\n", function="polarimetry")


# A program that passed the allow-list would be called; the child's memory is capped, and the
# timeout ends it if the program were admitted and ran (the old allow-list admitted SQUARES).
_RUN_IN_CHILD = """
import resource, sys
resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
import numpy as np
from modelstore.errors import IntegrityError
from modelstore.format.arraycode import compile_array_program
try:
    program = compile_array_program(sys.stdin.read(), "squares.py")
except IntegrityError as exc:
    print("refused:", exc)
else:
    program(np.ones(1), np.ones(1), np.ones(1), np)
    print("ran")
"""


def test_integer_arithmetic_cannot_run_unbounded():
    """Issue 18, finding 6: 40 squarings of a Python integer are refused, not run for ever."""
    env = {**os.environ, "PYTHONPATH": str(Path(modelstore.__file__).resolve().parents[1])}
    try:
        child = subprocess.run(
            [sys.executable, "-c", _RUN_IN_CHILD],
            input=SQUARES,
            capture_output=True,
            text=True,
            timeout=20,
            env=env,
            check=False,
        )
    except subprocess.TimeoutExpired:
        pytest.fail("the integer program was admitted and still ran after 20 s")
    assert child.stdout.startswith("refused: squares.py: line 2: only float constants"), (
        child.stdout + child.stderr[-2000:]
    )


def test_a_huge_expression_is_one_integrity_error_line_not_a_recursion_error():
    """Finding 8a: a 1,500-term sum made compile() raise RecursionError (a traceback)."""
    source = HEADER + "    a = " + " + ".join(["sigma1"] * 1500) + "\n    return a\n"
    with pytest.raises(IntegrityError) as caught:
        compile_array_program(source, "huge.py")
    message = str(caught.value)
    assert message.startswith("huge.py: line 2: an expression nested deeper than")
    assert "\n" not in message


def test_compile_errors_past_the_budget_are_integrity_errors(monkeypatch):
    """Whatever compile() raises on a checked tree reaches the caller as IntegrityError."""
    from modelstore.format import arraycheck

    monkeypatch.setattr(arraycheck, "MAX_NESTING", 1 << 20)
    source = HEADER + "    a = " + " + ".join(["sigma1"] * 1500) + "\n    return a\n"
    with pytest.raises(IntegrityError, match=r"^huge\.py: cannot be compiled \(RecursionError\)"):
        compile_array_program(source, "huge.py")


def test_the_own_function_name_is_not_a_value():
    """Finding 8b: `return intensity` was admitted and failed later with TypeError."""
    with pytest.raises(IntegrityError, match="'intensity' is read before it is assigned"):
        compile_array_program(HEADER + "    return intensity\n", "own.py")


def test_programs_at_the_budget_limits_still_compile():
    from modelstore.format import arraycheck

    depth = arraycheck.MAX_NESTING - 1
    deep = HEADER + "    a = " + "xp.abs(" * depth + "sigma1" + ")" * depth + "\n    return a\n"
    program = compile_array_program(deep)
    np.testing.assert_array_equal(program(np.array([-2.0]), None, None, np), [2.0])


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ("    a = 1.0 / 0.0\n    return sigma1 * a\n", "ZeroDivisionError"),
        ("    return par[99]\n", "IndexError"),
    ],
    ids=["division by zero", "par index beyond the parameters"],
)
def test_a_program_that_fails_when_run_raises_integrity_error(body, error):
    program = compile_array_program(HEADER + body, "faulty.py")
    with pytest.raises(IntegrityError, match=f"^faulty.py: failed when run \\({error}"):
        program(np.array([1.0]), np.array([1.0]), np.array([1.0]), np)


def test_every_published_array_program_passes_the_allow_list(embedded):
    """Published versions are immutable: each distinct program (1.3.0 and 1.4.0) compiles."""
    seen: dict[str, str] = {}
    for model_id, entry in embedded.index().models.items():
        for version in entry.versions:
            manifest = embedded.manifest(f"{model_id}@{version}")
            if manifest.has_file("array-source"):
                seen.setdefault(manifest.file("array-source").digest, f"{model_id}@{version}")
    assert len(seen) >= 18
    for ref in seen.values():
        manifest = embedded.manifest(ref)
        source = embedded.read_file(manifest, "array-source").decode()
        compile_array_program(source, ref)
        if manifest.has_file("polarimetry-srepr"):
            compile_array_program(source, ref, function="polarimetry")


def test_the_generator_emits_only_allow_listed_functions():
    from modelstore.format import arraycheck

    assert {*arraycheck.XP_FUNCTIONS, "nan"} == ARRAY_FUNCTIONS
