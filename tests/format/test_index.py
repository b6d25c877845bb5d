from __future__ import annotations

import json

import pytest

from modelstore.errors import ManifestError, ModelNotFoundError
from modelstore.format.index import Index
from modelstore.publish.catalog import LHCB_MODELS


def test_all_18_models_resolve_by_id_title_and_upstream_index(embedded):
    index = embedded.index()
    assert len(index.models) == 18
    for upstream, entry in enumerate(LHCB_MODELS):
        assert index.resolve_name(entry.model_id) == entry.model_id
        assert index.resolve_name(entry.title) == entry.model_id
        assert index.resolve_name(str(upstream)) == entry.model_id


def test_catalog_matches_upstream_titles():
    from polarimetry.lhcb import ModelName

    assert [entry.title for entry in LHCB_MODELS] == list(ModelName.__args__)


def test_latest_and_explicit_versions(embedded):
    index = embedded.index()
    assert index.models["default"].latest == "1.4.0"
    assert index.manifest_digest("default", None)[0] == "1.4.0"
    assert index.manifest_digest("default", "1.0.0")[0] == "1.0.0"
    with pytest.raises(ModelNotFoundError, match="no version 9.9.9"):
        index.manifest_digest("default", "9.9.9")
    with pytest.raises(ModelNotFoundError, match="no model"):
        index.resolve_name("no-such-model")


def test_round_trip(embedded):
    index = embedded.index()
    assert Index.from_bytes(index.to_bytes()) == index


@pytest.mark.parametrize(
    "change",
    [
        lambda d: d.update(schema_version=2),
        lambda d: d.update(index_version=-1),
        lambda d: d["models"].update({"../evil": d["models"]["default"]}),
        lambda d: d["models"]["default"]["versions"].update({"1.0": "sha256:" + "0" * 64}),
        lambda d: d["models"]["default"]["versions"].update({"2.0.0": "md5:0"}),
        lambda d: d["models"]["default"].update(latest="1.0.0"),
        lambda d: d["models"]["default"].update(versions={}),
        lambda d: d.update(extra=True),
    ],
)
def test_malformed_index_is_refused(embedded, change):
    data = json.loads(embedded.index().to_bytes())
    change(data)
    with pytest.raises(ManifestError):
        Index.from_bytes(json.dumps(data).encode())


def test_unknown_ids_and_versions_suggest_the_closest(embedded):
    index = embedded.index()
    with pytest.raises(ModelNotFoundError, match=r"no model 'defualt'.*did you mean 'default'\?"):
        index.resolve_name("defualt")
    with pytest.raises(ModelNotFoundError, match=r"did you mean 'k892-free'\?"):
        index.resolve_name("k892free")
    with pytest.raises(ModelNotFoundError, match=r"no version 1\.4\.9; did you mean '1\.4\.0'\?"):
        index.manifest_digest("default", "1.4.9")
    with pytest.raises(ModelNotFoundError) as info:
        index.resolve_name("zzzzzzzz")
    assert "did you mean" not in str(info.value)
