"""A version's native library built unit by unit (issue 20): what a cold start compiles,
that units give the whole file's bits, instruction-set limits, fallbacks and the cache's checks."""

from __future__ import annotations

import hashlib
import json
import os
import sys
import sysconfig

import cffi
import numpy as np
import pytest

from modelstore import published_model
from modelstore._native import build as build_module
from modelstore._native import library, units
from modelstore._native.build import RECORD, build_key, load_or_build
from modelstore._native.compiler import CFLAGS, LDFLAGS, compiler_command
from modelstore._native.evaluator import NativeEvaluator
from modelstore._native.library import SplitLibrary, WholeLibrary, cpu_level
from modelstore._native.units import ISAS, Unit
from modelstore.dalitz.kinematics import sample_dalitz
from modelstore.store.hashing import bytes_digest

X86 = os.uname().machine in {"x86_64", "amd64"}


@pytest.fixture
def fresh_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MODELSTORE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("MODELSTORE_NATIVE_ISA", raising=False)
    return tmp_path / "cache" / "native"


@pytest.fixture
def compiled(monkeypatch):
    """The C text of every compile in the test, in order."""
    texts: list[str] = []
    original = build_module._compile

    def spy(source, key, workdir, unit=None, cdef=None):
        texts.append(source)
        return original(source, key, workdir, unit, cdef)

    monkeypatch.setattr(build_module, "_compile", spy)
    return texts


def records(cache) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(cache.glob(f"*/{RECORD}"))]


def block_definitions(text: str) -> set[str]:
    """The block functions a C text defines (a forwarder is one line: ``{ target(...); }``)."""
    names = set()
    for line_no, line in enumerate(lines := text.splitlines()):
        if line.startswith("static void ms_") and "block" in line:
            following = lines[line_no + 1] if "{" not in line else line
            if not following.startswith("{ "):  # not a one-line forwarder
                names.add(line.split("(")[0].removeprefix("static void "))
    return names


def this_isa() -> str:
    level = cpu_level()
    assert level is not None
    return ISAS[level]


def test_a_cold_first_value_compiles_one_instruction_set_and_no_polarimetry(
    fresh_cache, embedded, compiled
):
    model = published_model("default", version="1.4.0", backend="native", registry=embedded)
    assert model.intensity(1.0, 3.0) == pytest.approx(1156.5307379422927, rel=1e-12)
    assert len(compiled) == 1
    isa = this_isa()
    names = {"avx512": "ms_block_avx512", "avx2": "ms_block_avx2", "portable": "ms_block"}
    assert block_definitions(compiled[0]) == {names[isa]}
    assert "ms_polarimetry" not in compiled[0]
    (record,) = records(fresh_cache)
    assert record["unit"]["entry"] == "intensity"
    assert record["unit"]["isa"] == isa == model.evaluator.isa
    assert record["unit"]["functions"] == [names[isa]]
    assert record["unit"]["c_digest"] == bytes_digest(compiled[0].encode())
    # α⃗ compiles the polarimetry unit, and only that, on first use
    model.polarimeter(1.0, 3.0)
    assert len(compiled) == 2
    assert block_definitions(compiled[1]) == {names[isa].replace("ms_", "ms_polarimetry_")}
    assert "void ms_evaluate(" not in compiled[1]
    assert sorted(r["unit"]["entry"] for r in records(fresh_cache)) == [
        "intensity",
        "polarimetry",
    ]


def test_a_second_load_finds_the_unit_in_the_cache(fresh_cache, embedded, compiled):
    first = published_model("default", version="1.4.0", backend="native", registry=embedded)
    assert first.evaluator.build_status == "built"
    second = published_model("default", version="1.4.0", backend="native", registry=embedded)
    assert second.evaluator.build_status == "cached"
    assert len(compiled) == 1


def points(model, n: int = 20_000) -> tuple[np.ndarray, np.ndarray]:
    """Reference points, points inside the Dalitz region and a box around it (NaN outside)."""
    p = model.parameters
    s1_in, s2_in = sample_dalitz(n, p["m0"], p["m1"], p["m2"], p["m3"], seed=4)
    rng = np.random.default_rng(4)
    reference = model.reference()
    return (
        np.concatenate([reference["sigma1"], s1_in, rng.uniform(0.0, 2.5, n)]),
        np.concatenate([reference["sigma2"], s2_in, rng.uniform(1.0, 5.5, n)]),
    )


def assert_same_bits(split, whole, s1, s2, values, polarimetry: bool) -> set[str]:
    """The unit-built and the whole-file evaluator agree bit for bit at every instruction set
    this processor has (α⃗ too with ``polarimetry``); the instruction sets seen."""
    seen = set()
    for isa in ("avx512", "avx2", "portable"):
        split.limit_isa(isa)
        whole.limit_isa(isa)
        assert split.isa == whole.isa
        seen.add(split.isa)
        a, b = split(s1, s2, values), whole(s1, s2, values)
        assert np.isnan(a).any() and (~np.isnan(a)).any()
        np.testing.assert_array_equal(a, b)
        if polarimetry:
            np.testing.assert_array_equal(
                split.polarimetry(s1, s2, values), whole.polarimetry(s1, s2, values)
            )
    assert seen == set(ISAS[: (cpu_level() or 0) + 1])
    return seen


