"""One error hierarchy for everything modelstore raises on purpose.

Each error also derives from the matching built-in exception, so callers can catch either
(`except ModelNotFoundError` or `except KeyError`).
"""

from __future__ import annotations

__all__ = [
    "BackendUnavailableError",
    "IntegrityError",
    "InvalidNameError",
    "ManifestError",
    "ModelNotFoundError",
    "ModelstoreError",
    "PublishConflictError",
    "SreprParseError",
]


class ModelstoreError(Exception):
    """Base class of every error modelstore raises deliberately."""


class IntegrityError(ModelstoreError, ValueError):
    """Bytes do not match the size or digest that a trusted manifest or index records."""


class ManifestError(ModelstoreError, ValueError):
    """A manifest or index is malformed, incomplete or of an unknown schema version."""


class InvalidNameError(ModelstoreError, ValueError):
    """A model id, version or file name does not follow the grammar."""


class ModelNotFoundError(ModelstoreError, LookupError):
    """No such model, version or file in the registry."""


class PublishConflictError(ModelstoreError, FileExistsError):
    """A published version would change: published versions are immutable."""


class SreprParseError(ModelstoreError, ValueError):
    """An srepr string contains something outside the allow-list, or is malformed."""


class BackendUnavailableError(ModelstoreError, ImportError):
    """The requested evaluator backend cannot run here (missing package or compiler)."""
