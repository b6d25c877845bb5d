"""The LHCb catalog is a client of the one publish path: republishing `default` through it gives
the files of the embedded default@1.4.0, byte for byte (the pickle may differ, as ever)."""

from __future__ import annotations

import pytest
from registry_helpers import new_registry

from modelstore.publish.build import publish_models

# republishing `default` from upstream takes 2-3 min here: by hand, `pytest -m "upstream and slow"`
pytestmark = [pytest.mark.upstream, pytest.mark.slow]


def test_republishing_default_gives_the_embedded_files(embedded, tmp_path):
    registry = new_registry(tmp_path / "registry")
    # 1.4.0 was published before lowering 2 (issue 17): its C source is lowering 1's
    (result,) = publish_models(registry, [0], "9.0.0", native_lowering=1)
    assert result.status == "published"
    old = {f.role: f.digest for f in embedded.manifest("default@1.4.0").files}
    new = {f.role: f.digest for f in registry.manifest("default@9.0.0").files}
    assert old.keys() == new.keys()
    differ = sorted(role for role in old if old[role] != new[role])
    assert set(differ) <= {"expressions"}  # pickle bytes of sympy objects may differ by run
    old_manifest = embedded.manifest("default@1.4.0").to_dict()
    new_manifest = registry.manifest("default@9.0.0").to_dict()
    for key in ("title", "upstream_index", "inputs", "parameters"):
        assert old_manifest[key] == new_manifest[key], key
    versions = "versions"
    assert {k: v for k, v in old_manifest["provenance"].items() if k != versions} == {
        k: v for k, v in new_manifest["provenance"].items() if k != versions
    }
