"""Threat 1, 6 and 10: every artifact type, tampered in every way, is refused before use."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from click.testing import CliRunner

from modelstore import IntegrityError, published_model
from modelstore.cli import main
from modelstore.registry import blob_path

ROLES = ["expressions", "intensity-srepr", "reference-values", "native-source"]


class Canary:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def tamper(data: bytes, how: str, payload: bytes) -> bytes:
    if how == "flip":
        out = bytearray(data)
        out[len(out) // 2] ^= 0x20
        return bytes(out)
    if how == "truncate":
        return data[: len(data) // 2]
    if how == "pad":
        return data + b"\n"
    if how == "payload":
        return payload.ljust(len(data), b" ")[: max(len(data), len(payload))]
    raise AssertionError(how)


def use(model, role):
    """The operation that reads and uses one role's file."""
    if role == "expressions":
        return model.load_forms()
    if role == "intensity-srepr":
        return model.expression
    if role == "reference-values":
        return model.reference()
    return model.intensity(1.0, 3.0)  # native: compiles the C source


@pytest.mark.parametrize("how", ["flip", "truncate", "pad", "payload"])
@pytest.mark.parametrize("role", ROLES)
def test_tampered_artifact_is_refused_before_use(small_registry, tmp_path, monkeypatch, role, how):
    monkeypatch.setenv("MODELSTORE_CACHE_DIR", str(tmp_path / "cache"))
    canary = tmp_path / "canary"
    payloads = {
        "expressions": pickle.dumps(Canary(str(canary))),
        "intensity-srepr": b"__import__('os').system('touch " + str(canary).encode() + b"')",
        "reference-values": b"PK\x03\x04 not a zarr zip",
        "native-source": b'__attribute__((constructor)) static void f(void) { system("touch '
        + str(canary).encode()
        + b'"); }',
    }
    manifest = small_registry.manifest("default@1.1.0")
    entry = manifest.file(role)
    path = small_registry.root / blob_path(entry.digest)
    path.write_bytes(tamper(path.read_bytes(), how, payloads[role]))
    model = published_model("default@1.1.0", registry=small_registry, backend="native")
    with pytest.raises(IntegrityError) as info:
        use(model, role)
    assert entry.name in str(info.value)
    assert not canary.exists()
    assert not list((tmp_path / "cache").glob("native/*/build.json"))  # nothing was compiled
    result = CliRunner().invoke(
        main, ["--registry", str(small_registry.root), "verify", "default@1.1.0"]
    )
    assert result.exit_code == 1 and entry.name in result.output


def test_untampered_registry_loads_every_role(small_registry, tmp_path, monkeypatch):
    monkeypatch.setenv("MODELSTORE_CACHE_DIR", str(tmp_path / "cache"))
    model = published_model("default@1.1.0", registry=small_registry, backend="native")
    for role in ROLES:
        assert use(model, role) is not None
    assert np.isfinite(model.intensity(1.0, 3.0))
