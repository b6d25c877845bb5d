"""The grammar of model ids, versions and ``ID[@VERSION]`` references.

Ids and versions become path components inside a registry, so they follow a strict grammar
that leaves no room for path tricks (``..``, slashes, NUL bytes, over-long names).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from modelstore.errors import InvalidNameError

__all__ = ["ModelRef", "check_model_id", "check_version", "parse_ref", "version_key"]

MAX_ID_LENGTH = 64
_ID_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")
_VERSION_RE = re.compile(r"^(0|[1-9][0-9]{0,5})\.(0|[1-9][0-9]{0,5})\.(0|[1-9][0-9]{0,5})$")
LATEST = "latest"


def check_model_id(model_id: object) -> str:
    """Return ``model_id`` if it is a valid id: lower-case letters, digits and inner dashes.

    Raises:
        InvalidNameError: ``model_id`` does not follow the grammar.
    """
    if not isinstance(model_id, str) or not _ID_RE.match(model_id):
        msg = (
            f"invalid model id {model_id!r}: use 1-{MAX_ID_LENGTH} lower-case letters, digits"
            " and dashes, starting and ending with a letter or digit"
        )
        raise InvalidNameError(msg)
    return model_id


def check_version(version: object) -> str:
    """Return ``version`` if it is ``MAJOR.MINOR.PATCH`` (plain decimal numbers).

    Raises:
        InvalidNameError: ``version`` is not ``MAJOR.MINOR.PATCH``.
    """
    if not isinstance(version, str) or not _VERSION_RE.match(version):
        msg = f"invalid version {version!r}: expected MAJOR.MINOR.PATCH, for example 1.0.0"
        raise InvalidNameError(msg)
    return version


def version_key(version: str) -> tuple[int, int, int]:
    """Sort key of a valid version (numeric, so 1.10.0 comes after 1.9.0).

    Raises:
        InvalidNameError: ``version`` is not ``MAJOR.MINOR.PATCH``.
    """
    major, minor, patch = check_version(version).split(".")
    return int(major), int(minor), int(patch)


@dataclass(frozen=True)
class ModelRef:
    """A parsed ``ID[@VERSION]`` reference; ``name`` may still be a title or an upstream index."""

    name: str
    version: str | None = None

    def __str__(self) -> str:
        return self.name if self.version is None else f"{self.name}@{self.version}"


def parse_ref(text: str | int) -> ModelRef:
    """Split ``ID[@VERSION]``; ``ID@latest`` is the same as no version.

    The name part is checked later against the registry's ids, titles and upstream indices;
    only the version is checked here.

    Raises:
        InvalidNameError: ``ref`` is empty, or its version does not follow the grammar.
    """
    if isinstance(text, int) and not isinstance(text, bool):
        return ModelRef(str(text))
    if not isinstance(text, str) or not text or "\x00" in text or len(text) > 512:
        msg = f"invalid model reference {text!r}"
        raise InvalidNameError(msg)
    name, sep, version = text.rpartition("@")
    if not sep:
        return ModelRef(text)
    if not name:
        msg = f"invalid model reference {text!r}: nothing before '@'"
        raise InvalidNameError(msg)
    if version == LATEST:
        return ModelRef(name)
    return ModelRef(name, check_version(version))
