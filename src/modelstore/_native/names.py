"""The C names of a model's parameters, and the digest that ties a library to a manifest."""

from __future__ import annotations

import hashlib
import re
from typing import TYPE_CHECKING

from modelstore.errors import ModelstoreError

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["mangle", "parameter_signature"]

_IDENTIFIER_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def mangle(index: int, name: str) -> str:
    """A safe, unique C identifier for parameter number ``index`` called ``name``.

    Raises:
        ModelstoreError: ``name`` is empty or holds control characters.
    """
    if not name or any(ord(c) < 32 or ord(c) == 127 for c in name):
        msg = f"parameter name {name!r} contains control characters; refusing to generate C"
        raise ModelstoreError(msg)
    body = re.sub(r"[^A-Za-z0-9]+", "_", name).strip("_")[:40]
    identifier = f"p{index}_{body}" if body else f"p{index}"
    if not _IDENTIFIER_RE.match(identifier):  # cannot happen, but never emit an unchecked name
        msg = f"cannot mangle {name!r} into a C identifier"
        raise ModelstoreError(msg)
    return identifier


def parameter_signature(names: Sequence[str], is_complex: Sequence[bool]) -> str:
    """Digest of the ordered parameter list; the library and the manifest must agree on it.

    Never raises for equally long sequences.
    """
    text = "\n".join(f"{n}\t{'c' if c else 'r'}" for n, c in zip(names, is_complex, strict=True))
    return hashlib.sha256(text.encode()).hexdigest()
