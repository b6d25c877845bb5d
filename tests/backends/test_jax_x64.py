"""The JAX backend runs in 64 bits without switching the caller's own JAX code to 64 bits.

Each check runs in a fresh interpreter: JAX's process-wide setting is what is under test, and
other tests of this session (tensorwaves, upstream) may have changed it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import warnings

import pytest

from modelstore.backends import _array

jax = pytest.importorskip("jax")

SCRIPT = """
import json, warnings
import numpy as np
import jax, jax.numpy as jnp
from modelstore import published_model

warnings.simplefilter("error")  # a process-wide switch would warn
before = str(jnp.ones(1).dtype)
model = published_model({ref!r}, backend="jax")
values = model.intensity(np.array([1.0, 1.1]), np.array([3.0, 3.2]))
after = str(jnp.ones(1).dtype)
own = jax.jit(lambda x: x * 2)(np.ones(2))  # the caller's own compiled code
print(json.dumps({{
    "before": before, "after": after, "own": str(own.dtype),
    "x64": bool(jax.config.jax_enable_x64), "backend": model.backend,
    "values": [float(v) for v in values],
    "numpy": [float(v) for v in published_model({ref!r}, backend="numpy").intensity(
        np.array([1.0, 1.1]), np.array([3.0, 3.2]))],
}}))
"""


def run(ref: str) -> dict:
    env = dict(os.environ)
    env.pop("JAX_ENABLE_X64", None)
    env["MODELSTORE_JAX_CACHE"] = "off"
    code = textwrap.dedent(SCRIPT.format(ref=ref))
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


@pytest.mark.parametrize("ref", ["default@1.4.0", "default@1.2.0"], ids=["array", "tensorwaves"])
def test_user_jax_keeps_its_dtype_and_results_stay_float64(ref: str) -> None:
    result = run(ref)
    assert result["backend"] == "jax"
    assert result["before"] == result["after"] == result["own"] == "float32"
    assert result["x64"] is False
    # float64 results: float32 would differ from numpy's at ~1e-7
    assert result["values"] == pytest.approx(result["numpy"], rel=1e-12)


class _NoScopeJax:
    """A JAX without any scoped switch: only ``config`` and a version."""

    __version__ = "0.0-test"

    class config:  # noqa: N801 (JAX's spelling)
        jax_enable_x64 = False

        @classmethod
        def update(cls, name: str, value: object) -> None:
            setattr(cls, name, value)


def test_a_jax_without_scope_is_switched_once_with_one_warning(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_array, "_x64_warned", False)
    monkeypatch.setitem(sys.modules, "jax.experimental", None)  # no jax.experimental.enable_x64
    fake = _NoScopeJax()
    with (
        pytest.warns(UserWarning, match="64-bit for the whole process") as caught,
        _array.x64(fake),
    ):
        pass
    assert len(caught) == 1
    assert fake.config.jax_enable_x64 is True
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with _array.x64(fake):
            pass
