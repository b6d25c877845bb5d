"""What a client trusts: public keys, when a signature is required, and what it has seen before.

Policy (docs/sharing.md):

- A registry reached through a URL must carry an index signature by a trusted key.
- A local folder (the embedded registry included) may be unsigned, unless signatures are
  required (``MODELSTORE_REQUIRE_SIGNATURE=1`` or ``--require-signature``).
- A signature that is present must always verify, wherever the registry lives.
- For every registry whose signature is required (except the embedded one, whose freshness is
  that of the installed package) the client remembers the highest ``index_version`` and the
  manifest digest of every ``id@version`` it has seen, in ``<cache>/trust/``. An older index
  (rollback, replay, a stale mirror) or a published version whose manifest changed is refused.

Code (a pickle to unpickle, C to compile and load, an array program to run) is used only from a
registry trusted to run it: its index is signed by a trusted key (the embedded registry is), or
the user named it: ``--trust`` on the command line, ``Registry(..., trust_code=True)``, the
folders listed in ``MODELSTORE_TRUSTED_REGISTRIES`` (separated by ``os.pathsep``) or in
``<config>/trusted-registries`` (one a line). A digest only proves that bytes match a manifest
that anyone with write access to the folder could have re-hashed. Data (srepr text, reference
values, manifests) is read from any registry through allow-list parsers.

Trusted keys are the ``*.pub`` files shipped in ``modelstore/keys/``, the user's own key
(``<config>/own-signing.pub``, see ``trust.own_key``), those in
``<config>/trusted-keys/`` (``MODELSTORE_CONFIG_DIR``, else the per-user config folder) and the
files or folders listed in ``MODELSTORE_TRUSTED_KEYS`` (separated by ``os.pathsep``).
"""

from __future__ import annotations

import ipaddress
import json
import logging
import os
import posixpath
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from filelock import FileLock

from modelstore.errors import (
    InvalidNameError,
    ManifestError,
    RollbackError,
    SignatureError,
    SigningKeyError,
    VersionChangedError,
)
from modelstore.store.cache import location_name
from modelstore.store.local import atomic_write, read_regular_file
from modelstore.trust.signing import key_id, load_public_key, verify_index_signature

if TYPE_CHECKING:
    from collections.abc import Mapping

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    from modelstore.format.index import Index

__all__ = [
    "CONFIG_DIR_ENV",
    "REQUIRE_SIGNATURE_ENV",
    "TRUSTED_KEYS_ENV",
    "TRUSTED_REGISTRIES_ENV",
    "TrustPolicy",
    "TrustState",
    "canonical_location",
    "config_dir",
    "env_flag",
    "shipped_key_paths",
    "trusted_key_paths",
    "trusted_registry_locations",
]

TRUSTED_KEYS_ENV = "MODELSTORE_TRUSTED_KEYS"
CONFIG_DIR_ENV = "MODELSTORE_CONFIG_DIR"
REQUIRE_SIGNATURE_ENV = "MODELSTORE_REQUIRE_SIGNATURE"
TRUSTED_REGISTRIES_ENV = "MODELSTORE_TRUSTED_REGISTRIES"
_MAX_TRUST_FILE = 1 << 16
STATE_SCHEMA_VERSION = 1

_log = logging.getLogger("modelstore.trust.policy")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"", "0", "false", "no", "off"}


def env_flag(name: str) -> bool:
    """The boolean value of environment variable ``name`` (unset means False).

    Raises:
        InvalidNameError: the variable holds something other than a boolean word.
    """
    value = os.environ.get(name, "").strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    msg = f"{name}={os.environ[name]!r}: expected 1/0, true/false, yes/no or on/off"
    raise InvalidNameError(msg)


def config_dir() -> Path:
    """``$MODELSTORE_CONFIG_DIR``, else the per-user config folder (platformdirs).

    Never raises.
    """
    env = os.environ.get(CONFIG_DIR_ENV)
    if env:
        return Path(env)
    import platformdirs

    return Path(platformdirs.user_config_dir("modelstore"))


def _pub_files(path: Path) -> list[Path]:
    if path.is_dir():
        return sorted(path.glob("*.pub"))
    return [path]


def shipped_key_paths() -> list[Path]:
    """The public keys shipped with the package (``modelstore/keys/*.pub``).

    Never raises.
    """
    shipped = Path(str(resources.files("modelstore"))) / "keys"
    return sorted(shipped.glob("*.pub")) if shipped.is_dir() else []


