"""The array program: printed from the C source's lowered form, run only if allow-listed."""

from __future__ import annotations

import numpy as np
import pytest

from modelstore import IntegrityError, published_model
from modelstore.backends.base import pack_parameters
from modelstore.errors import ModelstoreError
from modelstore.format.arraycode import _translate, compile_array_program, generate_array_source


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
