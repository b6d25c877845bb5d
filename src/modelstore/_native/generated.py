"""A private cache of generated source text, so that a second process does not rerun sympy.

Generating the gradient unit lowers the model with sympy (seconds); what comes out depends only
on the version's forms (the manifest's digests of them), the columns and this generator's
version, which together make the key. ``<cache>/generated/<key>.src`` holds the text and
``<key>.json`` its digest. The text is code (it is compiled or executed), so, as for the build
cache, it is read only from folders and files owned by this user and writable by nobody else
(:mod:`modelstore.store.private`), and only when its bytes match the recorded digest; anything
else is ignored and the text generated again.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from typing import TYPE_CHECKING, Any

from modelstore.store.hashing import bytes_digest
from modelstore.store.private import make_private_folder, unsafe_reason

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

__all__ = ["cached_text", "generation_key", "read_text", "recorded_digest"]

FOLDER = "generated"


def generation_key(parts: Any) -> str:
    """The key of a generated text: a digest of ``parts`` (JSON-serialisable). Never raises."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def _folder() -> Path | None:
    from modelstore.store.cache import cache_dir

    folder = cache_dir() / FOLDER
    if make_private_folder(folder.parent) or make_private_folder(folder):
        return None
    return folder


def recorded_digest(key: str) -> str | None:
    """The digest recorded for ``key`` in a private cache, or None. Never raises."""
    folder = _folder()
    if folder is None:
        return None
    path = folder / f"{key}.json"
    if unsafe_reason(path, "file") is not None:
        return None
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    digest = record.get("digest") if isinstance(record, dict) else None
    return digest if isinstance(digest, str) else None


def _read(folder: Path, key: str, digest: str) -> str | None:
    path = folder / f"{key}.src"
    if unsafe_reason(path, "file") is not None:
        return None
    try:
        data = path.read_bytes()
    except OSError:
        return None
    if bytes_digest(data) != digest:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def read_text(key: str, digest: str) -> str | None:
    """The cached text of ``key`` if it is private and its bytes have ``digest``. Never raises."""
    folder = _folder()
    return None if folder is None else _read(folder, key, digest)


def _write(folder: Path, name: str, data: bytes) -> None:
    fd, temporary = tempfile.mkstemp(prefix=f".{name}-", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(temporary, 0o644)
        os.replace(temporary, folder / name)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(temporary)


def cached_text(key: str, generate: Callable[[], str]) -> tuple[str, str, bool]:
    """``(text, digest, generated)``: the cached text of ``key``, else ``generate()``'s (kept).

    Raises:
        Whatever ``generate`` raises.
    """
    folder = _folder()
    digest = recorded_digest(key) if folder is not None else None
    if folder is not None and digest is not None:
        text = _read(folder, key, digest)
        if text is not None:
            return text, digest, False
    text = generate()
    data = text.encode("utf-8")
    digest = bytes_digest(data)
    if folder is not None:
        _write(folder, f"{key}.src", data)
        _write(folder, f"{key}.json", json.dumps({"digest": digest}).encode())
    return text, digest, True
