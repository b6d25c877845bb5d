"""The core commands through click's CliRunner: list, show, get, verify, build, publish."""

from __future__ import annotations

import json
import pickle

import pytest
from click.testing import CliRunner

from modelstore.cli import main
from modelstore.publish.catalog import LHCB_MODELS
from modelstore.registry import blob_path, manifest_path


def run(*args, registry=None):
    prefix = ["--registry", str(registry.root)] if registry is not None else []
    return CliRunner().invoke(main, [*prefix, *args], catch_exceptions=False)


def test_list_shows_all_18_models():
    result = run("list")
    assert result.exit_code == 0
    lines = result.output.strip().splitlines()
    assert len(lines) == 18
    for line, entry in zip(lines, sorted(LHCB_MODELS, key=lambda e: e.model_id), strict=False):
        assert line.split()[0] == entry.model_id
        assert (
            "1.0.0" in line
            and "1.1.0" in line
            and "1.2.0" in line
            and "1.3.0" in line
            and "1.4.0" in line
            and entry.title in line
        )


@pytest.mark.parametrize("ref", ["default", "default@1.4.0", "Default amplitude model", "0"])
def test_show_resolves_ids_titles_and_indices(ref):
    result = run("show", ref)
    assert result.exit_code == 0, result.output
    assert result.output.startswith("default@1.4.0  Default amplitude model")
    assert "intensity.c" in result.output and "m0 = 2.28646" in result.output


def test_show_json_is_the_manifest(embedded):
    result = run("show", "k892-free@1.0.0", "--json")
    assert json.loads(result.output) == json.loads(
        (embedded.root / manifest_path("k892-free", "1.0.0")).read_bytes()
    )


@pytest.mark.parametrize("ref", ["nope", "default@9.9.9", "../default", "default@1.0"])
def test_bad_references_give_one_line_and_exit_1(ref):
    result = CliRunner().invoke(main, ["show", ref])
    assert result.exit_code == 1
    assert result.output.startswith("Error: ") and len(result.output.strip().splitlines()) == 1
    assert "Traceback" not in result.output


def test_get_writes_verified_files(tmp_path, embedded):
    result = run("get", "default@1.1.0", "-o", str(tmp_path / "out"))
    assert result.exit_code == 0
    written = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert written == [
        "intensity.c",
        "intensity.srepr",
        "manifest.json",
        "model.pkl",
        "reference.zarr.zip",
    ]
    assert result.output.count(str(tmp_path / "out")) == 5
    forms = pickle.loads((tmp_path / "out" / "model.pkl").read_bytes())
    assert set(forms) == {"intensity_expr", "variables", "parameter_defaults", "sigma3"}


def test_get_one_format(tmp_path):
    result = run("get", "default", "-o", str(tmp_path), "--format", "c")
    assert result.exit_code == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["intensity.c", "manifest.json"]


def test_get_self_contained_formats(tmp_path):
    result = run(
        "get", "default@1.3.0", "-o", str(tmp_path / "a"), "--format", "srepr", "--format", "python"
    )
    assert result.exit_code == 0, result.output
    written = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert written == ["intensity.srepr", "intensity_array.py", "kinematics.srepr", "manifest.json"]
    # 1.4.0 adds the polarimetry forms' text twin
    result = run("get", "default@1.4.0", "-o", str(tmp_path / "c"), "--format", "srepr")
    assert result.exit_code == 0, result.output
    written = sorted(p.name for p in (tmp_path / "c").iterdir())
    assert written == ["intensity.srepr", "kinematics.srepr", "manifest.json", "polarimetry.srepr"]
    # 1.2.0 has the intensity's srepr but no kinematics file and no array program
    result = run("get", "default@1.2.0", "-o", str(tmp_path / "b"), "--format", "srepr")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "b").iterdir()) == [
        "intensity.srepr",
        "manifest.json",
    ]
    result = run("get", "default@1.2.0", "-o", str(tmp_path / "c"), "--format", "python")
    assert result.exit_code != 0 and "no python format" in result.output


def test_get_refuses_tampered_blob_and_writes_nothing(tmp_path, small_registry):
    manifest = small_registry.manifest("default@1.1.0")
    path = small_registry.root / blob_path(manifest.file("intensity-srepr").digest)
    path.write_bytes(path.read_bytes()[:-1] + b"X")
    result = run("get", "default@1.1.0", "-o", str(tmp_path / "out"), registry=small_registry)
    assert result.exit_code == 1
    assert "intensity.srepr" in result.output and "digest mismatch" in result.output
    assert not (tmp_path / "out").exists()


def test_verify_exit_codes(small_registry, tmp_path):
    ok = run("verify", registry=small_registry)
    assert ok.exit_code == 0
    assert "failed" in ok.output.splitlines()[-1] and " 0 failed" in ok.output
    manifest = small_registry.manifest("default@1.1.0")
    path = small_registry.root / blob_path(manifest.file("native-source").digest)
    data = bytearray(path.read_bytes())
    data[10] ^= 0xFF
    path.write_bytes(bytes(data))
    bad = run("verify", registry=small_registry)
    assert bad.exit_code == 1
    assert "MISMATCH" in bad.output and "intensity.c" in bad.output
    # 1.0.0 has no C source, and shares every other blob with 1.1.0: it still verifies
    assert run("verify", "default@1.0.0", registry=small_registry).exit_code == 0
    path.unlink()
    missing = run("verify", "default@1.1.0", registry=small_registry)
    assert missing.exit_code == 1 and "MISSING" in missing.output
    # a corrupt index is a failed check; a registry with nothing to check could not be checked
    (small_registry.root / "manifests" / "index.json").write_text("{not json")
    assert (
        CliRunner().invoke(main, ["--registry", str(small_registry.root), "verify"]).exit_code == 1
    )
    empty = CliRunner().invoke(main, ["--registry", str(tmp_path / "nothing-here"), "verify"])
    assert empty.exit_code == 2


def test_build_ahead_of_time(tmp_path, monkeypatch):
    monkeypatch.setenv("MODELSTORE_CACHE_DIR", str(tmp_path))
    result = run("build", "default", "k892-free@1.0.0")
    assert result.exit_code == 0
    lines = result.output.strip().splitlines()
    assert lines[0].startswith("built") and "default@1.4.0" in lines[0]
    assert lines[1].startswith("skipped") and "no native source" in lines[1]
    assert run("build", "default").output.startswith("cached")
    # both entry points of 1.4.0 are built ahead of time (for this processor's instruction set)
    entries = [
        json.loads(p.read_text())["unit"]["entry"] for p in tmp_path.glob("native/*/build.json")
    ]
    assert sorted(entries) == ["intensity", "polarimetry"]


@pytest.mark.upstream
def test_publish_a_catalog_model_then_verify(tmp_path):
    """The catalog through the CLI, once: an upstream build takes about a minute, so "unchanged"
    on a second publish is tested on the generic path (tests/publish/test_publish_forms.py), and
    C generation on its own (--no-native here)."""
    registry_dir = tmp_path / "reg"
    publish = ["--registry", str(registry_dir), "publish", "--no-native"]
    first = CliRunner().invoke(main, [*publish, "default", "--version", "1.0.0"])
    assert first.exit_code == 0, first.output
    assert first.output.startswith("published  default@1.0.0")
    verify = CliRunner().invoke(main, ["--registry", str(registry_dir), "verify"])
    assert verify.exit_code == 0
    bad = CliRunner().invoke(main, [*publish, "nope", "--version", "1.0.0"])
    assert bad.exit_code != 0 and "unknown upstream model" in bad.output