def trusted_key_paths() -> list[Path]:
    """Every public key file the client trusts: shipped, configured folder, environment.

    Never raises.
    """
    paths = shipped_key_paths()
    own = config_dir() / "own-signing.pub"  # the user's own key (``trust.own_key``)
    if own.is_file():
        paths.append(own)
    configured = config_dir() / "trusted-keys"
    if configured.is_dir():
        paths += sorted(configured.glob("*.pub"))
    for entry in os.environ.get(TRUSTED_KEYS_ENV, "").split(os.pathsep):
        if entry.strip():
            paths += _pub_files(Path(entry.strip()).expanduser())
    return paths


def trusted_registry_locations() -> frozenset[str]:
    """Registries the user named trusted to run code, as canonical locations.

    From ``MODELSTORE_TRUSTED_REGISTRIES`` (separated by ``os.pathsep``) and
    ``<config>/trusted-registries`` (one location a line, ``#`` starts a comment). An unreadable
    file trusts nothing more (with a warning).

    Never raises.
    """
    entries = os.environ.get(TRUSTED_REGISTRIES_ENV, "").split(os.pathsep)
    listing = config_dir() / "trusted-registries"
    if listing.exists():
        try:
            text = read_regular_file(listing, max_size=_MAX_TRUST_FILE).decode("utf-8")
        except (OSError, ValueError) as exc:
            _log.warning("warning: ignoring %s: %s", listing, exc)
            text = ""
        entries += [line.split("#", 1)[0] for line in text.splitlines()]
    return frozenset(canonical_location(e.strip()) for e in entries if e.strip())


@dataclass(frozen=True)
class TrustPolicy:
    """The public keys a client trusts, whether local folders must be signed too, and the
    registries the user named trusted to run code (canonical locations)."""

    keys: Mapping[str, Ed25519PublicKey] = field(default_factory=dict)
    require_signature: bool = False
    trusted_locations: frozenset[str] = frozenset()

    def names_trusted(self, location: str) -> bool:
        """True if the user named ``location`` trusted to run code (never raises)."""
        return canonical_location(location) in self.trusted_locations

    @classmethod
    def from_environment(cls, require_signature: bool | None = None) -> TrustPolicy:
        """The trusted keys and signature requirement from the environment.

        Raises:
            SigningKeyError: a trusted key file is unreadable or not an Ed25519 public key.
            InvalidNameError: ``MODELSTORE_REQUIRE_SIGNATURE`` is not a boolean word.
        """
        keys = {}
        for path in trusted_key_paths():
            try:
                key = load_public_key(path)
            except SigningKeyError as exc:
                # One broken file must not break every command; trusting less is the safe side.
                _log.warning("warning: ignoring a trusted-key file: %s", exc)
                continue
            keys[key_id(key)] = key
        if require_signature is None:
            require_signature = env_flag(REQUIRE_SIGNATURE_ENV)
        return cls(keys, require_signature, trusted_registry_locations())

    def check(
        self, index_bytes: bytes, signature: bytes | None, where: str, *, required: bool
    ) -> list[str]:
        """Return the ids of the keys that signed the index ([] if unsigned and allowed).

        Raises:
            SignatureError: a required signature is missing, untrusted or does not verify.
        """
        if signature is None:
            if required:
                msg = (
                    f"{where}: the index is not signed ({where}.sig is missing), and this registry"
                    " must be signed by a trusted key (remote registries always are; local folders"
                    " when signatures are required)"
                )
                raise SignatureError(msg)
            return []
        return verify_index_signature(index_bytes, signature, self.keys, where)


_DEFAULT_PORTS = {
    "http": 80,
    "https": 443,
    "ftp": 21,
    "sftp": 22,
    "ssh": 22,
    "root": 1094,
    "roots": 1094,
}
LOOPBACK = "loopback"


