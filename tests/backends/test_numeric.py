"""``verify --numeric``: stored reference values re-evaluated with every backend."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from event_samples import REF, fast_backend

from modelstore import published_model
from modelstore.backends.numeric import (
    RTOL,
    compare_reference,
    refs_verified,
    summarize,
    verify_numeric,
)
from modelstore.cli import main
from modelstore.format.manifest import FileEntry
from modelstore.format.reference import write_reference
from modelstore.registry import FileCheck, Registry
from modelstore.trust.own_key import own_signing_key


def test_compare_reference_rules() -> None:
    stored = np.array([1.0, 2.0, np.nan, 0.0, 4.0])
    same = compare_reference(stored, stored.copy())
    assert same.within(RTOL) and same.max_deviation == 0 and same.outside == 1 and same.points == 5

    off = compare_reference(stored, stored * np.array([1, 1 + 3e-9, 1, 1, 1]))
    assert not off.within(RTOL)
    assert off.worst == 1 and off.max_deviation == pytest.approx(3e-9)
    assert compare_reference(stored, stored * (1 + 5e-10)).within(RTOL)

    # a stored zero is compared absolutely
    zero = compare_reference(stored, np.array([1.0, 2.0, np.nan, 1e-12, 4.0]))
    assert zero.max_deviation == pytest.approx(1e-12)

    # NaN must be exactly where it is stored, in both directions
    extra = compare_reference(stored, np.array([1.0, np.nan, np.nan, 0.0, 4.0]))
    assert extra.nan_mismatches == 1 and extra.first_nan_mismatch == 1 and not extra.within(RTOL)
    missing = compare_reference(stored, np.array([1.0, 2.0, 7.0, 0.0, 4.0]))
    assert missing.nan_mismatches == 1 and not missing.within(1.0)

    inf = compare_reference(stored, np.array([1.0, 2.0, np.nan, 0.0, np.inf]))
    assert inf.max_deviation == np.inf

    with pytest.raises(ValueError, match="shapes"):
        compare_reference(stored, stored[:2])


def test_published_version_passes(embedded: Registry) -> None:
    backend = fast_backend()
    (check,) = verify_numeric(embedded, [REF], backends=[backend])
    assert (check.model, check.backend, check.status, check.name) == (
        REF,
        backend,
        "ok",
        f"numeric/{backend}",
    )
    assert 0 <= check.max_deviation < RTOL
    assert "NaN at the 221 stored as NaN" in check.detail


def tampered_registry(embedded: Registry, root: Path, change: str) -> Registry:
    """A registry with a copy of REF as ``default@9.0.0`` whose reference values were changed."""
    manifest = embedded.manifest(REF)
    blobs = {f.role: embedded.read_file(manifest, f.role, copy_only=True) for f in manifest.files}
    arrays = published_model(REF, registry=embedded).reference()
    inside = np.flatnonzero(~np.isnan(arrays["intensity"]))
    intensity = arrays["intensity"].copy()
    if change == "value":
        intensity[inside[10]] *= 1 + 1e-6
    else:
        intensity[inside[3]] = np.nan
    blobs["reference-values"] = write_reference(
        {**arrays, "intensity": intensity}, {"tampered": change}
    )
    files = tuple(
        FileEntry.for_bytes(f.role, blobs[f.role]) if f.role == "reference-values" else f
        for f in manifest.files
    )
    registry = Registry(root)
    changed = dataclasses.replace(manifest, version="9.0.0", files=files)
    registry.publish(changed, blobs, [own_signing_key()])  # signed, as `modelstore publish` does
    return registry


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ("value", "max rel. deviation 1.00e-06 > tolerance 1e-09 at σ1="),
        ("nan", "NaN at other points than stored: 1 differ, first at σ1="),
    ],
)
def test_changed_reference_fails(
    embedded: Registry, tmp_path: Path, change: str, fragment: str
) -> None:
    registry = tampered_registry(embedded, tmp_path / "registry", change)
    backend = fast_backend()
    (check,) = verify_numeric(registry, ["default@9.0.0"], backends=[backend])
    assert check.status == "mismatch"
    assert fragment in check.detail
    if change == "value":
        assert check.max_deviation == pytest.approx(1e-6, rel=1e-3)


def test_unavailable_backend_is_not_checked(embedded: Registry) -> None:
    (check,) = verify_numeric(
        embedded, ["default@1.0.0"], backends=["native"]
    )  # 1.0.0 has no C source
    assert check.status == "error"
    assert check.detail


def test_refs_verified_and_summary() -> None:
    checks = [
        FileCheck("index", "index.json", "ok"),
        FileCheck("a@1.0.0", "manifest.json", "ok"),
        FileCheck("a@1.0.0", "model.pkl", "ok"),
        FileCheck("b@1.0.0", "manifest.json", "ok"),
        FileCheck("b@1.0.0", "model.pkl", "mismatch"),
    ]
    assert refs_verified(checks) == ["a@1.0.0"]
    from modelstore.backends.numeric import NumericCheck

    lines = summarize(
        [
            NumericCheck("a@1.0.0", "jax", "ok", 2e-15),
            NumericCheck("b@1.0.0", "jax", "mismatch", 3e-6),
            NumericCheck("b@1.0.0", "numpy", "error", float("nan")),
        ]
    )
    assert lines == [  # an error counts as not passed, and adds no deviation
        (
            "numeric jax: largest relative deviation 3.00e-06 over 2 versions"
            " (tolerance 1e-09; 1 not passed)"
        ),
        (
            "numeric numpy: largest relative deviation 0.00e+00 over 1 versions"
            " (tolerance 1e-09; 1 not passed)"
        ),
    ]


@pytest.fixture
def one_backend(monkeypatch: pytest.MonkeyPatch) -> str:
    """Limit the CLI's numeric checks to the quickest backend (all backends: the slow test)."""
    backend = fast_backend()
    monkeypatch.setattr("modelstore.backends.available_backends", lambda model: [backend])
    return backend


