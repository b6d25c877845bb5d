"""Threat 20: a registry nobody vouched for never has its code run (C, pickle, array program).

An "unsigned folder" here is what an attacker hands over: a copy of the embedded registry in
which one file was replaced and its manifest and index re-hashed. Its digests all match; only a
signature by a trusted key, or the user naming the folder trusted, lets its code run.
"""

from __future__ import annotations

import os
import stat
import warnings
from pathlib import Path

import pytest
from click.testing import CliRunner
from registry_helpers import copy_registry
from event_samples import SEED_SIGMA1, SEED_SIGMA2, write_input
from registry_helpers import republish

from modelstore import Registry, SignatureError, UntrustedCodeError, published_model
from modelstore.backends import available_backends
from modelstore.cli import main
from modelstore.registry import SIGNATURE_PATH
from modelstore.trust.own_key import own_key_paths, own_signing_key

SEED_VALUE = 1156.5307379422927  # default at σ1 = 1.0, σ2 = 3.0 (the README's first value)
CONSTRUCTOR = """
#include <stdio.h>
__attribute__((constructor)) static void modelstore_canary(void) {
    FILE *f = fopen("%s", "w");
    if (f) { fputs("ran", f); fclose(f); }
}
"""


@pytest.fixture
def hostile_folder(embedded: Registry, tmp_path: Path) -> tuple[Path, Path]:
    """default@9.0.0: the 1.4.0 files with a C constructor appended, re-hashed, unsigned."""
    canary = tmp_path / "canary"
    registry = copy_registry(embedded, tmp_path / "registry", ["default@1.4.0"], sign=False)
    source = registry.read_file(registry.manifest("default@1.4.0"), "native-source", copy_only=True)
    hostile = source + (CONSTRUCTOR % canary).encode()
    manifest, blobs = republish(registry, "default@1.4.0", "9.0.0", **{"native-source": hostile})
    registry.publish(manifest, blobs)
    assert not (registry.root / SIGNATURE_PATH).exists()
    return registry.root, canary


def test_unsigned_folder_c_is_never_compiled_by_default(hostile_folder) -> None:
    folder, canary = hostile_folder
    model = published_model("default@9.0.0", registry=folder)
    assert model.registry.code_trust() is None
    assert "native" not in available_backends(model)
    with pytest.warns(UserWarning, match="not trusted to run code"):
        value = model.intensity(1.0, 3.0)  # the data-only path: the srepr, lambdified here
    assert value == pytest.approx(SEED_VALUE, rel=1e-9)
    assert model.backend == "jax"
    with pytest.raises(UntrustedCodeError, match=r"default@9\.0\.0 intensity\.c.*--trust"):
        published_model("default@9.0.0", registry=folder, backend="native").intensity(1.0, 3.0)
    assert not canary.exists()


def test_unsigned_folder_pickle_and_array_program_are_not_used(hostile_folder) -> None:
    folder, _ = hostile_folder
    model = published_model("default@9.0.0", registry=folder, backend="numpy")
    with pytest.raises(UntrustedCodeError, match=r"model\.pkl: not run"):
        model.load_forms()
    with pytest.raises(UntrustedCodeError, match=r"intensity_array\.py: not run"):
        model.registry.read_file(model.manifest, "array-source")
    forms = model.load_forms("srepr")  # data: parsed by the allow-list, nothing run
    assert set(forms) >= {"intensity_expr", "variables", "parameter_defaults", "sigma3"}
    with pytest.warns(UserWarning, match="evaluating its srepr text with numpy"):
        assert model.intensity(1.0, 3.0) == pytest.approx(SEED_VALUE, rel=1e-9)


def test_a_version_without_a_data_only_route_stops_with_one_line(embedded, tmp_path) -> None:
    folder = copy_registry(embedded, tmp_path / "registry", ["default@1.2.0"], sign=False).root
    for backend in ("auto", "jax", "numpy", "native"):
        model = published_model("default@1.2.0", registry=folder, backend=backend)
        with pytest.raises(UntrustedCodeError, match="not trusted to run code"):
            model.intensity(1.0, 3.0)


