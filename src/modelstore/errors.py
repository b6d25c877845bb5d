"""One error hierarchy for everything modelstore raises on purpose.

Each error also derives from the matching built-in exception, so callers can catch either
(`except ModelNotFoundError` or `except KeyError`). No message carries a URL's password.
"""

from __future__ import annotations

from modelstore.redaction import redact

__all__ = [
    "BackendUnavailableError",
    "BusyError",
    "ClusterError",
    "EventFileError",
    "IntegrityError",
    "InvalidInputError",
    "InvalidNameError",
    "ManifestError",
    "MissingExtraError",
    "ModelNotFoundError",
    "ModelstoreError",
    "OfflineError",
    "OutputError",
    "PublishConflictError",
    "RemoteError",
    "RollbackError",
    "SignatureError",
    "SigningKeyError",
    "SreprParseError",
    "UnreadableFileError",
    "UnsafePickleError",
    "UntrustedCodeError",
    "VersionChangedError",
]


class ModelstoreError(Exception):
    """Base class of every error modelstore raises deliberately.

    Passwords of URLs in its message are replaced by ``***`` (`modelstore.redaction`): the
    message reaches terminals and logs.
    """

    def __init__(self, *args: object) -> None:
        super().__init__(*(redact(a) if isinstance(a, str) else a for a in args))


class IntegrityError(ModelstoreError, ValueError):
    """Bytes do not match the size or digest that a trusted manifest or index records."""


class ManifestError(ModelstoreError, ValueError):
    """A manifest or index is malformed, incomplete or of an unknown schema version."""


class InvalidNameError(ModelstoreError, ValueError):
    """A model id, version or file name does not follow the grammar."""


class InvalidInputError(ModelstoreError, ValueError):
    """An argument or input value is unusable (wrong type, unknown parameter, bad array)."""


class ModelNotFoundError(ModelstoreError, LookupError):
    """No such model, version or file in the registry."""


class PublishConflictError(ModelstoreError, FileExistsError):
    """A published version would change: published versions are immutable."""


class SreprParseError(ModelstoreError, ValueError):
    """An srepr string contains something outside the allow-list, or is malformed."""


class BackendUnavailableError(ModelstoreError, ImportError):
    """The requested evaluator backend cannot run here (missing package or compiler)."""


class MissingExtraError(BackendUnavailableError):
    """An optional package is missing; the message names ``pip install 'modelstore[EXTRA]'``."""


class SignatureError(IntegrityError):
    """An index is unsigned where a signature is required, or its signature does not verify."""


class UnsafePickleError(IntegrityError):
    """A model pickle references a global outside the allow-list, or calls one unsafely."""


class RollbackError(IntegrityError):
    """A registry index is older than one this client has already seen (rollback or replay)."""


class VersionChangedError(IntegrityError):
    """A published ``id@version`` now has another manifest than the one this client saw before."""


class OfflineError(ModelNotFoundError):
    """Offline mode is on and something needed is not in the local cache."""


class RemoteError(ModelstoreError, OSError):
    """A remote registry could not be reached, read or written, or the operation needs a folder."""


class SigningKeyError(ModelstoreError, ValueError):
    """A signing or public key file is missing, malformed or of the wrong kind."""


class EventFileError(ModelstoreError, ValueError):
    """An event file cannot be read or written: missing, unreadable, wrong columns or values."""


class OutputError(EventFileError, OSError):
    """An output may not be written where it was asked (see `modelstore.outputs`).

    It exists and ``--overwrite`` was not given; or it is a symbolic link, a folder, a device,
    FIFO or socket that the command may not replace; or the write failed. It is also an
    `EventFileError` (what ``eval`` raised for its outputs before) and an `OSError`.
    """


class BusyError(ModelstoreError, TimeoutError):
    """Another process holds a lock this needs (a publisher writing the registry): try later."""


class ClusterError(ModelstoreError, ConnectionError):
    """A Dask cluster cannot be reached, or lost a task it was given."""


class UnreadableFileError(ModelstoreError, OSError):
    """A path that should hold a file is something else (a FIFO, a device, a folder): not read."""


class UntrustedCodeError(ModelstoreError, PermissionError):
    """A registry nobody vouched for offers code (C, a pickle, an array program): not run.

    Code from a registry runs only when its index is signed by a trusted key or the user named
    the registry trusted (see ``modelstore.trust.policy``); data-only paths keep working.
    """
