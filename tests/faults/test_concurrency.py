"""Threat 8: concurrent publishers and concurrent native builds agree on one result."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from modelstore.registry import Registry

PUBLISHER = Path(__file__).with_name("publisher.py")


def test_eight_publishers_of_one_version(tmp_path):
    root = tmp_path / "reg"
    procs = [
        subprocess.Popen(
            [sys.executable, str(PUBLISHER), str(root), "7", "1", f"writer{k}"],
            stdout=subprocess.PIPE,
            text=True,
        )
        for k in range(8)
    ]
    results = [p.communicate()[0].split("\n", 1)[1].split()[0] for p in procs]
    assert sorted(results) == ["PublishConflictError"] * 7 + ["published"]
    registry = Registry(root)
    assert registry.index().models["default"].versions.keys() == {"1.7.0"}
    assert all(c.status == "ok" for c in registry.verify())
    assert registry.index().index_version == 1


def test_eight_identical_publishers(tmp_path):
    root = tmp_path / "reg"
    procs = [
        subprocess.Popen(
            [sys.executable, str(PUBLISHER), str(root), "3", "1", "same"],
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(8)
    ]
    results = sorted(p.communicate()[0].split("\n", 1)[1].split()[0] for p in procs)
    assert results == ["published"] + ["unchanged"] * 7
    assert all(c.status == "ok" for c in Registry(root).verify())


BUILDER = (
    "import sys; from modelstore import published_model; "
    "m = published_model('default@1.1.0', backend='native'); "
    "print(m.evaluator.build_status, repr(m.intensity(1.0, 3.0)), m.evaluator.library_path)"
)


def test_eight_processes_build_one_native_library(tmp_path, monkeypatch):
    monkeypatch.setenv("MODELSTORE_CACHE_DIR", str(tmp_path / "cache"))
    procs = [
        subprocess.Popen([sys.executable, "-c", BUILDER], stdout=subprocess.PIPE, text=True)
        for _ in range(8)
    ]
    lines = [p.communicate()[0].split() for p in procs]
    assert all(p.returncode == 0 for p in procs)
    statuses = [line[0] for line in lines]
    assert statuses.count("built") >= 1 and set(statuses) <= {"built", "cached"}
    assert len({line[1] for line in lines}) == 1  # the same value everywhere
    assert float(lines[0][1]) == pytest.approx(1156.5307379422927, rel=1e-12)
    builds = list((tmp_path / "cache" / "native").glob("*/build.json"))
    assert len(builds) == 1
    assert not list((tmp_path / "cache" / "native").glob(".build-*"))  # no half-built leftovers


def test_concurrent_first_values_build_one_unit(tmp_path, monkeypatch):
    """1.4.0 is built unit by unit: concurrent cold starts agree on one intensity unit."""
    monkeypatch.setenv("MODELSTORE_CACHE_DIR", str(tmp_path / "cache"))
    code = BUILDER.replace("default@1.1.0", "default@1.4.0")
    procs = [
        subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
        for _ in range(4)
    ]
    lines = [p.communicate()[0].split() for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert [line[0] for line in lines].count("built") >= 1
    assert len({line[1] for line in lines}) == 1
    assert float(lines[0][1]) == pytest.approx(1156.5307379422927, rel=1e-12)
    assert len({line[2] for line in lines}) == 1  # one library
    native = tmp_path / "cache" / "native"
    (record,) = list(native.glob("*/build.json"))
    assert '"entry": "intensity"' in record.read_text()
    assert not list(native.glob(".build-*"))
