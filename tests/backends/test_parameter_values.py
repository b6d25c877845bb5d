"""Parameter overrides are checked against the manifest's kind and range before any evaluation.

``R_\\mathrm{prod}`` is an ``int64`` parameter of the default model (upstream wrote 5), the
K(892) mass a ``float64`` one and the production couplings ``complex128`` ones.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from modelstore import published_model
from modelstore.errors import InvalidInputError
from modelstore.format.manifest import Parameter

RADIUS = r"R_\mathrm{prod}"
MASS = "m_{K(892)}"
COUPLING = r"\mathcal{H}^\mathrm{production}[K(892), -1, -1/2]"

INT = Parameter("n", "int64", 5)
REAL = Parameter("m", "float64", 0.9)
COMPLEX = Parameter("c", "complex128", 1j)


@pytest.mark.parametrize(
    ("parameter", "value", "expected"),
    [
        (INT, 6, 6),
        (INT, 6.0, 6),
        (INT, np.int64(-7), -7),
        (INT, 2**63 - 1, 2**63 - 1),  # exactly, not rounded through a float
        (INT, -(2**63), -(2**63)),
        (INT, 4.5, 4.5),  # a fraction stays a float (a radius, published as the integer 5)
        (INT, 3 + 0j, 3),
        (REAL, 1, 1.0),
        (REAL, np.float32(0.5), 0.5),
        (REAL, 10**25, 1e25),
        (REAL, 1e300, 1e300),
        (REAL, 0.9 + 0j, 0.9),
        (COMPLEX, 2, 2 + 0j),
        (COMPLEX, np.complex128(1 - 2j), 1 - 2j),
    ],
)
def test_accepted_values_come_back_as_their_kind(
    parameter: Parameter, value: object, expected: object
) -> None:
    checked = parameter.check_value(value)
    assert checked == expected
    assert type(checked) is type(expected)


@pytest.mark.parametrize(
    ("parameter", "value", "problem"),
    [
        (INT, 1e300, "1e+300 is outside the int64 range"),
        (INT, 12345678901234567890123456, "12345678901234567890123456 is outside the int64"),
        (INT, 2**63, "9223372036854775808 is outside the int64 range"),
        (INT, -(2**63) - 1, "is outside the int64 range"),
        (INT, 9.3e18, "9.3e+18 is outside the int64 range"),
        (INT, float(2**63), "is outside the int64 range"),
        (INT, math.nan, "nan is not finite"),
        (INT, 1 + 1j, "(1+1j) is complex; the parameter is real"),
        (REAL, math.inf, "inf is not finite"),
        pytest.param(REAL, 10**400, "is too large for a float64", id="REAL-401-digits"),
        pytest.param(
            REAL, 10**5000, "an integer of 16610 bits is too large", id="REAL-5001-digits"
        ),
        (REAL, "0.9", "'0.9' is not a number"),
        (REAL, True, "True is not a number"),
        (REAL, None, "None is not a number"),
        (COMPLEX, complex(1, math.nan), "(1+nanj) is not finite"),
        (COMPLEX, complex(math.inf, 0), "(inf+0j) is not finite"),
    ],
)
def test_refused_values_name_the_parameter_and_the_value(
    parameter: Parameter, value: object, problem: str
) -> None:
    with pytest.raises(InvalidInputError) as caught:
        parameter.check_value(value, "default@1.1.0: parameter")
    message = str(caught.value)
    assert message.startswith(f"default@1.1.0: parameter {parameter.name!r} ({parameter.dtype}):")
    assert problem in message
    assert "\n" not in message and len(message) < 200


@pytest.fixture(scope="module")
def model(embedded: object) -> object:
    return published_model("default@1.4.0", backend="numpy", registry=embedded)


@pytest.mark.parametrize(
    ("overrides", "problem"),
    [
        ({RADIUS: 1e300}, r"'R_\\mathrm{prod}' (int64): 1e+300 is outside the int64 range"),
        ({RADIUS: 10**25}, "10000000000000000000000000 is outside the int64 range"),
        ({MASS: math.nan}, "'m_{K(892)}' (float64): nan is not finite"),
        ({MASS: "0.9"}, "'m_{K(892)}' (float64): '0.9' is not a number"),
        ({COUPLING: complex(math.inf, 1)}, "(complex128): (inf+1j) is not finite"),
    ],
)
def test_every_evaluation_refuses_unfit_overrides(
    model: object, overrides: dict, problem: str
) -> None:
    calls = {
        "intensity": lambda: model.intensity(1.0, 3.0, **overrides),
        "polarimeter": lambda: model.polarimeter(1.0, 3.0, **overrides),
        "decay_rates": lambda: model.decay_rates(1000, **overrides),
    }
    for name, call in calls.items():
        with pytest.raises(InvalidInputError) as caught:
            call()
        assert problem in str(caught.value), name
        assert str(caught.value).startswith("default@1.4.0: parameter"), name


def test_fit_overrides_still_evaluate(model: object) -> None:
    default = model.intensity(1.0, 3.0)
    assert model.intensity(1.0, 3.0, **{RADIUS: 5.0}) == default
    assert model.intensity(1.0, 3.0, **{RADIUS: np.int64(5)}) == default
    wider = model.intensity(1.0, 3.0, **{RADIUS: 4.5})
    assert math.isfinite(wider) and wider != default
    assert np.isfinite(model.polarimeter(1.0, 3.0, **{MASS: 0.9, COUPLING: 1})).all()
    assert model.intensity(1.0, 3.0) == default  # overrides do not stick
