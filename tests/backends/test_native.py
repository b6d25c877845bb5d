"""The native evaluator: code generation, the verified build cache, threads, fallbacks."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import sympy as sp

from modelstore import BackendUnavailableError, IntegrityError, published_model
from modelstore._native import compiler
from modelstore._native.build import RECORD, load_or_build
from modelstore._native.codegen import mangle
from modelstore._native.evaluator import NativeEvaluator
from modelstore._native.source import generate_c_source
from modelstore.format.manifest import Parameter
from modelstore.store.hashing import bytes_digest


@pytest.fixture
def fresh_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MODELSTORE_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache" / "native"


def toy_forms(names):
    """A small model with the structure of the published ones: a Breit-Wigner in σ1, a
    helicity angle θ = acos(z(σ1, σ2)), real and complex square roots, hostile symbol names."""
    s1, s2, s3 = sp.symbols("sigma1:4", nonnegative=True)
    m0, m1, m2, m3 = sp.symbols("m:4", nonnegative=True)
    theta = sp.Symbol("theta_23", real=True)
    mass, width = sp.Symbol(names[0], nonnegative=True), sp.Symbol(names[1], nonnegative=True)
    coupling = sp.IndexedBase(sp.Symbol(names[2]))[
        sp.core.symbol.Str("K(892)"), -1, sp.Rational(-1, 2)
    ]
    bw = coupling / (mass**2 - s1 - sp.I * mass * width)
    intensity = (
        sp.Abs(bw * sp.cos(theta / 2) + sp.sqrt(coupling) * sp.sin(3 * theta / 2)) ** 2
        + sp.sqrt(s1 - 1) * sp.cos(theta)
        + sp.exp(-width * s2)
    )
    z = (s2 - s3) / (s2 + s3)
    defaults = {
        mass: 0.9,
        width: 0.05,
        coupling: complex(1.2, -0.4),
        m0: 2.28646,
        m1: 0.938272046,
        m2: 0.13957018,
        m3: 0.493677,
    }
    forms = {
        "intensity_expr": intensity,
        "variables": {theta: sp.acos(z)},
        "parameter_defaults": defaults,
        "sigma3": {s3: m0**2 + m1**2 + m2**2 + m3**2 - s1 - s2},
    }
    return forms


def evaluate_with_numpy(forms, s1, s2):
    ((s3, s3_expr),) = forms["sigma3"].items()
    expr = forms["intensity_expr"].xreplace(forms["variables"]).xreplace({s3: s3_expr})
    expr = expr.xreplace(forms["parameter_defaults"])
    function = sp.lambdify(sp.symbols("sigma1 sigma2", nonnegative=True), expr, "numpy")
    with np.errstate(all="ignore"):
        return np.asarray(function(s1, s2).real, dtype=float)


HOSTILE = [
    'm"); system("rm -rf /"); double x = ("',
    "*/ int I = 1; /*",
    "\\Gamma_{K(892)} \\n #include <stdio.h>",
]


def test_generated_code_follows_numpy_semantics_and_survives_hostile_names(fresh_cache):
    forms = toy_forms(HOSTILE)
    names = sorted(str(s) for s in forms["parameter_defaults"])
    source = generate_c_source(forms, names)
    for name in HOSTILE:
        assert name not in source  # names only appear escaped, inside string literals
    assert 'system("' not in source  # the quote that would end a C string is escaped
    build = load_or_build(bytes_digest(source.encode()), lambda: source)
    params = [
        Parameter(
            n,
            "complex128" if isinstance(forms["parameter_defaults"][s], complex) else "float64",
            forms["parameter_defaults"][s],
        )
        for n, s in sorted((str(s), s) for s in forms["parameter_defaults"])
    ]
    evaluator = NativeEvaluator(build.module, build.library_path, build.status, params)
    rng = np.random.default_rng(3)
    s1 = rng.uniform(0.3, 2.0, 5000)
    s2 = rng.uniform(1.5, 4.8, 5000)
    native = evaluator(s1, s2, {p.name: p.value for p in params})
    expected = evaluate_with_numpy(forms, s1, s2)
    # real sqrt(σ1 - 1) is NaN below 1, acos is NaN outside [-1, 1]: both must show up
    assert np.isnan(expected).any() and (~np.isnan(expected)).any()
    assert np.array_equal(np.isnan(native), np.isnan(expected))
    ok = ~np.isnan(expected)
    np.testing.assert_allclose(native[ok], expected[ok], rtol=1e-11)


def test_mangled_names_are_identifiers():
    assert mangle(3, r"\Gamma_{K(892)}") == "p3_Gamma_K_892"
    assert mangle(0, "*/") == "p0"
    with pytest.raises(Exception, match="control characters"):
        mangle(1, "a\nb")


def test_build_once_then_cached(fresh_cache, embedded):
    first = published_model("default@1.1.0", backend="native", registry=embedded)
    assert first.evaluator.build_status == "built"
    second = published_model("default@1.1.0", backend="native", registry=embedded)
    assert second.evaluator.build_status == "cached"
    assert second.intensity(1.0, 3.0) == pytest.approx(1156.5307379422927, rel=1e-12)
    record = json.loads((first.evaluator.library_path.parent / RECORD).read_text())
    assert record["source_digest"] == first.manifest.file("native-source").digest
    assert record["digest"] == bytes_digest(first.evaluator.library_path.read_bytes())


def test_replaced_library_is_never_loaded(fresh_cache, embedded, tmp_path):
    model = published_model("default@1.1.0", backend="native", registry=embedded)
    library = model.evaluator.library_path
    # a library that would write a canary when loaded, in place of the cached one
    canary = tmp_path / "canary"
    evil = tmp_path / "evil.c"
    evil.write_text(
        "#include <stdio.h>\n__attribute__((constructor)) static void boom(void)"
        f' {{ FILE *f = fopen("{canary}", "w"); if (f) fclose(f); }}\n'
    )
    subprocess.run(
        [*compiler.compiler_command(), "-shared", "-fPIC", str(evil), "-o", str(library)],
        check=True,
    )
    code = (
        "from modelstore import published_model; "
        f"m = published_model('default@1.1.0', backend='native', registry={str(embedded.root)!r}); "
        "print(m.evaluator.build_status, m.intensity(1.0, 3.0))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.split()[0] == "built"  # refused, moved aside, rebuilt
    assert float(proc.stdout.split()[1]) == pytest.approx(1156.5307379422927, rel=1e-12)
    assert not canary.exists()


def test_tampered_record_is_refused(fresh_cache, embedded):
    model = published_model("default@1.1.0", backend="native", registry=embedded)
    record = model.evaluator.library_path.parent / RECORD
    data = json.loads(record.read_text())
    data["library"] = "../../evil.so"
    record.write_text(json.dumps(data))
    from modelstore._native.build import _load_verified

    with pytest.raises(IntegrityError, match="malformed library name"):
        _load_verified(record.parent, "0" * 64)


def test_without_a_compiler(fresh_cache, embedded, monkeypatch):
    monkeypatch.setenv("MODELSTORE_CC", "/nonexistent/cc")
    compiler._identity.cache_clear()
    try:
        with pytest.raises(BackendUnavailableError, match="no working C compiler"):
            published_model("default@1.1.0", backend="native", registry=embedded).intensity(
                1.0, 3.0
            )
        auto = published_model("default@1.1.0", backend="auto", registry=embedded)
        with pytest.warns(UserWarning, match="falling back to JAX"):
            assert auto.intensity(1.0, 3.0) == pytest.approx(1156.5307379422927, rel=1e-10)
        assert auto.backend == "jax"
    finally:
        compiler._identity.cache_clear()


def test_auto_prefers_native(embedded):
    assert published_model("default@1.1.0", registry=embedded).backend == "native"
    assert (
        published_model("default@1.0.0", registry=embedded).backend == "jax"
    )  # no C source in 1.0.0


def test_thread_count_does_not_change_results(embedded):
    model = published_model("default@1.1.0", backend="native", registry=embedded)
    rng = np.random.default_rng(0)
    s1, s2 = rng.uniform(0.4, 1.8, 50_000), rng.uniform(2.0, 4.6, 50_000)
    model.evaluator.threads = 1
    one = model.intensity(s1, s2)
    model.evaluator.threads = 2
    two = model.intensity(s1, s2)
    np.testing.assert_array_equal(one, two)


def test_gil_is_released_during_evaluation(embedded):
    model = published_model("default@1.1.0", backend="native", registry=embedded)
    model.evaluator.threads = 1
    s1 = np.full(3_000_000, 1.0)
    s2 = np.full(3_000_000, 3.0)
    model.intensity(s1[:10], s2[:10])
    ticks = 0
    worker = threading.Thread(target=model.intensity, args=(s1, s2))
    worker.start()
    while worker.is_alive():
        ticks += 1
        time.sleep(0)
    # a property, not a timing: with the GIL held for the whole call, the main thread would get
    # a few switch intervals at most
    assert ticks > 100


def test_hot_path_imports_neither_jax_nor_sympy(embedded):
    published_model("default", registry=embedded).intensity(1.0, 3.0)  # warm the build cache
    code = (
        "import sys, time; t = time.perf_counter(); from modelstore import published_model; "
        f"v = published_model('default', registry={str(embedded.root)!r}).intensity(1.0, 3.0); "
        "heavy = ('jax', 'sympy', 'tensorwaves', 'zarr'); "
        "print(v, time.perf_counter() - t, *sorted(m for m in heavy if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=os.environ
    ).stdout.split()
    assert float(out[0]) == pytest.approx(1156.5307379422927, rel=1e-12)
    assert out[2:] == []


def test_published_c_source_is_reproducible_from_the_pickle(embedded):
    """The latest version's C source is what today's code generator makes of its pickle."""
    model = published_model("default", registry=embedded)
    names = [p.name for p in model.manifest.parameters]
    regenerated = generate_c_source(model.load_forms(), names).encode()
    assert regenerated == embedded.read_file(model.manifest, "native-source")


def test_every_instruction_set_gives_identical_bits(embedded):
    model = published_model("default", backend="native", registry=embedded)
    evaluator = model.evaluator
    assert evaluator.abi >= 3
    reference = model.reference()
    rng = np.random.default_rng(5)
    s1 = np.concatenate([reference["sigma1"], rng.uniform(0.4, 1.8, 10_000)])
    s2 = np.concatenate([reference["sigma2"], rng.uniform(2.0, 4.6, 10_000)])
    results = {}
    try:
        for isa in ("avx512", "avx2", "portable"):
            evaluator.limit_isa(isa)
            results[evaluator.isa] = model.intensity(s1, s2)
    finally:
        evaluator.limit_isa("avx512")
    assert ("portable" in results and len(results) >= 2) or os.uname().machine != "x86_64"
    first = next(iter(results.values()))
    for values in results.values():
        np.testing.assert_array_equal(values, first)


def _evil_library(path: Path, canary: Path) -> None:
    """A shared library whose constructor writes ``canary`` when it is loaded."""
    evil = path.with_suffix(".c")
    evil.write_text(
        "#include <stdio.h>\n__attribute__((constructor)) static void boom(void)"
        f' {{ FILE *f = fopen("{canary}", "w"); if (f) fclose(f); }}\n'
    )
    subprocess.run(
        [*compiler.compiler_command(), "-shared", "-fPIC", str(evil), "-o", str(path)], check=True
    )


def test_world_writable_cache_is_never_trusted(tmp_path, embedded, monkeypatch):
    """Someone who can write the cache plants a library and a matching record: never loaded."""
    cache = tmp_path / "shared-cache"
    monkeypatch.setenv("MODELSTORE_CACHE_DIR", str(cache))
    code = (
        "from modelstore import published_model; "
        f"m = published_model('default@1.1.0', backend='native', registry={str(embedded.root)!r}); "
        "print(m.evaluator.build_status, m.evaluator.library_path, m.intensity(1.0, 3.0))"
    )
    env = {**os.environ, "MODELSTORE_CACHE_DIR": str(cache)}
    first = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    )
    library = Path(first.stdout.split()[1])
    entry = library.parent
    # the attacker's move: a library of their own and a record that matches it, in a cache
    # that everybody may write
    canary = tmp_path / "canary"
    _evil_library(library, canary)
    record = json.loads((entry / RECORD).read_text())
    record["digest"] = bytes_digest(library.read_bytes())
    (entry / RECORD).write_text(json.dumps(record))
    for folder in (cache, cache / "native", entry):
        folder.chmod(0o777)
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False
    )
    assert not canary.exists()
    assert proc.returncode == 0, proc.stderr
    status, path, value = proc.stdout.split()
    assert status == "built" and Path(path).parent != entry  # rebuilt privately, elsewhere
    assert float(value) == pytest.approx(1156.5307379422927, rel=1e-12)
    assert "writable by group or others" in proc.stderr  # the warning names the folder
    # a private cache whose entry alone was opened up is not trusted either
    cache.chmod(0o700)
    (cache / "native").chmod(0o700)
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert not canary.exists()
    assert proc.stdout.split()[0] == "built"


def test_corrupt_build_record_is_moved_aside_and_rebuilt(fresh_cache, embedded):
    model = published_model("default@1.1.0", backend="native", registry=embedded)
    record = model.evaluator.library_path.parent / RECORD
    record.write_text('{"library": "x.so", "digest": ')  # truncated
    code = (
        "from modelstore import published_model; "
        f"m = published_model('default@1.1.0', backend='native', registry={str(embedded.root)!r}); "
        "print(m.evaluator.build_status, m.intensity(1.0, 3.0))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stdout.split()[0] == "built"
    assert "unreadable build record" in proc.stderr
    json.loads(record.read_text())  # repaired


def _toy_source():
    forms = toy_forms(["mass", "width", "coupling"])
    names = sorted(str(s) for s in forms["parameter_defaults"])
    return generate_c_source(forms, names)


def test_extra_compiler_words_are_part_of_the_build_key(fresh_cache, monkeypatch):
    source = _toy_source()
    digest = bytes_digest(source.encode())
    gcc = compiler.compiler_command()[0]
    monkeypatch.setenv("MODELSTORE_CC", f"{gcc} -Wall")
    with_flags = load_or_build(digest, lambda: source)
    assert with_flags.status == "built"
    monkeypatch.setenv("MODELSTORE_CC", gcc)
    plain = load_or_build(digest, lambda: source)
    assert plain.status == "built"  # not the build made with other flags
    assert plain.library_path.parent != with_flags.library_path.parent


@pytest.mark.parametrize(
    "flag",
    ["-ffast-math", "-Ofast", "-Dsqrt=cbrt", "-funsafe-math-optimizations", "-include/tmp/x.h"],
)
def test_value_changing_compiler_flags_are_refused(fresh_cache, monkeypatch, flag):
    source = _toy_source()
    monkeypatch.setenv("MODELSTORE_CC", f"{compiler.compiler_command()[0]} {flag}")
    with pytest.raises(
        BackendUnavailableError, match=re.escape(f"$MODELSTORE_CC contains {flag!r}")
    ):
        load_or_build(bytes_digest(source.encode()), lambda: source)
    assert not list(fresh_cache.glob("*/" + RECORD))


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("MODELSTORE_NATIVE_ISA", "bogus"),
        ("MODELSTORE_NUM_THREADS", "abc"),
        ("MODELSTORE_NUM_THREADS", "0"),
        ("MODELSTORE_NUM_THREADS", "-1"),
    ],
)
def test_bad_environment_variables_give_one_line(embedded, monkeypatch, variable, value):
    from click.testing import CliRunner

    from modelstore.cli import main

    monkeypatch.setenv(variable, value)
    result = CliRunner().invoke(main, ["--registry", str(embedded.root), "build", "default@1.1.0"])
    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit)  # a ClickException, not a traceback
    assert f"${variable}={value!r}" in result.output
    assert "Traceback" not in result.output


def test_instruction_set_names_are_case_insensitive(embedded, monkeypatch):
    monkeypatch.setenv("MODELSTORE_NATIVE_ISA", "AVX2")
    model = published_model("default@1.2.0", backend="native", registry=embedded)
    assert model.evaluator.isa in ("avx2", "portable")
    model.evaluator.limit_isa("Portable")
    assert model.evaluator.isa == "portable"


def test_group_writable_cache_is_trusted_only_for_a_private_group(tmp_path, monkeypatch):
    from modelstore.store import private

    folder = tmp_path / "c"
    folder.mkdir()
    folder.chmod(0o775)
    monkeypatch.setattr(private, "_private_group", lambda gid: False)
    assert "writable by group" in private.unsafe_reason(folder)
    monkeypatch.setattr(
        private, "_private_group", lambda gid: True
    )  # umask 002 with user private groups
    assert private.unsafe_reason(folder) is None
    folder.chmod(0o777)
    assert "writable by group or others" in private.unsafe_reason(folder)
