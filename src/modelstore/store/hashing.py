"""Digests in the form ``sha256:<hex>`` and the checks that compare bytes against them."""

from __future__ import annotations

import hashlib
import re
from typing import TYPE_CHECKING

from modelstore.errors import IntegrityError, ManifestError

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["ALGORITHM", "bytes_digest", "check_bytes", "file_digest", "parse_digest"]

ALGORITHM = "sha256"
_DIGEST_RE = re.compile(r"^sha256:([0-9a-f]{64})$")
_CHUNK = 1 << 20


def bytes_digest(data: bytes) -> str:
    """Return the ``sha256:<hex>`` digest of ``data``.

    Never raises.
    """
    return f"{ALGORITHM}:{hashlib.sha256(data).hexdigest()}"


def file_digest(path: Path) -> str:
    """Return the ``sha256:<hex>`` digest of a file, read in chunks.

    Raises:
        OSError: the file cannot be read.
    """
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return f"{ALGORITHM}:{h.hexdigest()}"


def parse_digest(digest: object) -> str:
    """Return the hex part of a well-formed ``sha256:<hex>`` digest, or raise ManifestError.

    Raises:
        ManifestError: not ``sha256:`` followed by 64 lower-case hex digits.
    """
    if not isinstance(digest, str) or not (match := _DIGEST_RE.match(digest)):
        msg = f"malformed digest {digest!r}: expected 'sha256:' and 64 lower-case hex digits"
        raise ManifestError(msg)
    return match.group(1)


def check_bytes(data: bytes, *, name: str, size: int, digest: str) -> bytes:
    """Return ``data`` if its size and digest are the expected ones, else raise IntegrityError.

    The size is compared first, so a truncated or padded blob is refused before it is hashed.
    Callers must go on to use exactly the returned object, never a second read of the file.

    Raises:
        IntegrityError: the size or the digest differs (the message names both).
    """
    parse_digest(digest)
    if len(data) != size:
        msg = (
            f"{name}: size {len(data)} bytes, but the manifest records {size} bytes"
            " (truncated, padded or replaced file)"
        )
        raise IntegrityError(msg)
    actual = bytes_digest(data)
    if actual != digest:
        msg = (
            f"{name}: digest mismatch: expected {digest}, got {actual}"
            " (the file was modified or corrupted after publishing)"
        )
        raise IntegrityError(msg)
    return data