@pytest.mark.parametrize("version", ["1.2.0", "1.4.0"])
def test_units_give_the_whole_files_bits_at_every_instruction_set(
    fresh_cache, embedded, version, monkeypatch
):
    model = published_model("default", version=version, backend="native", registry=embedded)
    split = model.evaluator
    assert isinstance(split._library, SplitLibrary)
    entry = model.manifest.file("native-source")
    whole_build = load_or_build(
        entry.digest, lambda: embedded.read_file(model.manifest, "native-source").decode()
    )
    whole = NativeEvaluator(
        whole_build.module, whole_build.library_path, whole_build.status, model.manifest.parameters
    )
    assert "unit" not in json.loads((whole.library_path.parent / RECORD).read_text())
    s1, s2 = points(model)
    seen = assert_same_bits(split, whole, s1, s2, model.parameters, version == "1.4.0")
    built = {(r["unit"]["entry"], r["unit"]["isa"]) for r in records(fresh_cache) if "unit" in r}
    entries = ("intensity", "polarimetry") if version == "1.4.0" else ("intensity",)
    assert built == {(e, isa) for e in entries for isa in seen}


def test_a_new_version_of_another_decay_is_built_unit_by_unit(
    fresh_cache, tmp_path, compiled, monkeypatch
):
    """Published at the latest lowering (its own header and schedule), then loaded where it was
    not published (another cache): one unit, the whole file's bits at every instruction set."""
    from registry_helpers import new_registry
    from toy_models import toy_forms

    from modelstore.publish.generic import publish_forms

    registry = new_registry(tmp_path / "registry")
    publish_forms(toy_forms(), "toy", "1.0.0", registry=registry)
    monkeypatch.setenv("MODELSTORE_CACHE_DIR", str(tmp_path / "elsewhere"))
    compiled.clear()  # the publish-time gate built the whole file into the first cache
    model = published_model("toy", backend="native", registry=registry)
    split = model.evaluator
    assert isinstance(split._library, SplitLibrary)
    assert len(compiled) == 1 and "ms_evaluate_polarimetry" not in compiled[0]
    names = {"avx512": "ms_block_avx512", "avx2": "ms_block_avx2", "portable": "ms_block"}
    assert block_definitions(compiled[0]) == {names[this_isa()]}
    entry = model.manifest.file("native-source")
    built = load_or_build(
        entry.digest, lambda: registry.read_file(model.manifest, "native-source").decode()
    )
    parameters = model.manifest.parameters
    whole = NativeEvaluator(built.module, built.library_path, built.status, parameters)
    s1, s2 = points(model)
    assert_same_bits(split, whole, s1, s2, model.parameters, polarimetry=False)


def test_an_lhcb_source_of_the_latest_lowering_is_cut_into_units_with_the_whole_files_bits(
    fresh_cache, embedded
):
    """A new LHCb version (native ABI 4: polarimetry too) at the latest lowering."""
    from modelstore._native.emitter import LATEST_LOWERING
    from modelstore._native.source import generate_c_source
    from modelstore.store.hashing import bytes_digest

    model = published_model("default", version="1.4.0", backend="numpy", registry=embedded)
    names = [p.name for p in model.manifest.parameters]
    source = generate_c_source(model.load_forms("pickle"), names, LATEST_LOWERING)
    digest = bytes_digest(source.encode())
    parameters = model.manifest.parameters
    split = NativeEvaluator(
        None, None, "", parameters, library=library.open_library(digest, lambda: source)
    )
    assert isinstance(split._library, SplitLibrary)
    built = load_or_build(digest, lambda: source)
    whole = NativeEvaluator(built.module, built.library_path, built.status, parameters)
    s1, s2 = points(model, 5_000)
    values = model.parameters
    assert_same_bits(split, whole, s1, s2, values, polarimetry=True)
    expected = model.intensity(s1, s2)
    got = whole(s1, s2, values)
    assert np.array_equal(np.isnan(got), np.isnan(expected))
    ok = ~np.isnan(expected)
    np.testing.assert_allclose(got[ok], expected[ok], rtol=1e-12)


def test_the_isa_limit_picks_the_first_unit_and_others_are_built_when_asked(
    fresh_cache, embedded, compiled, monkeypatch
):
    if not X86 or (cpu_level() or 0) < 1:
        pytest.skip("needs an x86-64 processor with AVX2")
    monkeypatch.setenv("MODELSTORE_NATIVE_ISA", "avx2")
    model = published_model("default", version="1.2.0", backend="native", registry=embedded)
    assert model.evaluator.isa == "avx2"
    assert [r["unit"]["isa"] for r in records(fresh_cache)] == ["avx2"]
    reference = model.intensity(1.0, 3.0)
    model.evaluator.limit_isa("portable")
    assert model.evaluator.isa == "portable"
    assert len(compiled) == 1  # nothing built until a value is asked for
    assert model.intensity(1.0, 3.0) == reference
    assert sorted(r["unit"]["isa"] for r in records(fresh_cache)) == ["avx2", "portable"]


