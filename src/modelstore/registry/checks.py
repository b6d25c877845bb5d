"""Verifying a registry: the index's trust checks, then every manifest and file it reaches."""

from __future__ import annotations

from typing import TYPE_CHECKING

from modelstore.errors import (
    IntegrityError,
    ManifestError,
    ModelNotFoundError,
    ModelstoreError,
    OfflineError,
)
from modelstore.format.names import version_key
from modelstore.registry.layout import FileCheck, IndexStatus

if TYPE_CHECKING:
    from collections.abc import Iterable

    from modelstore.format.index import Index
    from modelstore.registry.core import Registry

__all__ = ["check_index", "check_versions", "refs", "refs_of", "verify"]


def refs_of(index: Index) -> list[str]:
    """Every ``id@version`` in ``index``, sorted.

    Never raises.
    """
    return [
        f"{model_id}@{version}"
        for model_id, entry in sorted(index.models.items())
        for version in sorted(entry.versions, key=version_key)
    ]


def refs(registry: Registry) -> list[str]:
    """Every ``id@version`` in the index, sorted.

    Raises:
        ModelNotFoundError: no registry or no index there.
        IntegrityError: the index fails its trust checks (signature, rollback).
    """
    return refs_of(registry.existing_index())


def check_index(registry: Registry) -> FileCheck:
    """The index's trust checks as a FileCheck (signature, rollback, changed versions).

    Raises:
        OfflineError, RemoteError: the index could not be read at all.
    """
    return _index_check(
        registry,
    )[0]


def _index_check(registry: Registry) -> tuple[FileCheck, IndexStatus | None]:
    try:
        status = registry.index_status()
    except (IntegrityError, ManifestError) as exc:
        return FileCheck("index", "index.json", "mismatch", str(exc)), None
    version = status.index.index_version
    if status.signers:
        detail = f"index_version {version}, signed by {', '.join(status.signers)}"
    elif status.digest is None:
        msg = f"{registry._no_registry_message()}: nothing to verify"
        return FileCheck("index", "index.json", "error", msg), None
    else:
        detail = f"index_version {version}, unsigned (accepted for a local folder; " + (
            "named trusted to run code)"
            if registry.code_trust()
            else "its C, pickles and array programs are not run: data-only)"
        )
    return FileCheck("index", "index.json", "ok", detail), status


def verify(
    registry: Registry, refs: Iterable[str] | None = None, *, index_check: bool = True
) -> list[FileCheck]:
    """Check the index, then the manifest and every file of each version; one FileCheck each.

    The index is read (and its trust checked) once; every version is verified against that
    one index. A failed index check (bad signature, rollback) is the only check returned:
    nothing reached through an untrusted index can be verified.

    Raises:
        ModelNotFoundError: with ``index_check=False``, no registry or no index there.
    """
    checks: list[FileCheck] = []
    if index_check:
        check, status = _index_check(
            registry,
        )
        checks.append(check)
        if status is None:
            return checks
        index = status.index
    else:
        index = registry.existing_index()
    return checks + check_versions(registry, index, refs)


def check_versions(
    registry: Registry, index: Index, refs: Iterable[str] | None = None
) -> list[FileCheck]:
    """One FileCheck per manifest and file of ``refs`` (default: all), resolved in ``index``.

    Every version is verified against this one index: it is read (and trusted) once.

    Never raises of its own: each problem becomes a FileCheck.
    """
    checks: list[FileCheck] = []
    for ref in refs_of(index) if refs is None else refs:
        try:
            data, manifest, digest = registry._manifest_in(index, ref, None)
        except OfflineError as exc:
            checks.append(FileCheck(str(ref), "manifest", "error", str(exc)))
            continue
        except (IntegrityError, ManifestError) as exc:
            checks.append(FileCheck(str(ref), "manifest", "mismatch", str(exc)))
            continue
        except ModelNotFoundError as exc:
            checks.append(FileCheck(str(ref), "manifest", "missing", str(exc)))
            continue
        name = f"{manifest.model_id}@{manifest.version}"
        checks.append(FileCheck(name, "manifest.json", "ok", digest))
        for entry in manifest.files:
            try:
                registry._read_entry(manifest, entry)
            except OfflineError as exc:
                checks.append(FileCheck(name, entry.name, "error", str(exc)))
            except IntegrityError as exc:
                checks.append(FileCheck(name, entry.name, "mismatch", str(exc)))
            except ModelNotFoundError as exc:
                checks.append(FileCheck(name, entry.name, "missing", str(exc)))
            except (OSError, ModelstoreError) as exc:
                checks.append(FileCheck(name, entry.name, "error", str(exc)))
            else:
                checks.append(FileCheck(name, entry.name, "ok", entry.digest))
    return checks