def test_the_cli_evaluates_data_only_and_runs_the_c_only_when_told(hostile_folder, tmp_path):
    folder, canary = hostile_folder
    events = write_input(tmp_path, "csv", SEED_SIGMA1, SEED_SIGMA2)
    out = tmp_path / "out.csv"
    runner = CliRunner()
    args = ["--registry", str(folder), "eval", "default@9.0.0", "-i", str(events), "-o", str(out)]
    result = runner.invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "8 events" in result.output and not canary.exists()
    refused = runner.invoke(main, [*args[:-2], "-o", str(tmp_path / "b.csv"), "--backend", "native"])
    assert refused.exit_code == 1
    assert refused.output.count("\n") == 1 and "Traceback" not in refused.output
    assert "not trusted to run code" in refused.output
    assert not canary.exists()
    # named trusted: the user's decision, and then the folder's C does run (the hostile one)
    trusted = runner.invoke(
        main, ["--trust", *args[:-2], "-o", str(tmp_path / "c.csv"), "--backend", "native"]
    )
    assert trusted.exit_code == 0, trusted.output
    assert canary.exists()


def test_a_folder_named_in_the_environment_is_trusted(embedded, tmp_path, monkeypatch):
    folder = copy_registry(embedded, tmp_path / "registry", ["default@1.4.0"], sign=False).root
    assert Registry(folder).code_trust() is None
    monkeypatch.setenv("MODELSTORE_TRUSTED_REGISTRIES", f"/elsewhere{os.pathsep}{folder}/")
    assert Registry(folder).code_trust() == "named trusted by the user"
    assert Registry(tmp_path).code_trust() is None  # its parent is not named
    monkeypatch.delenv("MODELSTORE_TRUSTED_REGISTRIES")
    listing = Path(os.environ["MODELSTORE_CONFIG_DIR"]) / "trusted-registries"
    listing.write_text(f"# my own registries\n{folder}  # published here\n")
    try:
        model = published_model("default", registry=folder, backend="native")
        assert model.intensity(1.0, 3.0) == pytest.approx(SEED_VALUE, rel=1e-9)
    finally:
        listing.unlink()


def test_a_registry_signed_with_ones_own_key_is_trusted_here_only(embedded, tmp_path, monkeypatch):
    folder = copy_registry(embedded, tmp_path / "registry", ["default@1.4.0"]).root
    assert Registry(folder).code_trust().startswith("index signed by trusted key ed25519:")
    private, public = own_key_paths()
    assert stat.S_IMODE(private.stat().st_mode) == 0o600 and public.is_file()
    assert own_signing_key().public_key() == own_signing_key().public_key()  # created once
    # a colleague without the .pub: a signature present must verify, so nothing is read
    monkeypatch.setenv("MODELSTORE_CONFIG_DIR", str(tmp_path / "colleague"))
    with pytest.raises(SignatureError, match="none of which this client trusts"):
        Registry(folder).code_trust()
    monkeypatch.setenv("MODELSTORE_TRUSTED_KEYS", str(public))
    assert Registry(folder).code_trust() is not None


def test_the_build_cache_does_not_bypass_the_rule(embedded, hostile_folder, tmp_path):
    """A library built for a trusted registry is not loaded for an untrusted one with the
    same C (the rule does not depend on what the cache holds)."""
    signed = copy_registry(embedded, tmp_path / "signed", ["default@1.4.0"])
    published_model("default@1.4.0", registry=signed, backend="native").intensity(1.0, 3.0)
    unsigned = copy_registry(embedded, tmp_path / "unsigned", ["default@1.4.0"], sign=False)
    with pytest.raises(UntrustedCodeError):
        published_model("default@1.4.0", registry=unsigned, backend="native").intensity(1.0, 3.0)


def test_verify_numeric_of_an_unsigned_folder_checks_data_only(embedded, tmp_path) -> None:
    folder = copy_registry(embedded, tmp_path / "registry", ["default@1.4.0"], sign=False).root
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the data-only path says so once per model
        result = CliRunner().invoke(
            main, ["--registry", str(folder), "verify", "--numeric", "--quiet"]
        )
    assert result.exit_code == 0, result.output
    assert "numeric jax" in result.output and "numeric numpy" in result.output
    assert "numeric native" not in result.output


def test_get_exports_code_files_without_running_them(hostile_folder, tmp_path) -> None:
    folder, canary = hostile_folder
    out = tmp_path / "export"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = CliRunner().invoke(
            main, ["--registry", str(folder), "get", "default@9.0.0", "-o", str(out)]
        )
    assert result.exit_code == 0, result.output
    assert b"modelstore_canary" in (out / "intensity.c").read_bytes()
    assert not canary.exists()
