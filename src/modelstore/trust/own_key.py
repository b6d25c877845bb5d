"""The user's own signing key: what makes publishing into one's own folder friction-free.

``modelstore publish`` signs the index with ``<config>/own-signing.key`` unless told otherwise
(``--sign KEY`` or ``--no-sign``), creating the key pair on first use. Its public key
``<config>/own-signing.pub`` is among the keys this user trusts (``trust.policy``), so a folder
you published into is trusted to run its code on your machine, and only there until you hand
the ``.pub`` file to your colleagues (``MODELSTORE_TRUSTED_KEYS`` or
``<config>/trusted-keys/``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from filelock import FileLock

from modelstore.trust.policy import config_dir
from modelstore.trust.signing import generate_keypair, load_private_key

if TYPE_CHECKING:
    from pathlib import Path

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

__all__ = ["own_key_paths", "own_signing_key"]


def own_key_paths() -> tuple[Path, Path]:
    """``(private, public)`` paths of the user's own signing key (they may not exist yet).

    Never raises.
    """
    folder = config_dir()
    return folder / "own-signing.key", folder / "own-signing.pub"


def own_signing_key() -> Ed25519PrivateKey:
    """The user's own signing key, created (private 0600, folder 0700) on first use.

    Raises:
        SigningKeyError: the key file exists but is not an Ed25519 private key.
        OSError: the config folder cannot be created or written.
    """
    private, _public = own_key_paths()
    private.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    with FileLock(f"{private}.lock", timeout=60):
        if not private.exists():
            generate_keypair(private)
    return load_private_key(private)
