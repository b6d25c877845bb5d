"""Ed25519 keys and the detached signature of a registry index (``manifests/index.json.sig``).

The signature covers the exact bytes of ``manifests/index.json``, prefixed with a fixed context
string so that a signature made for something else can never pass for an index signature. The
index records the digest of every manifest, and each manifest the digest of every file, so one
signature vouches for the whole registry.

Keys are PEM files: the private key PKCS#8 (written with mode 0600), the public key
SubjectPublicKeyInfo (``*.pub``). A key id is ``ed25519:`` and the first 32 hex digits of the
SHA-256 of the raw 32-byte public key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelstore.errors import ManifestError, SignatureError, SigningKeyError
from modelstore.format.jsondoc import load_document
from modelstore.store.hashing import bytes_digest, parse_digest
from modelstore.store.local import read_regular_file

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from cryptography.hazmat.primitives.asymmetric.ed25519 import (
        Ed25519PrivateKey,
        Ed25519PublicKey,
    )

__all__ = [
    "SIGNATURE_SCHEMA_VERSION",
    "IndexSignature",
    "generate_keypair",
    "key_id",
    "load_private_key",
    "load_public_key",
    "sign_index",
    "signature_is_for_other_index",
    "verify_index_signature",
]

SIGNATURE_SCHEMA_VERSION = 1
CONTEXT = b"modelstore index signature v1\n"
MAX_SIGNATURE_BYTES = 64 << 10


def key_id(public_key: Ed25519PublicKey) -> str:
    """The short id of a public key (the first hex digits of its digest).

    Never raises.
    """
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    raw = public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)
    return f"ed25519:{hashlib.sha256(raw).hexdigest()[:32]}"


def generate_keypair(private_path: str | os.PathLike[str]) -> tuple[Path, Path, str]:
    """Write a new private key to ``private_path`` and its public key next to it as ``.pub``.

    Refuses to overwrite either file. Returns ``(private path, public path, key id)``.

    Raises:
        SigningKeyError: a key file already exists there.
        OSError: the files cannot be written.
    """
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import (
        Encoding,
        NoEncryption,
        PrivateFormat,
        PublicFormat,
    )

    private = Path(private_path)
    public = private.with_name(private.name.removesuffix(".key") + ".pub")
    for path in (private, public):
        if path.exists():
            msg = f"{path} already exists; refusing to overwrite a key"
            raise SigningKeyError(msg)
    key = Ed25519PrivateKey.generate()
    private_pem = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    public_pem = key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    private.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(private, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(private_pem)
    public.write_bytes(public_pem)
    return private, public, key_id(key.public_key())


MAX_KEY_BYTES = 1 << 16  # a PEM Ed25519 key is about 120 bytes


def _load_pem(path: str | os.PathLike[str], *, private: bool) -> Any:
    """An Ed25519 key from a PEM file: private (PKCS#8, unencrypted) or public (SPKI)."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (
        Ed25519PrivateKey,
        Ed25519PublicKey,
    )
    from cryptography.hazmat.primitives.serialization import (
        load_pem_private_key,
        load_pem_public_key,
    )

    role, kind = ("signing key", "private") if private else ("public key", "public")
    try:
        # a FIFO or device named *.pub must not block every command: regular files only
        data = read_regular_file(path, MAX_KEY_BYTES)
    except OSError as exc:
        msg = f"cannot read the {role} {path}: {exc.strerror or exc}"
        raise SigningKeyError(msg) from None
    if not private and len(data) > MAX_KEY_BYTES:
        msg = f"{path}: more than {MAX_KEY_BYTES} bytes, not a PEM public key"
        raise SigningKeyError(msg)
    try:
        key = load_pem_private_key(data, password=None) if private else load_pem_public_key(data)
    except (ValueError, TypeError) as exc:
        what = "an unencrypted PEM private key" if private else "a PEM public key"
        msg = f"{path}: not {what} ({exc})"
        raise SigningKeyError(msg) from None
    if not isinstance(key, Ed25519PrivateKey if private else Ed25519PublicKey):
        msg = f"{path}: a {type(key).__name__}, not an Ed25519 {kind} key"
        raise SigningKeyError(msg)
    return key


def load_private_key(path: str | os.PathLike[str]) -> Ed25519PrivateKey:
    """The Ed25519 signing key in the PEM file ``path`` (PKCS#8, unencrypted).

    Raises:
        SigningKeyError: the file cannot be read, is not PEM, or holds another kind of key.
    """
    return _load_pem(path, private=True)


def load_public_key(path: str | os.PathLike[str]) -> Ed25519PublicKey:
    """The Ed25519 public key in the PEM file ``path`` (SubjectPublicKeyInfo).

    Raises:
        SigningKeyError: the file cannot be read, is too large, is not PEM, or holds another
            kind of key.
    """
    return _load_pem(path, private=False)