def canonical_location(location: str) -> str:
    """One spelling for one registry, so rollback memory cannot be sidestepped by respelling it.

    Lower-case scheme and host; ``localhost``, ``127.x.y.z`` and ``::1`` are one loopback
    host; default ports dropped; user names, queries and fragments dropped; percent-escapes
    decoded in the path; ``//``, ``/./``, ``..``, trailing ``/`` and ``/.`` collapsed. A local
    folder is its resolved absolute path.

    Never raises.
    """
    from urllib.parse import unquote, urlsplit

    if "://" not in location or location.startswith("file://"):
        path = location.removeprefix("file://")
        return "file://" + os.path.realpath(os.path.expanduser(path))
    parts = urlsplit(location)
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower().rstrip(".")
    try:
        address = ipaddress.ip_address(host)
        if address.is_loopback or (
            address.version == 6 and address.ipv4_mapped and address.ipv4_mapped.is_loopback
        ):
            host = LOOPBACK
        elif address.version == 6:
            host = f"[{address.compressed}]"
    except ValueError:
        if host == "localhost" or host.endswith(".localhost"):
            host = LOOPBACK
    try:
        port = parts.port
    except ValueError:
        port = None
    netloc = host if port in (None, _DEFAULT_PORTS.get(scheme)) else f"{host}:{port}"
    path = re.sub(r"/+", "/", "/" + unquote(parts.path))
    path = posixpath.normpath(path).rstrip("/")
    return f"{scheme}://{netloc}{path}"


class TrustState:
    """What this client has seen of one registry: highest index version, published digests."""

    def __init__(self, folder: Path, location: str) -> None:
        self.location = location
        self.identity = canonical_location(location)
        self.path = folder / f"{location_name(self.identity)}.json"
        # what earlier releases kept under the location as spelled; still honoured when read
        self.legacy_path = folder / f"{location_name(location)}.json"

    def load(self) -> dict[str, Any]:
        """What this client has seen of the registry (empty if nothing yet).

        Raises:
            ManifestError: the state file is malformed.
        """
        path = self.path
        if not path.exists() and self.legacy_path.exists():
            path = self.legacy_path
        try:
            raw = json.loads(path.read_bytes())
        except FileNotFoundError:
            return {"index_version": -1, "index_digest": None, "published": {}}
        except (OSError, ValueError) as exc:
            msg = (
                f"{self.path}: unreadable trust state for {self.location} ({exc}); remove it with"
                " `modelstore cache clean --forget-trust` if you trust the registry as it is now"
            )
            raise ManifestError(msg) from None
        if (
            not isinstance(raw, dict)
            or raw.get("schema_version") != STATE_SCHEMA_VERSION
            or not isinstance(raw.get("index_version"), int)
            or not isinstance(raw.get("published"), dict)
        ):
            msg = f"{self.path}: malformed trust state for {self.location}"
            raise ManifestError(msg)
        return raw

    def check_and_record(self, index: Index, index_digest: str, where: str) -> None:
        """Refuse a rolled-back index or a changed published version; then remember this index.

        Raises:
            RollbackError: the index is older than one seen before.
            VersionChangedError: a version seen before now has another manifest.
        """
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(f"{self.path}.lock", timeout=60):
            state = self.load()
            seen = state["index_version"]
            if index.index_version < seen:
                msg = (
                    f"{where}: index_version {index.index_version} is older than index_version"
                    f" {seen}, which this client saw on {state.get('updated', '?')}: refusing a"
                    " rolled-back index (a stale mirror or a replay). If the registry was reset on"
                    " purpose, forget what was seen with `modelstore cache clean --forget-trust`"
                )
                raise RollbackError(msg)
            if index.index_version == seen and index_digest != state["index_digest"]:
                msg = (
                    f"{where}: the index changed ({state['index_digest']} -> {index_digest})"
                    f" but its index_version stayed {seen}: refusing it"
                    " (every publish must increase it)"
                )
                raise RollbackError(msg)
            published: dict[str, str] = dict(state["published"])
            for model_id, entry in index.models.items():
                for version, digest in entry.versions.items():
                    ref = f"{model_id}@{version}"
                    before = published.get(ref)
                    if before is not None and before != digest:
                        msg = (
                            f"{where}: {ref} now has manifest {digest}, but this client saw it with"
                            f" {before}: published versions are immutable, refusing the changed one"
                        )
                        raise VersionChangedError(msg)
                    published[ref] = digest
            if index.index_version == seen and len(published) == len(state["published"]):
                return
            record = {
                "schema_version": STATE_SCHEMA_VERSION,
                "location": self.identity,
                "index_version": index.index_version,
                "index_digest": index_digest,
                "updated": datetime.now(UTC).isoformat(timespec="seconds"),
                "published": dict(sorted(published.items())),
            }
            atomic_write(self.path, (json.dumps(record, indent=1) + "\n").encode())
