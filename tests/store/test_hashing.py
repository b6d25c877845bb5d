from __future__ import annotations

import hashlib

import pytest

from modelstore.errors import IntegrityError, ManifestError
from modelstore.store.hashing import bytes_digest, check_bytes, file_digest, parse_digest


def test_digest_format_and_file_digest_agree(tmp_path):
    data = b"amplitude" * 100_000
    path = tmp_path / "blob"
    path.write_bytes(data)
    assert bytes_digest(data) == "sha256:" + hashlib.sha256(data).hexdigest()
    assert file_digest(path) == bytes_digest(data)


def test_check_bytes_returns_the_same_object():
    data = b"abc"
    assert check_bytes(data, name="x", size=3, digest=bytes_digest(data)) is data


def test_mismatch_names_file_and_both_digests():
    good, bad = b"abcd", b"abce"
    with pytest.raises(IntegrityError) as info:
        check_bytes(bad, name="model.pkl", size=4, digest=bytes_digest(good))
    message = str(info.value)
    assert "model.pkl" in message
    assert bytes_digest(good) in message and bytes_digest(bad) in message


@pytest.mark.parametrize("data", [b"abc", b"abcde"])
def test_size_is_checked_before_the_digest(data):
    with pytest.raises(IntegrityError, match="size"):
        check_bytes(data, name="f", size=4, digest=bytes_digest(b"abcd"))


@pytest.mark.parametrize(
    "digest", ["md5:abc", "sha256:" + "A" * 64, "sha256:" + "0" * 63, "", None]
)
def test_malformed_digests_are_refused(digest):
    with pytest.raises(ManifestError):
        parse_digest(digest)
