"""How modelstore opens fsspec file systems: timeouts, XRootD client settings, schemes.

Shared by the registry's remote store (``store/remote.py``) and remote event stores
(``events/locations.py``, ``events/xrootd_store.py``), so a timeout or an XRootD workaround is
set in one place.
"""

from __future__ import annotations

import math
import os
from typing import Any

from modelstore.errors import RemoteError

__all__ = [
    "ATOMIC_PUT",
    "CACHE_LAYERS",
    "DEFAULT_TIMEOUT",
    "EXTRA_OF_SCHEME",
    "READ_ONLY",
    "REGISTRY_SCHEMES",
    "SUPPORTED_SHOWN",
    "TIMEOUT_ENV",
    "XROOTD",
    "registry_scheme_problem",
    "remote_timeout",
    "with_timeouts",
    "xrootd_options",
]

TIMEOUT_ENV = "MODELSTORE_TIMEOUT"
DEFAULT_TIMEOUT = 30.0

# Protocols whose single PUT makes an object visible whole or not at all.
ATOMIC_PUT = frozenset({"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "adl", "memory"})
READ_ONLY = frozenset({"http", "https"})
EXTRA_OF_SCHEME = {"s3": "s3", "s3a": "s3", "root": "xrootd"}
XROOTD = frozenset({"root"})

#: the URL schemes a registry may have, besides a folder: each is one modelstore is tested
#: with and whose writes it knows to be atomic (FTP, SFTP and the rest of fsspec's are not)
REGISTRY_SCHEMES = frozenset(
    {
        "file",
        "https",
        "http",
        "s3",
        "s3a",
        "gs",
        "gcs",
        "az",
        "abfs",
        "abfss",
        "adl",
        "root",
        "memory",
    }
)
SUPPORTED_SHOWN = (
    "file://, https:// or http:// (read-only), s3:// (s3a://), gs:// (gcs://), az:// (abfs://,"
    " abfss://, adl://), root:// (XRootD, EOS), memory:// (tests)"
)
#: fsspec's caching layers, allowed in front of a supported scheme (``simplecache::s3://...``)
CACHE_LAYERS = frozenset({"simplecache", "filecache", "blockcache"})


def registry_scheme_problem(scheme: str) -> str | None:
    """Why a registry URL of ``scheme`` (``s3``, ``simplecache::s3``) is refused, or None.

    The reason names the supported schemes; ``unknown`` where fsspec does not know the scheme
    either, ``unsupported`` where it does (``ftp``).

    Never raises.
    """
    parts = scheme.lower().split("::")
    last, layers = parts[-1], parts[:-1]
    if last in REGISTRY_SCHEMES and all(layer in CACHE_LAYERS for layer in layers):
        return None
    from fsspec.registry import known_implementations, registry

    bad = next((p for p in parts if p not in REGISTRY_SCHEMES and p not in CACHE_LAYERS), last)
    known = bad in known_implementations or bad in registry
    kind = "unsupported" if known else "unknown"
    return f"{kind} URL scheme {bad!r}; registries are folders or {SUPPORTED_SHOWN} URLs"


def remote_timeout() -> float:
    """Seconds a remote read may wait for the server: ``$MODELSTORE_TIMEOUT``, else 30.

    Raises:
        RemoteError: ``$MODELSTORE_TIMEOUT`` is not a positive number.
    """
    text = os.environ.get(TIMEOUT_ENV, "").strip()
    if not text:
        return DEFAULT_TIMEOUT
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value < 1e6:
        msg = f"${TIMEOUT_ENV}={text!r}: expected a number of seconds greater than 0"
        raise RemoteError(msg)
    return value


def with_timeouts(protocol: str, options: dict[str, Any]) -> dict[str, Any]:
    """fsspec options with connect and read timeouts, unless the caller set their own.

    Without them a server that accepts a connection and never answers stalls a client for
    minutes (aiohttp's default) or for ever.

    Raises:
        RemoteError: ``$MODELSTORE_TIMEOUT`` is not a positive number.
        ImportError: an XRootD protocol and the XRootD bindings are not installed.
    """
    seconds = remote_timeout()
    if protocol in READ_ONLY:
        import aiohttp

        client = dict(options.get("client_kwargs") or {})
        client.setdefault(
            "timeout", aiohttp.ClientTimeout(total=None, sock_connect=seconds, sock_read=seconds)
        )
        return {**options, "client_kwargs": client}
    if protocol in ("s3", "s3a"):
        config = dict(options.get("config_kwargs") or {})
        config.setdefault("connect_timeout", seconds)
        config.setdefault("read_timeout", seconds)
        return {**options, "config_kwargs": config}
    if protocol in ("ftp", "sftp", "ssh"):
        return {"timeout": seconds, **options}
    if protocol in XROOTD:
        _xrootd_timer_resolution()
        # whole seconds: the XRootD client's timeouts are integers (0 would mean none at all)
        return {"timeout": max(1, math.ceil(seconds)), **options}
    return options


def _xrootd_timer_resolution() -> None:
    """Let the XRootD client notice an expired request within a second, not its default 15.

    The client checks its timeouts on a timer, read when it first starts in this process;
    ``$XRD_TIMEOUTRESOLUTION`` (the user's own setting) wins.

    Raises:
        ImportError: the XRootD bindings are not installed.
    """
    from XRootD.client import EnvPutInt

    if "XRD_TIMEOUTRESOLUTION" not in os.environ:
        EnvPutInt("TimeoutResolution", 1)


def xrootd_options(options: dict[str, Any]) -> dict[str, Any]:
    """fsspec-xrootd options for a registry, unless the caller set their own.

    No listings cache: a listing kept by the filesystem would answer ``exists`` with what was
    there before this process wrote. No search for other copies when an open fails: that
    request has no timeout (a stalled server would hold the client for half an hour), and a
    file that is missing is missing (EOS redirects an open to a copy itself).

    Never raises.
    """
    return {"use_listings_cache": False, "locate_all_sources": False, **options}
