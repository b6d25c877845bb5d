"""Lock files: the exact manifest of every model version an analysis depends on.

A lock file is plain text, one ``ID@VERSION sha256:<manifest digest>`` a line, sorted; blank
lines and ``#`` comments are ignored. The manifest digest pins every file of the version
(each file's digest is in the manifest), so ``modelstore verify --lock models.lock`` fails as
soon as anything a downstream project uses changes, on any mirror of the registry.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from modelstore.errors import (
    IntegrityError,
    InvalidNameError,
    ManifestError,
    ModelNotFoundError,
    OfflineError,
)
from modelstore.format.names import check_model_id, check_version, version_key
from modelstore.registry import FileCheck
from modelstore.store.hashing import parse_digest
from modelstore.store.local import read_regular_file

if TYPE_CHECKING:
    import os
    from collections.abc import Iterable

    from modelstore.registry import Registry

__all__ = ["LockEntry", "format_lock", "lock_entries", "parse_lock", "read_lock", "verify_lock"]

HEADER = (
    "# modelstore lock file: ID@VERSION MANIFEST-DIGEST; check with `modelstore verify --lock FILE`"
)
MAX_LOCK_BYTES = 1 << 20


@dataclass(frozen=True)
class LockEntry:
    """One pinned version: ``model_id@version`` and the digest of its manifest."""

    model_id: str
    version: str
    digest: str

    @property
    def ref(self) -> str:
        return f"{self.model_id}@{self.version}"

    def sort_key(self) -> tuple[str, tuple[int, int, int]]:
        """Sort key: model id, then version order.

        Never raises.
        """
        return self.model_id, version_key(self.version)


def lock_entries(registry: Registry, refs: Iterable[str]) -> list[LockEntry]:
    """Resolve each reference (id, title, index; latest if no version) and verify it fully.

    Only versions whose manifest and every file verify are locked; the first problem raises.

    Raises:
        IntegrityError: a version to pin does not verify.
        The errors of ``Registry.manifest``.
    """
    entries: dict[str, LockEntry] = {}
    for ref in refs:
        model_id, version, digest = registry.resolve(ref)
        entry = LockEntry(model_id, version, digest)
        for check in registry.verify([entry.ref], index_check=False):
            if check.status != "ok":
                msg = f"cannot lock {entry.ref}: {check.name}: {check.detail}"
                raise IntegrityError(msg)
        entries[entry.ref] = entry
    return sorted(entries.values(), key=LockEntry.sort_key)


def format_lock(entries: Iterable[LockEntry], registry_location: str | None = None) -> str:
    """The lock file text: one ``id@version digest`` line per entry, sorted.

    Never raises.
    """
    lines = [HEADER]
    if registry_location is not None:
        lines.append(f"# locked against {registry_location}")
    lines += [f"{e.ref} {e.digest}" for e in sorted(entries, key=LockEntry.sort_key)]
    return "\n".join(lines) + "\n"


def parse_lock(text: str, where: str = "lock file") -> list[LockEntry]:
    """Parse lock-file text; a malformed or contradictory line is reported with its number.

    Raises:
        ManifestError: a malformed line (the message names its number) or a duplicate entry.
    """
    entries: dict[str, LockEntry] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        fields = line.split()
        if len(fields) != 2 or fields[0].count("@") != 1:
            msg = f"{where}:{number}: expected 'ID@VERSION sha256:<hex>', got {raw!r}"
            raise ManifestError(msg)
        ref, digest = fields
        model_id, _, version = ref.partition("@")
        try:
            entry = LockEntry(check_model_id(model_id), check_version(version), digest)
            parse_digest(digest)
        except (InvalidNameError, ManifestError) as exc:
            msg = f"{where}:{number}: {exc}"
            raise ManifestError(msg) from None
        previous = entries.get(entry.ref)
        if previous is not None and previous.digest != entry.digest:
            msg = (
                f"{where}:{number}: {entry.ref} is pinned twice,"
                f" to {previous.digest} and {entry.digest}"
            )
            raise ManifestError(msg)
        entries[entry.ref] = entry
    if not entries:
        msg = f"{where}: pins no model version"
        raise ManifestError(msg)
    return sorted(entries.values(), key=LockEntry.sort_key)


def read_lock(path: str | os.PathLike[str]) -> list[LockEntry]:
    """The entries of the lock file at ``path``.

    Raises:
        ModelNotFoundError: no such file.
        ManifestError: the file is too large or malformed.
    """
    try:
        data = read_regular_file(path, MAX_LOCK_BYTES)
    except OSError as exc:
        msg = f"cannot read the lock file {path}: {exc.strerror or exc}"
        raise ModelNotFoundError(msg) from None
    if len(data) > MAX_LOCK_BYTES:
        msg = f"{path}: more than the {MAX_LOCK_BYTES} bytes a lock file may have"
        raise ManifestError(msg)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        msg = f"{path}: not UTF-8 text"
        raise ManifestError(msg) from None
    return parse_lock(text, str(path))


def verify_lock(registry: Registry, entries: Iterable[LockEntry]) -> list[FileCheck]:
    """Check the index, then that each pinned version still has its manifest, then its files.

    Never raises of its own: each problem becomes a FileCheck.
    """
    checks = [registry.check_index()]
    if checks[0].status != "ok":
        return checks
    for entry in entries:
        try:
            registry.manifest(entry.ref, digest=entry.digest)
        except OfflineError as exc:
            checks.append(FileCheck(entry.ref, "lock", "error", str(exc)))
            continue
        except (IntegrityError, ManifestError) as exc:
            checks.append(FileCheck(entry.ref, "lock", "mismatch", str(exc)))
            continue
        except ModelNotFoundError as exc:
            checks.append(FileCheck(entry.ref, "lock", "missing", str(exc)))
            continue
        checks.append(FileCheck(entry.ref, "lock", "ok", f"pinned {entry.digest}"))
        checks += registry.verify([entry.ref], index_check=False)
    return checks
