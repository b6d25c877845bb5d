"""Reading the registry's JSON documents (index, manifests, signatures) strictly and safely."""

from __future__ import annotations

import json
from typing import Any

from modelstore.errors import ManifestError

__all__ = ["load_document"]


def _refuse_constant(name: str) -> Any:
    msg = f"JSON constant {name} is not allowed"
    raise ValueError(msg)


def load_document(
    data: bytes,
    where: str,
    *,
    max_bytes: int,
    what: str,
    schema_version: int | None = None,
    error: type[Exception] = ManifestError,
) -> Any:
    """Parse ``data`` as UTF-8 JSON of at most ``max_bytes``; check its ``schema_version``.

    Every failure (too large, not UTF-8, not JSON, NaN/Infinity, too deeply nested, another
    schema version) raises ``error`` with a message that starts with ``where``.
    """
    if len(data) > max_bytes:
        msg = f"{where}: {len(data)} bytes is more than {what} may have"
        raise error(msg)
    try:
        raw = json.loads(data.decode("utf-8"), parse_constant=_refuse_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        msg = f"{where}: not valid JSON ({exc})"
        raise error(msg) from None
    if schema_version is not None and (
        not isinstance(raw, dict) or raw.get("schema_version") != schema_version
    ):
        got = raw.get("schema_version") if isinstance(raw, dict) else None
        msg = f"{where}: unknown schema version {got!r} (this modelstore reads version {schema_version})"
        raise error(msg)
    return raw
