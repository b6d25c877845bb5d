"""modelstore: verified, versioned three-body amplitude models with fast evaluators.

It started with LHCb's 18 models of Λc⁺ → p K⁻ π⁺; any three-body model can be published.
"""

from __future__ import annotations

from modelstore.errors import (
    BackendUnavailableError,
    EventFileError,
    IntegrityError,
    InvalidInputError,
    InvalidNameError,
    ManifestError,
    ModelNotFoundError,
    ModelstoreError,
    OfflineError,
    PublishConflictError,
    RemoteError,
    RollbackError,
    SignatureError,
    SigningKeyError,
    SreprParseError,
    UnsafePickleError,
    UntrustedCodeError,
    VersionChangedError,
)
from modelstore.format.manifest import FileEntry, Manifest, Parameter
from modelstore.model import PublishedModel, published_model
from modelstore.registry import FileCheck, Registry, default_registry, embedded_registry_root

__all__ = [
    "BackendUnavailableError",
    "EventFileError",
    "FileCheck",
    "FileEntry",
    "IntegrityError",
    "InvalidInputError",
    "InvalidNameError",
    "Manifest",
    "ManifestError",
    "ModelNotFoundError",
    "ModelstoreError",
    "OfflineError",
    "Parameter",
    "PublishConflictError",
    "PublishedModel",
    "Registry",
    "RemoteError",
    "RollbackError",
    "SignatureError",
    "SigningKeyError",
    "SreprParseError",
    "UnsafePickleError",
    "UntrustedCodeError",
    "VersionChangedError",
    "default_registry",
    "embedded_registry_root",
    "published_model",
]
__version__ = "0.1.0"
