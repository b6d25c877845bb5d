"""When a registry may run code: the one rule for pickles, C source and array programs.

A registry's executable artifacts (``EXECUTABLE_ROLES``: a pickle is unpickled, C is compiled
and ``dlopen``ed, an array program is compiled and called) are used only when the registry is
trusted to run code:

- its index is signed by a trusted key (the embedded registry is; so is a folder you publish
  into, signed with your own key by default), or
- the user named it trusted: ``Registry(..., trust_code=True)``, ``modelstore --trust``,
  ``MODELSTORE_TRUSTED_REGISTRIES`` or ``<config>/trusted-registries``.

A digest proves only that bytes match a manifest, and whoever can write an unsigned folder can
re-hash its manifests. Data (srepr text, reference values, manifests) is read from any registry
through allow-list parsers, so an untrusted registry still verifies and evaluates through the
data-only path (``modelstore.backends``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from modelstore.errors import UntrustedCodeError

if TYPE_CHECKING:
    from modelstore.registry.core import Registry

__all__ = ["code_trust", "require_code_trust"]


def code_trust(registry: Registry) -> str | None:
    """Why ``registry`` may run code, or None if it may not.

    Raises:
        IntegrityError: the index fails its trust checks (a bad signature, a rollback).
        RemoteError, OfflineError: a remote index could not be read.
    """
    if registry.trust_code:
        return "trusted by the caller"
    if registry.policy.names_trusted(registry.location):
        return "named trusted by the user"
    signers = registry.index_status().signers
    if signers:
        return f"index signed by trusted key {', '.join(signers)}"
    return None


def require_code_trust(registry: Registry, what: str) -> str:
    """Return :func:`code_trust`'s reason; raise if ``registry`` may not run code.

    Raises:
        UntrustedCodeError: the registry is neither signed by a trusted key nor named trusted;
            the message names what would have run and how to trust the registry.
        IntegrityError: the index fails its trust checks.
    """
    reason = code_trust(registry)
    if reason is not None:
        return reason
    msg = (
        f"{what}: not run, because {registry.location} is not trusted to run code (its index is"
        " not signed by a trusted key). If you trust whoever wrote it, name it trusted"
        f" (`modelstore --trust`, MODELSTORE_TRUSTED_REGISTRIES={registry.location}) or sign it"
        " with a key you trust (`modelstore sign --key KEY`)"
    )
    raise UntrustedCodeError(msg)
