"""Strict JSON: duplicate keys, non-finite numbers; and what the commands do with such documents."""

from __future__ import annotations

import hashlib
import json

import pytest
from click.testing import CliRunner
from registry_helpers import unsign

from modelstore.cli import main
from modelstore.errors import ManifestError
from modelstore.format.jsondoc import load_document
from modelstore.format.manifest import Manifest
from modelstore.registry import INDEX_PATH, manifest_path


@pytest.mark.parametrize(
    ("text", "match"),
    [
        (b'{"a": 1, "a": 2}', "duplicate key 'a'"),
        (b'{"x": {"b": [1], "b": [2]}}', "duplicate key 'b'"),
        (b'{"a": 1e999}', "not a finite float"),
        (b'{"a": -1e999}', "not a finite float"),
        (b'{"a": NaN}', "NaN is not allowed"),
        (b'{"a": Infinity}', "Infinity is not allowed"),
        (b'{"a": -Infinity}', "Infinity is not allowed"),
    ],
)
def test_documents_are_read_strictly(text, match):
    with pytest.raises(ManifestError, match=f"doc.json: not valid JSON .*{match}"):
        load_document(text, "doc.json", max_bytes=1000, what="a test document")


def _replace_manifest(registry, ref, edit):
    """Rewrite the manifest text of ``ref`` with ``edit`` and point the (unsigned) index at it."""
    model_id, version = ref.split("@")
    path = registry.root / manifest_path(model_id, version)
    data = edit(path.read_text()).encode()
    path.write_bytes(data)
    index = json.loads((registry.root / INDEX_PATH).read_bytes())
    index["models"][model_id]["versions"][version] = "sha256:" + hashlib.sha256(data).hexdigest()
    (registry.root / INDEX_PATH).write_text(json.dumps(index, indent=1) + "\n")
    unsign(registry)  # an attacker's edit: the signature no longer covers the index


@pytest.mark.parametrize(
    "edit",
    [
        lambda text: text.replace('"value": 1.5\n', '"value": 1e999\n', 1),
        lambda text: text.replace('"value": 1.5\n', '"value": 1.5, "value": 2.5\n', 1),
        lambda text: text.replace('"value": 1.5\n', '"value": ' + "1" * 400 + "\n", 1),
    ],
    ids=["overflow", "duplicate", "huge-integer"],
)
def test_show_and_get_refuse_such_manifests_in_one_line(small_registry, tmp_path, edit):
    before = (small_registry.root / manifest_path("default", "1.1.0")).read_text()
    assert '"value": 1.5\n' in before
    _replace_manifest(small_registry, "default@1.1.0", edit)
    runner = CliRunner()
    for args in (
        ["show", "default@1.1.0", "--json"],
        ["get", "default@1.1.0", "-o", str(tmp_path / "out")],
    ):
        result = runner.invoke(main, ["--registry", str(small_registry.root), *args])
        assert result.exit_code == 1, (args, result.output)
        assert isinstance(result.exception, SystemExit), result.exception
        assert "default/1.1.0.json" in result.output or "default@1.1.0" in result.output
    assert not (tmp_path / "out").exists()


def test_get_never_leaves_a_partial_folder(small_registry, tmp_path, monkeypatch):
    def broken(self):
        raise ManifestError("cannot write this manifest")

    monkeypatch.setattr(Manifest, "to_bytes", broken)
    result = CliRunner().invoke(
        main,
        [
            "--registry",
            str(small_registry.root),
            "get",
            "default@1.1.0",
            "-o",
            str(tmp_path / "out"),
        ],
    )
    assert result.exit_code == 1
    assert not (tmp_path / "out").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp-")]