def test_a_wrong_guess_of_the_processor_is_corrected_by_ms_isa(
    fresh_cache, embedded, compiled, monkeypatch
):
    if not X86 or (cpu_level() or 0) < 1:
        pytest.skip("needs an x86-64 processor with AVX2")
    monkeypatch.setattr(library, "cpu_level", lambda: 0)  # guess: portable only
    model = published_model("default", version="1.2.0", backend="native", registry=embedded)
    isa = this_isa()
    assert model.evaluator.isa == isa  # what the library's own ms_isa() says
    assert set(model.evaluator._library.units) == {("intensity", isa)}
    assert [block_definitions(t) for t in compiled] == [
        {"ms_block"},
        {"ms_block_avx512" if isa == "avx512" else "ms_block_avx2"},
    ]
    assert model.intensity(1.0, 3.0) == pytest.approx(1156.5307379422927, rel=1e-12)


def test_a_source_that_is_not_cut_is_built_whole(fresh_cache, embedded, compiled):
    model = published_model("default", version="1.1.0", backend="native", registry=embedded)
    assert isinstance(model.evaluator._library, WholeLibrary)
    (record,) = records(fresh_cache)
    assert "unit" not in record
    assert model.intensity(1.0, 3.0) == pytest.approx(1156.5307379422927, rel=1e-12)


def test_a_cached_whole_build_is_used_as_it_is(fresh_cache, embedded, compiled):
    manifest = embedded.manifest("default@1.2.0")
    entry = manifest.file("native-source")
    load_or_build(entry.digest, lambda: embedded.read_file(manifest, "native-source").decode())
    native = published_model("default", version="1.2.0", backend="native", registry=embedded)
    assert isinstance(native.evaluator._library, WholeLibrary)
    assert native.evaluator.build_status == "cached"
    assert len(compiled) == 1


def test_a_replaced_unit_library_is_never_loaded(fresh_cache, embedded):
    model = published_model("default", version="1.2.0", backend="native", registry=embedded)
    library_path = model.evaluator.library_path
    library_path.write_bytes(library_path.read_bytes() + b"\0")  # no longer the recorded bytes
    again = published_model("default", version="1.2.0", backend="native", registry=embedded)
    with pytest.warns(UserWarning, match="digest mismatch"):
        status = again.evaluator.build_status
    assert status == "built"
    assert again.intensity(1.0, 3.0) == pytest.approx(1156.5307379422927, rel=1e-12)


def test_a_cold_build_prints_one_progress_line_on_a_terminal(
    fresh_cache, embedded, capsys, monkeypatch
):
    monkeypatch.setenv("MODELSTORE_PROGRESS", "1")
    published_model("default", version="1.2.0", backend="native", registry=embedded).intensity(
        1.0, 3.0
    )
    lines = capsys.readouterr().err.splitlines()
    what = f"compiling the native evaluator of default@1.2.0 (intensity, {this_isa()} code)"
    assert lines == [f"{what} ...", f"{what}: done"]
    monkeypatch.setenv("MODELSTORE_PROGRESS", "0")
    monkeypatch.setenv("MODELSTORE_NATIVE_ISA", "portable")
    model = published_model("default", version="1.2.0", backend="native", registry=embedded)
    assert model.evaluator.build_status == "built"
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize(
    ("flags", "level"),
    [("fpu sse2 avx avx2 avx512f avx512dq", 2), ("fpu sse2 avx avx2", 1), ("fpu sse2", 0)],
)
def test_cpu_level_reads_the_flags_linux_reports(tmp_path, monkeypatch, flags, level):
    monkeypatch.setattr(library.platform, "machine", lambda: "x86_64")
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(f"processor\t: 0\nmodel name\t: x\nflags\t\t: {flags}\n\n")
    assert cpu_level(str(cpuinfo)) == level
    assert cpu_level(str(tmp_path / "missing")) is None  # cannot tell: the whole file is built
    monkeypatch.setattr(library.platform, "machine", lambda: "aarch64")
    assert cpu_level(str(tmp_path / "missing")) == 0  # portable code only off x86-64


def test_every_unit_has_its_own_build_key_and_the_whole_file_keeps_its_own():
    digest, compiler = "sha256:" + "0" * 64, "cc 1.0"
    keys = {build_key(digest, compiler, Unit(e, i)) for e in units.ENTRIES for i in ISAS}
    keys.add(build_key(digest, compiler))
    assert len(keys) == 2 * len(ISAS) + 1
    # the whole file's key is the one it had before units: its cached builds stay valid
    parts = {
        "source": digest,
        "compiler": compiler,
        "command": compiler_command(),
        "cflags": list(CFLAGS),
        "ldflags": list(LDFLAGS),
        "python": sys.implementation.cache_tag,
        "ext_suffix": sysconfig.get_config_var("EXT_SUFFIX"),
        "platform": sysconfig.get_platform(),
        "cffi": cffi.__version__,
    }
    old = hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()
    assert build_key(digest, compiler) == old
