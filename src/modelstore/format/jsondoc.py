"""Reading the registry's JSON documents (index, manifests, signatures) strictly and safely."""

from __future__ import annotations

import json
import math
from typing import Any

from modelstore.errors import ManifestError

__all__ = ["load_document"]


def _refuse_constant(name: str) -> Any:
    msg = f"JSON constant {name} is not allowed"
    raise ValueError(msg)


def _refuse_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            msg = f"duplicate key {key!r}"
            raise ValueError(msg)
        result[key] = value
    return result


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        msg = f"number {text} is out of range (not a finite float)"
        raise ValueError(msg)
    return value


def _strict_loads(text: str | bytes) -> Any:
    """``json.loads`` that refuses duplicate keys, NaN/Infinity and numbers that overflow to inf.

    Raises ValueError (json.JSONDecodeError for syntax errors): internal, ``load_document``
    turns it into its ``error``.
    """
    return json.loads(
        text,
        parse_constant=_refuse_constant,
        parse_float=_finite_float,
        object_pairs_hook=_refuse_duplicates,
    )


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

    Every failure (too large, not UTF-8, not JSON, duplicate keys, NaN/Infinity or a number
    that overflows to infinity such as ``1e999``, too deeply nested, another schema version)
    raises ``error`` with a message that starts with ``where``.

    Raises:
        The class given as ``error`` (ManifestError by default), whatever the failure.
    """
    if len(data) > max_bytes:
        msg = f"{where}: {len(data)} bytes is more than {what} may have"
        raise error(msg)
    try:
        raw = _strict_loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        msg = f"{where}: not valid JSON ({exc})"
        raise error(msg) from None
    if schema_version is not None and (
        not isinstance(raw, dict) or raw.get("schema_version") != schema_version
    ):
        got = raw.get("schema_version") if isinstance(raw, dict) else None
        msg = (
            f"{where}: unknown schema version {got!r}"
            f" (this modelstore reads version {schema_version})"
        )
        raise error(msg)
    return raw
