"""Units cut from a version's C source: the strict parser and what a unit holds (issue 20)."""

from __future__ import annotations

import re

import pytest

from modelstore import published_model
from modelstore._native import units
from modelstore._native.units import ISAS, Unit, compose, parse
from modelstore.errors import InvalidInputError

# The three block functions of each entry point, as the generator defines them.
DEFINITIONS = {
    "intensity": {
        "avx512": "static void ms_block_avx512(const double *restrict s1, const double *restrict"
        " s2,\n                            double *restrict out",
        "avx2": "static void ms_block_avx2(const double *restrict s1, const double *restrict"
        " s2,\n                          double *restrict out",
        "portable": "static void ms_block(const double *restrict s1, const double *restrict"
        " s2,\n                     double *restrict out",
    },
    "polarimetry": {
        "avx512": "static void ms_polarimetry_block_avx512(const double *restrict s1, const"
        " double *restrict s2,\n",
        "avx2": "static void ms_polarimetry_block_avx2(const double *restrict s1, const double"
        " *restrict s2,\n",
        "portable": "static void ms_polarimetry_block(const double *restrict s1, const double"
        " *restrict s2,\n",
    },
}


def source_of(embedded, version: str) -> str:
    model = published_model("default", version=version, registry=embedded)
    return embedded.read_file(model.manifest, "native-source").decode("utf-8")


@pytest.fixture(scope="module")
def sources(embedded) -> dict[str, str]:
    return {v: source_of(embedded, v) for v in ("1.1.0", "1.2.0", "1.4.0")}


def test_published_sources_are_recognised_and_their_parts_give_them_back(sources):
    for version, abi, entries in (("1.2.0", 3, ("intensity",)), ("1.4.0", 4, units.ENTRIES)):
        parts = parse(sources[version])
        assert parts is not None, version
        assert parts.abi == abi and parts.entries == entries
        assert "".join(parts.parts.values()) == sources[version]


def test_an_abi_2_source_is_not_cut(sources):
    assert parse(sources["1.1.0"]) is None  # built whole, as before


def _body_of(part: str) -> str:
    return part[part.index("{\n") + 2 : part.rindex("}")]


def _mutations(source: str) -> dict[str, str]:
    parts = parse(source)
    assert parts is not None
    p = parts.parts
    body = _body_of(p["i_avx2"])
    line = body.splitlines(keepends=True)[-3]
    return {
        # a preprocessor line in a block that a unit leaves out would change what follows
        "define in a left-out block": source.replace(
            p["i_avx2"], p["i_avx2"].replace(line, "    #define sqrt cbrt\n" + line)
        ),
        "column-0 define": source.replace(p["i_avx2"], p["i_avx2"] + "#define ms_isa_limit 0\n"),
        "comment opened in a block": source.replace(
            p["i_avx2"], p["i_avx2"].replace(line, "    /*\n" + line)
        ),
        "line comment in a block": source.replace(line, line.rstrip("\n") + " // x\n", 1),
        "bodies differ": source.replace(
            p["i_avx2"], p["i_avx2"].replace(line, line.replace(";", " + 0.0;", 1))
        ),
        "blocks swapped": source.replace(p["i_avx512"] + p["i_avx2"], p["i_avx2"] + p["i_avx512"]),
        "string literal in a block": source.replace(
            p["i_avx2"], p["i_avx2"].replace(line, '    (void)"x";\n' + line)
        ),
        "line continuation": source.replace(line, line.rstrip("\n") + " \\\n", 1),
        "trailing text": source + "int x;\n",
        "crlf": source.replace("\n", "\r\n"),
        "abi mismatch": source.replace(
            "int ms_abi(void) { return 4; }", "int ms_abi(void) { return 3; }"
        ),
        "no polarimetry after abi 4": source[: source.index("\n/* Polarimetry")],
        "polarimetry block dropped": source.replace(p["p_avx2"], ""),
        "extra function": source.replace(p["isa"], p["isa"] + "static int z(void) { return 0; }\n"),
    }


def test_anything_but_the_generated_structure_is_refused(sources):
    for name, mutated in _mutations(sources["1.4.0"]).items():
        assert mutated != sources["1.4.0"], name
        assert parse(mutated) is None, name


def test_a_freshly_generated_intensity_source_is_recognised_at_every_lowering():
    from toy_models import toy_forms

    from modelstore._native.emitter import LOWERINGS
    from modelstore._native.source import generate_c_source

    forms = toy_forms()
    for lowering in LOWERINGS:  # a new version (the latest lowering) is built unit by unit too
        source = generate_c_source(
            forms, sorted(str(s) for s in forms["parameter_defaults"]), lowering
        )
        parts = parse(source)
        assert parts is not None and parts.entries == ("intensity",), lowering
        assert "".join(parts.parts.values()) == source
        # a header line of another lowering's words is not ours
        other = source.replace("fewer roots and divisions", "fewer roots", 1)
        assert other == source or parse(other) is None


def _defined(text: str) -> dict[str, set[str]]:
    return {
        entry: {isa for isa, head in heads.items() if head in text}
        for entry, heads in DEFINITIONS.items()
    }


def _without_forwarders(text: str) -> str:
    start = text.index(units.STUBS_NOTE)
    return text[:start] + text[text.index("\n\n", start) + 2 :]


def test_a_unit_holds_its_entry_point_at_its_instruction_set_only(sources):
    parts = parse(sources["1.4.0"])
    assert parts is not None
    for isa in ISAS:
        intensity = compose(parts, Unit("intensity", isa))
        assert _defined(intensity) == {"intensity": {isa}, "polarimetry": set()}
        assert "ms_polarimetry" not in intensity
        polarimetry = compose(parts, Unit("polarimetry", isa))
        assert _defined(polarimetry) == {"intensity": set(), "polarimetry": {isa}}
        assert "void ms_evaluate(" not in polarimetry
    # apart from the forwarders, a unit is whole parts of the verified file, in its order
    p = parts.parts
    assert _without_forwarders(compose(parts, Unit("intensity", "avx512"))) == "".join(
        p[n] for n in ("head", "x86_open", "i_avx512", "x86_close", "isa", "evaluate")
    )
    assert _without_forwarders(compose(parts, Unit("intensity", "portable"))) == "".join(
        p[n] for n in ("head", "x86_open", "x86_close", "i_portable", "isa", "evaluate")
    )
    names = ("head", "x86_open", "x86_close", "isa", "p_head", "p_x86_open", "p_avx2")
    assert _without_forwarders(compose(parts, Unit("polarimetry", "avx2"))) == "".join(
        p[n] for n in (*names, "p_x86_close", "p_evaluate")
    )


def test_forwarders_call_the_kept_block_function(sources):
    parts = parse(sources["1.2.0"])
    assert parts is not None
    text = compose(parts, Unit("intensity", "avx2"))
    stubs = text[text.index(units.STUBS_NOTE) :].split("\n\n")[0]
    assert re.findall(r"static void (\w+)\(", stubs) == ["ms_block_avx512", "ms_block"]
    assert stubs.count("{ ms_block_avx2(s1, s2, out, m, st); }") == 2
    assert "#ifdef MS_X86_DISPATCH\n" in stubs  # the AVX-512 name exists only for x86 dispatch


def test_an_intensity_only_source_has_no_polarimetry_unit(sources):
    parts = parse(sources["1.2.0"])
    assert parts is not None
    with pytest.raises(InvalidInputError, match="no polarimetry entry point"):
        compose(parts, Unit("polarimetry", "avx512"))
    with pytest.raises(InvalidInputError, match="no such unit"):
        Unit("intensity", "sse2")
