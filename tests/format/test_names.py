from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelstore.errors import InvalidNameError
from modelstore.format.names import ModelRef, check_model_id, check_version, parse_ref, version_key
from modelstore.registry import blob_path, manifest_path
from modelstore.store.local import LocalStore


@pytest.mark.parametrize("name", ["default", "k892-free", "l1600-d1600-d1700-free", "a", "0"])
def test_valid_ids(name):
    assert check_model_id(name) == name


@pytest.mark.parametrize(
    "name",
    [
        "",
        "-x",
        "x-",
        "Default",
        "../x",
        "a/b",
        "/abs",
        "a\x00b",
        "a\nb",
        "a" * 65,
        "a.b",
        "a b",
        "..",
        "x@1",
    ],
)
def test_invalid_ids(name):
    with pytest.raises(InvalidNameError):
        check_model_id(name)


@pytest.mark.parametrize(
    "version", ["01.0.0", "1.0", "1.0.0.0", "1.0.0-rc1", "../1", "1.0.x", "1234567.0.0", ""]
)
def test_invalid_versions(version):
    with pytest.raises(InvalidNameError):
        check_version(version)


def test_version_order_is_numeric():
    assert sorted(["1.10.0", "1.9.0", "1.1.0"], key=version_key) == ["1.1.0", "1.9.0", "1.10.0"]


def test_parse_ref():
    assert parse_ref("default") == ModelRef("default")
    assert parse_ref("default@1.1.0") == ModelRef("default", "1.1.0")
    assert parse_ref("default@latest") == ModelRef("default")
    assert parse_ref(3) == ModelRef("3")
    for bad in ("default@1", "@1.0.0", "x\x00", "default@../../1.0.0"):
        with pytest.raises(InvalidNameError):
            parse_ref(bad)


@settings(max_examples=300, deadline=None)
@given(st.text(min_size=1, max_size=80), st.text(min_size=1, max_size=20))
def test_any_accepted_name_stays_inside_the_registry(tmp_path_factory, model_id, version):
    """Whatever text is given, an accepted id@version resolves to a path inside the root."""
    root = tmp_path_factory.getbasetemp() / "names-root"
    store = LocalStore(root)
    try:
        relpath = manifest_path(model_id, version)
    except InvalidNameError:
        return
    assert store.path(relpath).is_relative_to(store.root)


@pytest.mark.parametrize(
    "relpath", ["../x", "/etc/passwd", "manifests/../../x", "a//b", "a/./b", "x\x00y", ""]
)
def test_store_refuses_escaping_paths(tmp_path, relpath):
    with pytest.raises(InvalidNameError):
        LocalStore(tmp_path).path(relpath)


def test_store_refuses_symlink_escape(tmp_path):
    (tmp_path / "root" / "registry").mkdir(parents=True)
    (tmp_path / "outside").mkdir()
    (tmp_path / "root" / "registry" / "sha256").symlink_to(tmp_path / "outside")
    with pytest.raises(InvalidNameError, match="outside"):
        LocalStore(tmp_path / "root").path(blob_path("sha256:" + "0" * 64))
