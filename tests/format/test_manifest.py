from __future__ import annotations

import json

import pytest

from modelstore.errors import ManifestError
from modelstore.format.manifest import SCHEMA_VERSION, FileEntry, Manifest


@pytest.fixture
def manifest(embedded) -> Manifest:
    return embedded.manifest("default@1.1.0")


def mutate(manifest: Manifest, change) -> bytes:
    data = json.loads(manifest.to_bytes())
    change(data)
    return json.dumps(data).encode()


def test_round_trip_is_byte_identical(manifest):
    assert Manifest.from_bytes(manifest.to_bytes()) == manifest
    assert Manifest.from_bytes(manifest.to_bytes()).to_bytes() == manifest.to_bytes()


def test_published_manifest_content(manifest):
    assert manifest.schema_version == SCHEMA_VERSION
    assert (manifest.model_id, manifest.version, manifest.upstream_index) == ("default", "1.1.0", 0)
    assert manifest.title == "Default amplitude model"
    assert manifest.inputs == ("sigma1", "sigma2")
    assert {f.role for f in manifest.files} == {
        "expressions",
        "intensity-srepr",
        "reference-values",
        "native-source",
    }
    provenance = manifest.provenance
    assert set(provenance["sources"]) == {"model-definitions.yaml", "particle-definitions.yaml"}
    for package in (
        "python",
        "sympy",
        "cloudpickle",
        "ampform",
        "ampform-dpd",
        "polarimetry-lc2pkpi",
    ):
        assert provenance["versions"][package]
    assert provenance["expression_digest"] == manifest.file("intensity-srepr").digest
    # every parameter has a default; fitted ones carry the published uncertainties
    by_name = {p.name: p for p in manifest.parameters}
    assert by_name["m0"].value == pytest.approx(2.28646)
    coupling = by_name[r"\mathcal{H}^\mathrm{production}[K(892), -1, -1/2]"]
    assert coupling.dtype == "complex128"
    assert coupling.value == pytest.approx(complex(1.192614, -1.025814))
    assert (
        coupling.uncertainty["hesse"] is not None and coupling.uncertainty["systematic"] is not None
    )
    assert by_name[r"m_{K(892)}"].uncertainty is None  # fixed in the default model


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (lambda d: d.update(schema_version=99), "unknown schema version"),
        (lambda d: d.pop("files"), "missing keys"),
        (lambda d: d.update(extra=1), "unexpected keys"),
        (lambda d: d["files"].append(dict(d["files"][0])), "listed twice"),
        (lambda d: d["files"][0].update(digest="sha256:xyz"), "malformed digest"),
        (lambda d: d["files"][0].pop("digest"), "missing keys"),
        (lambda d: d["files"][0].update(size=-1), "size"),
        (lambda d: d["files"][0].update(size="12"), "size"),
        (lambda d: d["files"][0].update(role="payload"), "unknown role"),
        (lambda d: d["files"][0].update(name="../../evil"), "must have name"),
        (
            lambda d: d.update(files=[f for f in d["files"] if f["role"] != "expressions"]),
            "no 'expressions' file",
        ),
        (lambda d: d.update(model_id="../x"), "invalid model id"),
        (lambda d: d.update(version="1.0"), "invalid version"),
        (lambda d: d["parameters"].append(dict(d["parameters"][0])), "duplicated parameter"),
        (lambda d: d["parameters"][0].update(dtype="object"), "unknown dtype"),
        (lambda d: d["parameters"][0].update(value="1.0"), "expected a number"),
        (lambda d: d["provenance"].pop("expression_digest"), "expression_digest"),
    ],
)
def test_malformed_manifests_are_refused(manifest, change, match):
    with pytest.raises(ManifestError, match=match):
        Manifest.from_bytes(mutate(manifest, change))


@pytest.mark.parametrize(
    "data", [b"", b"{", b"[]", b"\xff\xfe", b'{"schema_version": NaN}', b"[" * 100_000]
)
def test_garbage_is_refused(data):
    with pytest.raises(ManifestError):
        Manifest.from_bytes(data)


def test_content_key_ignores_pickle_bytes_only(manifest):
    other_pickle = FileEntry(
        "expressions", "model.pkl", manifest.file("expressions").media_type, 1, "sha256:" + "1" * 64
    )
    files = tuple(other_pickle if f.role == "expressions" else f for f in manifest.files)
    same = Manifest(**{**manifest.__dict__, "files": files})
    assert same.content_key() == manifest.content_key()
    changed_c = tuple(
        FileEntry(f.role, f.name, f.media_type, f.size, "sha256:" + "2" * 64)
        if f.role == "native-source"
        else f
        for f in manifest.files
    )
    assert (
        Manifest(**{**manifest.__dict__, "files": changed_c}).content_key()
        != manifest.content_key()
    )
