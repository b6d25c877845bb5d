"""`push` to a destination without ``manifests/index.json`` yet: it is empty, not an error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from sharing_helpers import SMALL_REFS, copy_versions

from modelstore.cli import main
from modelstore.registry import INDEX_PATH, Registry


@pytest.mark.parametrize("layout", ["absent", "empty folder", "empty manifests folder"])
def test_push_to_a_fresh_folder(layout: str, tmp_path: Path) -> None:
    source = tmp_path / "source"
    copy_versions(source, SMALL_REFS)
    dest = tmp_path / "dest"
    if layout != "absent":
        dest.mkdir()
    if layout == "empty manifests folder":
        (dest / "manifests").mkdir()
    result = CliRunner().invoke(main, ["--registry", str(source), "push", str(dest)])
    assert result.exit_code == 0, result.output
    assert "download" not in result.output
    assert f"pushed {len(SMALL_REFS)} versions" in result.output
    index = json.loads((dest / INDEX_PATH).read_bytes())
    assert set(index["models"]) == {ref.split("@")[0] for ref in SMALL_REFS}
    assert all(c.status == "ok" for c in Registry(dest).verify())


def test_push_to_a_fresh_bucket_prefix(tmp_path: Path, s3_bucket: str) -> None:
    source = tmp_path / "source"
    copy_versions(source, SMALL_REFS)
    url = f"s3://{s3_bucket}/never/written/before"
    result = CliRunner().invoke(main, ["--registry", str(source), "push", url])
    assert result.exit_code == 0, result.output
    assert "download" not in result.output
    assert f"pushed {len(SMALL_REFS)} versions" in result.output
