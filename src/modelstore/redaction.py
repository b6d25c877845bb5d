"""Passwords out of everything shown: ``scheme://user:PASSWORD@host`` becomes ``user:***@host``.

A URL may carry a password (``https://alice:PW@host/reg``, ``root://alice:PW@host//out.zarr``);
what modelstore shows of it (errors, printed locations, provenance written into outputs, cache
records, lock files) must not, since those end up in CI and batch logs. The real URL is still
what connects: only the text shown goes through `redact`.

`redact` needs no memory of URLs seen: it replaces the password of every ``user:password@``
in a text, with or without a scheme in front, so a client library's error that quotes the
authority alone (``Invalid bucket name "alice:PW@host"``) is cleaned too. A library that
printed a password with no ``user:`` and ``@`` around it would not be caught (none of fsspec,
aiohttp, botocore or the XRootD client does). This module imports nothing of modelstore, so
the error classes use it.
"""

from __future__ import annotations

import re

__all__ = ["MASK", "redact"]

MASK = "***"

# [scheme://]user:password@ -- the password runs to the last "@" before the host's "/" (a raw
# "@" in a password, which should be escaped as %40, stays inside what is redacted)
_USERINFO = re.compile(
    r"((?:[A-Za-z][A-Za-z0-9+.\-]*://)?[^\s/?#@:'\"()\[\]{}<>,;=]*):([^\s/?#]*)@"
)


def redact(text: str) -> str:
    """``text`` with the password of every ``[scheme://]user:password@`` in it as ``***``.

    Works on a single URL as on a whole message; user names, hosts and paths are kept.

    Never raises.
    """
    return _USERINFO.sub(lambda m: f"{m.group(1)}:{MASK}@", str(text))
