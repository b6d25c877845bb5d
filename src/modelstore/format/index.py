"""The registry index: model ids -> versions -> manifest digests, with a ``latest`` alias.

The index is the one file a client reads first; every manifest is reached through the digest
the index records for it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, replace

from modelstore.errors import ManifestError, ModelNotFoundError
from modelstore.format.jsondoc import load_document
from modelstore.format.names import check_model_id, check_version, version_key
from modelstore.store.hashing import parse_digest
from modelstore.suggest import did_you_mean

_INDEX_RE = re.compile(r"[0-9]{1,5}")  # an upstream index: ASCII digits only

__all__ = ["INDEX_SCHEMA_VERSION", "Index", "IndexEntry"]

INDEX_SCHEMA_VERSION = 1
MAX_INDEX_BYTES = 16 << 20


@dataclass(frozen=True)
class IndexEntry:
    """One model in the index."""

    title: str
    upstream_index: int | None
    versions: dict[str, str]

    @property
    def latest(self) -> str:
        return max(self.versions, key=version_key)


@dataclass(frozen=True)
class Index:
    """All models of a registry. ``index_version`` grows by one with every publish."""

    models: dict[str, IndexEntry] = field(default_factory=dict)
    index_version: int = 0
    schema_version: int = INDEX_SCHEMA_VERSION

    def resolve_name(self, name: str) -> str:
        """Return the model id for an id, an upstream title or an upstream integer index.

        Raises:
            ModelNotFoundError: no model has that id, title or index.
        """
        if name in self.models:
            return name
        for model_id, entry in self.models.items():
            if name == entry.title:
                return model_id
        if _INDEX_RE.fullmatch(name):  # ASCII digits only: str.isdigit admits '٠' and '０'
            for model_id, entry in self.models.items():
                if entry.upstream_index == int(name):
                    return model_id
        known = [*self.models, *(entry.title for entry in self.models.values())]
        hint = did_you_mean(name, known)
        msg = f"no model {name!r} in this registry{hint} (try `modelstore list`)"
        raise ModelNotFoundError(msg)

    def manifest_digest(self, model_id: str, version: str | None) -> tuple[str, str]:
        """Return ``(version, manifest digest)``; ``version=None`` means the latest version.

        Raises:
            ModelNotFoundError: the model has no such version.
        """
        entry = self.models[model_id]
        if version is None:
            version = entry.latest
        if version not in entry.versions:
            known = ", ".join(sorted(entry.versions, key=version_key))
            hint = did_you_mean(version, entry.versions)
            msg = f"{model_id} has no version {version}{hint} (published: {known})"
            raise ModelNotFoundError(msg)
        return version, entry.versions[version]

    def with_version(
        self, model_id: str, version: str, digest: str, title: str, upstream_index: int | None
    ) -> Index:
        """A new index with ``model_id@version`` added and ``index_version`` increased.

        Never raises.
        """
        old = self.models.get(model_id)
        versions = {**(old.versions if old else {}), version: digest}
        models = {**self.models, model_id: IndexEntry(title, upstream_index, versions)}
        return replace(
            self, models=dict(sorted(models.items())), index_version=self.index_version + 1
        )

    def to_bytes(self) -> bytes:
        """Canonical JSON: sorted keys, fixed indentation, trailing newline.

        Never raises.
        """
        data = {
            "schema_version": self.schema_version,
            "index_version": self.index_version,
            "models": {
                model_id: {
                    "title": e.title,
                    "upstream_index": e.upstream_index,
                    "latest": e.latest,
                    "versions": dict(sorted(e.versions.items(), key=lambda kv: version_key(kv[0]))),
                }
                for model_id, e in sorted(self.models.items())
            },
        }
        return (json.dumps(data, indent=1, ensure_ascii=False) + "\n").encode()

    @classmethod
    def from_bytes(cls, data: bytes, where: str = "index") -> Index:
        """Parse and check an index (strict JSON, bounded size, known schema).

        Raises:
            ManifestError: the bytes are not a valid index; the message starts with ``where``.
            InvalidNameError: a model id or version does not follow the grammar.
        """
        raw = load_document(
            data,
            where,
            max_bytes=MAX_INDEX_BYTES,
            what="an index",
            schema_version=INDEX_SCHEMA_VERSION,
        )
        if set(raw) != {"schema_version", "index_version", "models"}:
            msg = f"{where}: expected exactly schema_version, index_version and models"
            raise ManifestError(msg)
        index_version = raw["index_version"]
        if (
            not isinstance(index_version, int)
            or isinstance(index_version, bool)
            or index_version < 0
        ):
            msg = f"{where}: index_version must be a non-negative integer"
            raise ManifestError(msg)
        if not isinstance(raw["models"], dict):
            msg = f"{where}: models must be an object"
            raise ManifestError(msg)
        models = {}
        for model_id, e in raw["models"].items():
            try:
                check_model_id(model_id)
            except ValueError as exc:
                raise ManifestError(f"{where}: {exc}") from None
            if not isinstance(e, dict) or set(e) != {
                "title",
                "upstream_index",
                "latest",
                "versions",
            }:
                msg = (
                    f"{where}: entry {model_id!r} must have title, upstream_index, latest, versions"
                )
                raise ManifestError(msg)
            versions = e["versions"]
            if not isinstance(versions, dict) or not versions:
                msg = f"{where}: {model_id!r} must list at least one version"
                raise ManifestError(msg)
            for version, digest in versions.items():
                try:
                    check_version(version)
                except ValueError as exc:
                    raise ManifestError(f"{where}: {model_id!r}: {exc}") from None
                parse_digest(digest)
            title, upstream = e["title"], e["upstream_index"]
            if not isinstance(title, str) or (
                upstream is not None
                and (not isinstance(upstream, int) or isinstance(upstream, bool))
            ):
                msg = f"{where}: {model_id!r} has a malformed title or upstream_index"
                raise ManifestError(msg)
            entry = IndexEntry(title, upstream, dict(versions))
            if e["latest"] != entry.latest:
                msg = (
                    f"{where}: {model_id!r} latest is {e['latest']!r},"
                    f" but the newest version is {entry.latest!r}"
                )
                raise ManifestError(msg)
            models[model_id] = entry
        return cls(models=models, index_version=index_version)