def test_cli_numeric_ok(one_backend: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MODELSTORE_PROGRESS", raising=False)
    result = CliRunner().invoke(main, ["verify", "--numeric", REF])
    assert result.exit_code == 0, result.output
    assert f"numeric/{one_backend}" in result.output
    assert f"numeric {one_backend}: largest relative deviation" in result.output
    assert "0 failed, 0 not checked" in result.output
    assert result.stderr == ""  # every check ok, not a terminal: no progress either
    monkeypatch.setenv("MODELSTORE_PROGRESS", "1")
    result = CliRunner().invoke(main, ["verify", "--numeric", REF])
    assert result.exit_code == 0, result.output
    assert "numeric check" in result.stderr and "/1 [" in result.stderr  # one version


def test_cli_numeric_mismatch_exits_1(embedded: Registry, tmp_path: Path, one_backend: str) -> None:
    registry = tampered_registry(embedded, tmp_path / "registry", "value")
    result = CliRunner().invoke(
        main, ["--registry", str(registry.root), "verify", "--numeric", "-q"]
    )
    assert result.exit_code == 1, result.output
    assert "MISMATCH" in result.output and f"numeric/{one_backend}" in result.output
    assert "1 failed" in result.output
    # without --numeric the files themselves verify: the digest check cannot see this
    assert (
        CliRunner().invoke(main, ["--registry", str(registry.root), "verify", "-q"]).exit_code == 0
    )


@pytest.mark.slow
def test_cli_numeric_every_version_every_backend() -> None:
    """What CI runs: every published version with every available backend."""
    result = CliRunner().invoke(main, ["verify", "--numeric", "-q"])
    assert result.exit_code == 0, result.output
    assert "numeric numpy: largest relative deviation" in result.output
