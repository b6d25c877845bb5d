"""Which backend runs, and what a missing piece says: one line, and auto falls back only to a
backend that works."""

from __future__ import annotations

import sys

import pytest

from modelstore import BackendUnavailableError, published_model
from modelstore._native import compiler

SEED = 1156.5307379422927


@pytest.fixture
def no_compiler(monkeypatch):
    monkeypatch.setenv("MODELSTORE_CC", "/nonexistent/cc")
    compiler._identity.cache_clear()
    yield
    compiler._identity.cache_clear()


def hide(monkeypatch, *names):
    """Make ``import NAME`` fail as if the package were not installed."""
    for name in list(sys.modules):
        if name.split(".")[0] in names:
            monkeypatch.delitem(sys.modules, name)
    for name in names:
        monkeypatch.setitem(sys.modules, name, None)


def test_native_without_c_source_says_so(embedded):
    with pytest.raises(BackendUnavailableError, match=r"default@1\.0\.0 has no C source"):
        published_model("default@1.0.0", backend="native", registry=embedded).intensity(1.0, 3.0)


def test_jax_missing_is_one_line_naming_jax(embedded, monkeypatch):
    hide(monkeypatch, "jax")
    with pytest.raises(BackendUnavailableError, match="needs the jax package") as info:
        published_model("default@1.3.0", backend="jax", registry=embedded).intensity(1.0, 3.0)
    assert "\n" not in str(info.value)
    # the numpy backend of 1.3.0 needs nothing but numpy
    assert published_model("default@1.3.0", backend="numpy", registry=embedded).intensity(
        1.0, 3.0
    ) == (pytest.approx(SEED, rel=1e-10))


def test_auto_without_compiler_or_jax_falls_back_to_numpy(embedded, monkeypatch, no_compiler):
    hide(monkeypatch, "jax")
    model = published_model("default@1.3.0", registry=embedded)
    with pytest.warns(UserWarning, match="falling back to numpy") as record:
        assert model.intensity(1.0, 3.0) == pytest.approx(SEED, rel=1e-10)
    assert model.backend == "numpy"
    message = str(record[0].message)
    assert "no working C compiler" in message and "jax" in message


def test_versions_before_1_3_need_tensorwaves_and_say_so(embedded, monkeypatch):
    hide(monkeypatch, "tensorwaves")
    with pytest.raises(BackendUnavailableError, match="before 1.3.0 needs tensorwaves"):
        published_model("default@1.2.0", backend="numpy", registry=embedded).intensity(1.0, 3.0)
    # 1.3.0 runs its array program without tensorwaves
    assert published_model("default@1.3.0", backend="numpy", registry=embedded).intensity(
        1.0, 3.0
    ) == (pytest.approx(SEED, rel=1e-10))


def test_nothing_works_is_one_error_listing_every_reason(embedded, monkeypatch, no_compiler):
    hide(monkeypatch, "jax", "tensorwaves")
    with pytest.raises(BackendUnavailableError) as info:
        published_model("default@1.2.0", registry=embedded).intensity(1.0, 3.0)
    text = str(info.value)
    assert "native:" in text and "jax:" in text and "numpy:" in text


def test_array_backends_import_neither_sympy_nor_tensorwaves(tmp_path):
    import subprocess

    code = (
        "import sys\n"
        "from modelstore import published_model\n"
        "for b in ('numpy', 'jax'):\n"
        "    published_model('default@1.3.0', backend=b).intensity(1.0, 3.0)\n"
        "print(sorted(m for m in ('sympy', 'tensorwaves') if m in sys.modules))\n"
    )
    env = {"MODELSTORE_CACHE_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"}
    run = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    assert run.stdout.strip() == "[]"


def test_a_mistyped_backend_suggests_the_name(embedded):
    from modelstore.errors import InvalidNameError

    with pytest.raises(InvalidNameError, match=r"unknown backend 'nativ'; did you mean 'native'\?"):
        published_model("default", backend="nativ", registry=embedded).intensity(1.0, 3.0)