@dataclass(frozen=True)
class IndexSignature:
    """The contents of ``index.json.sig``: signatures by key id, and the digest they cover.

    ``index_digest`` is not itself signed; it only lets an error say whether a signature
    belongs to another index (stale: signed before the last publish) or was tampered with.
    """

    index_digest: str
    signatures: tuple[tuple[str, bytes], ...]
    schema_version: int = SIGNATURE_SCHEMA_VERSION

    def to_bytes(self) -> bytes:
        """Canonical JSON of the signature file.

        Never raises.
        """
        data = {
            "schema_version": self.schema_version,
            "index_digest": self.index_digest,
            "signatures": [
                {"algorithm": "ed25519", "key_id": kid, "signature": base64.b64encode(sig).decode()}
                for kid, sig in self.signatures
            ],
        }
        return (json.dumps(data, indent=1) + "\n").encode()

    @classmethod
    def from_bytes(cls, data: bytes, where: str = "index signature") -> IndexSignature:
        """Parse a signature file (strict JSON, bounded size).

        Raises:
            SignatureError: the bytes are not a valid signature file.
        """
        raw: Any = load_document(
            data,
            where,
            max_bytes=MAX_SIGNATURE_BYTES,
            what="a signature file",
            schema_version=SIGNATURE_SCHEMA_VERSION,
            error=SignatureError,
        )
        if set(raw) != {"schema_version", "index_digest", "signatures"}:
            msg = f"{where}: expected exactly schema_version, index_digest and signatures"
            raise SignatureError(msg)
        signatures = []
        items = raw["signatures"]
        if not isinstance(items, list) or not items:
            msg = f"{where}: signatures must be a non-empty list"
            raise SignatureError(msg)
        for item in items:
            if (
                not isinstance(item, dict)
                or set(item) != {"algorithm", "key_id", "signature"}
                or item["algorithm"] != "ed25519"
                or not isinstance(item["key_id"], str)
                or not isinstance(item["signature"], str)
            ):
                msg = f"{where}: each signature needs algorithm 'ed25519', key_id and signature"
                raise SignatureError(msg)
            try:
                sig = base64.b64decode(item["signature"], validate=True)
            except binascii.Error:
                msg = f"{where}: the signature by {item['key_id']} is not valid base64"
                raise SignatureError(msg) from None
            signatures.append((item["key_id"], sig))
        try:
            parse_digest(raw["index_digest"])
        except ManifestError as exc:
            raise SignatureError(f"{where}: {exc}") from None
        return cls(raw["index_digest"], tuple(signatures))


def sign_index(index_bytes: bytes, keys: Iterable[Ed25519PrivateKey]) -> bytes:
    """The bytes of ``index.json.sig`` for ``index_bytes``, signed by every key given.

    Raises:
        SigningKeyError: no key was given.
    """
    signatures = tuple((key_id(k.public_key()), k.sign(CONTEXT + index_bytes)) for k in keys)
    if not signatures:
        msg = "no signing key given"
        raise SigningKeyError(msg)
    return IndexSignature(bytes_digest(index_bytes), signatures).to_bytes()


def verify_index_signature(
    index_bytes: bytes,
    signature_bytes: bytes,
    trusted: Mapping[str, Ed25519PublicKey],
    where: str,
) -> list[str]:
    """Return the ids of the trusted keys whose signatures verify; raise SignatureError otherwise.

    Every signature made by a trusted key must verify (a present signature that fails means
    tampering); signatures by keys the client does not know are ignored, but at least one
    trusted signature is needed.

    Raises:
        SignatureError: no trusted key signed the index, or a signature does not verify.
    """
    from cryptography.exceptions import InvalidSignature

    parsed = IndexSignature.from_bytes(signature_bytes, f"{where}.sig")
    actual = bytes_digest(index_bytes)
    good = []
    for kid, sig in parsed.signatures:
        key = trusted.get(kid)
        if key is None:
            continue
        try:
            key.verify(sig, CONTEXT + index_bytes)
        except InvalidSignature:
            if parsed.index_digest != actual:
                msg = (
                    f"{where}: the signature by {kid} was made for another index"
                    f" ({parsed.index_digest}, this one is {actual}): the index was published or"
                    " changed after signing, or replaced. If you publish this registry, re-sign it"
                    " with `modelstore sign --key KEY`"
                )
            else:
                msg = (
                    f"{where}: the signature by {kid} does not verify: the index ({actual}) or its"
                    " signature was tampered with"
                )
            raise SignatureError(msg) from None
        good.append(kid)
    if not good:
        signers = ", ".join(kid for kid, _ in parsed.signatures)
        known = ", ".join(sorted(trusted)) or "none"
        msg = (
            f"{where}: signed by {signers}, none of which this client trusts"
            f" (trusted keys: {known});"
            " add the publisher's public key to MODELSTORE_TRUSTED_KEYS if you trust it"
        )
        raise SignatureError(msg)
    return good


def signature_is_for_other_index(index_bytes: bytes, signature: bytes | None) -> bool:
    """True if ``signature`` is a well-formed signature of some other index than these bytes.

    A publisher writes the index, then its signature: a reader in between sees a new index with
    the old signature, and should read both again before calling it tampered.

    Never raises.
    """
    if signature is None:
        return False
    try:
        return IndexSignature.from_bytes(signature).index_digest != bytes_digest(index_bytes)
    except SignatureError:
        return False
