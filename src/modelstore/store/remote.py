"""A registry reached through a URL: ``https://``, ``s3://`` or anything else fsspec speaks.

Reads are bounded when the caller knows the expected size. Writes are atomic: object stores
(S3 and the like) publish an object whole on a single PUT; other filesystems get a temporary
name and a move. Plain HTTP(S) is read-only: to share a registry over HTTP, serve a folder or a
bucket that was filled with ``modelstore push``.

XRootD (``root://HOST//path``, EOS) goes through fsspec-xrootd, whose failures are all plain
``OSError``: "no such file" is told apart by the server's ``kXR_NotFound`` code, so a missing
file is ModelNotFoundError (a fresh push destination is empty, not broken) and anything else
is RemoteError.
"""

from __future__ import annotations

import re
import uuid
from typing import TYPE_CHECKING, Any

from modelstore.errors import MissingExtraError, ModelNotFoundError, RemoteError
from modelstore.redaction import redact
from modelstore.store.contract import TMP_PREFIX, Store, check_relpath
from modelstore.store.fsspec_options import (
    ATOMIC_PUT,
    EXTRA_OF_SCHEME,
    READ_ONLY,
    TIMEOUT_ENV,
    XROOTD,
    registry_scheme_problem,
    remote_timeout,
    with_timeouts,
    xrootd_options,
)

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["TIMEOUT_ENV", "RemoteStore", "remote_timeout"]

_CHUNK = 1 << 20
# XRootD's kXR_NotFound, as fsspec-xrootd's OSError messages carry it: "... error: [3011] ..."
_XROOTD_NOT_FOUND = re.compile(r"\[3011\]")


def _cause_other_than_missing(exc: FileNotFoundError) -> BaseException | None:
    """The error behind fsspec's http FileNotFoundError, if it was not a 404.

    fsspec's http filesystem turns *any* failure of its size probe (connection refused, 500,
    timeout) into FileNotFoundError; only a 404 (or 410) means "not there".
    """
    cause: BaseException | None = exc.__cause__
    while isinstance(cause, FileNotFoundError):
        cause = cause.__cause__
    if getattr(cause, "status", None) in (404, 410):
        return None
    return cause


class RemoteStore(Store):
    """A registry at a URL, through an fsspec filesystem.

    ``storage_options`` go to fsspec (for example ``{"endpoint_url": ...}`` for an S3-compatible
    server); fsspec's own configuration (``FSSPEC_S3_ENDPOINT_URL``, ``AWS_*`` variables) applies
    as well.
    """

    def __init__(self, url: str, storage_options: Mapping[str, Any] | None = None) -> None:
        try:
            from fsspec.core import url_to_fs
        except ImportError:  # pragma: no cover - fsspec is a dependency
            msg = "remote registries need fsspec: pip install fsspec"
            raise RemoteError(msg) from None
        scheme, _, rest = url.rstrip("/").partition("://")
        scheme = scheme.lower()  # URL schemes are case-insensitive; fsspec knows lower case only
        self.url = f"{scheme}://{rest}"  # what connects; shown only as ``location``
        self._shown = redact(self.url)
        problem = registry_scheme_problem(scheme)
        if problem is not None:
            msg = f"cannot open the registry at {self._shown}: {problem}"
            raise RemoteError(msg)
        first = scheme.split("::")[0]  # chained URLs (simplecache::s3://...) name several
        try:
            options = with_timeouts(scheme, dict(storage_options or {}))
            if first in XROOTD:
                options = xrootd_options(options)
            self.fs, path = url_to_fs(self.url, skip_instance_cache=True, **options)
        except RemoteError:
            raise
        except ImportError as exc:  # fsspec knows the scheme; its driver is not installed
            extra = EXTRA_OF_SCHEME.get(first)
            if extra is None:
                msg = f"cannot open the registry at {self._shown}: {exc}"
                raise RemoteError(msg) from None
            msg = f"{scheme}:// registries need an extra: pip install 'modelstore[{extra}]'"
            raise MissingExtraError(msg) from None
        except Exception as exc:  # a missing driver, a bad option, a host that cannot be reached
            msg = f"cannot open the registry at {self._shown}: {type(exc).__name__}: {exc}"
            raise RemoteError(msg) from None
        protocol = self.fs.protocol
        self.protocol = protocol if isinstance(protocol, str) else protocol[0]
        self.base = path.rstrip("/")

    def __repr__(self) -> str:
        return f"RemoteStore({self._shown!r})"

    @property
    def supports_writes(self) -> bool:  # type: ignore[override]
        """Plain HTTP(S) is read-only; object stores and filesystems are writable."""
        return self.protocol not in READ_ONLY

    @property
    def location(self) -> str:
        return self._shown

    @property
    def address(self) -> str:
        return self.url

    def _path(self, relpath: str) -> str:
        return f"{self.base}/{check_relpath(relpath)}"

    def read(self, relpath: str, max_size: int | None = None) -> bytes:
        """See ``Store.read``.

        Raises:
            ModelNotFoundError, InvalidNameError, RemoteError: as ``Store.read``.
        """
        path = self._path(relpath)
        try:
            if max_size is None and self.protocol not in XROOTD:
                return bytes(self.fs.cat_file(path))
            # fsspec-xrootd's cat_file reuses file handles opened earlier (after a file was
            # replaced it would read the old one) and needs start and end; open() opens anew
            return self._read_bounded(path, max_size)
        except FileNotFoundError as exc:
            self._raise_if_not_missing(exc, relpath, "download failed")
            msg = f"{relpath}: missing from the registry at {self._shown}"
            raise ModelNotFoundError(msg) from None
        except Exception as exc:  # network and server errors come in many types
            if self._is_missing(exc):
                msg = f"{relpath}: missing from the registry at {self._shown}"
                raise ModelNotFoundError(msg) from None
            msg = f"{self.where(relpath)}: download failed ({type(exc).__name__}: {exc})"
            raise RemoteError(msg) from exc

    def _is_missing(self, exc: BaseException) -> bool:
        """Whether an error other than FileNotFoundError says "no such file" (XRootD's OSError)."""
        return (
            self.protocol in XROOTD
            and isinstance(exc, OSError)
            and _XROOTD_NOT_FOUND.search(str(exc)) is not None
        )

    def _raise_if_not_missing(self, exc: FileNotFoundError, relpath: str, what: str) -> None:
        if self.protocol not in READ_ONLY:
            return
        cause = _cause_other_than_missing(exc)
        if cause is not None:
            msg = f"{self.where(relpath)}: {what} ({type(cause).__name__}: {cause})"
            raise RemoteError(msg) from cause

    def _read_bounded(self, path: str, max_size: int | None) -> bytes:
        """At most ``max_size + 1`` bytes of ``path`` (all of it when ``max_size`` is None)."""
        options = {"block_size": 0} if self.protocol in READ_ONLY else {}
        chunks = []
        total = 0
        with self.fs.open(path, "rb", **options) as f:
            while max_size is None or total <= max_size:
                want = _CHUNK if max_size is None else min(_CHUNK, max_size + 1 - total)
                chunk = f.read(want)
                if not chunk:
                    break
                chunks.append(chunk)
                total += len(chunk)
        return b"".join(chunks)

    def exists(self, relpath: str) -> bool:
        """See ``Store.exists``.

        Raises:
            InvalidNameError, RemoteError: as ``Store.exists``.
        """
        path = self._path(relpath)
        try:
            return self.fs.info(path).get("type") == "file"
        except FileNotFoundError as exc:
            self._raise_if_not_missing(exc, relpath, "cannot check whether it exists")
            return False
        except Exception as exc:
            if self._is_missing(exc):
                return False
            problem = f"{type(exc).__name__}: {exc}"
            msg = f"{self.where(relpath)}: cannot check whether it exists ({problem})"
            raise RemoteError(msg) from exc

    def _check_writable(self) -> None:
        if not self.supports_writes:
            msg = (
                f"{self._shown}: registries served over {self.protocol} are read-only;"
                " push to a folder or an object store (s3://...) and serve that"
            )
            raise RemoteError(msg)

    def write(self, relpath: str, data: bytes) -> None:
        """See ``Store.write``.

        Raises:
            InvalidNameError, RemoteError: as ``Store.write`` (read-only HTTP included).
        """
        path = self._path(relpath)
        self._check_writable()
        try:
            if self.protocol in ATOMIC_PUT:
                self.fs.pipe_file(path, data)
            else:
                parent = path.rsplit("/", 1)[0]
                tmp = f"{parent}/{TMP_PREFIX}{uuid.uuid4().hex}"
                if self.protocol in XROOTD:
                    # fsspec-xrootd has no pipe_file; a server need not create folders on open
                    self.fs.makedirs(parent, exist_ok=True)
                    with self.fs.open(tmp, "wb") as f:
                        f.write(data)
                else:
                    self.fs.pipe_file(tmp, data)
                self.fs.mv(tmp, path)
        except Exception as exc:
            msg = f"{self.where(relpath)}: upload failed ({type(exc).__name__}: {exc})"
            raise RemoteError(msg) from exc

    def remove(self, relpath: str) -> None:
        """See ``Store.remove``.

        Raises:
            InvalidNameError, RemoteError: as ``Store.remove`` (read-only HTTP included).
        """
        path = self._path(relpath)
        self._check_writable()
        try:
            # fsspec's isfile says False on any error: XRootD is asked to delete straight away
            if self.protocol in XROOTD or self.fs.isfile(path):
                self.fs.rm_file(path)
        except FileNotFoundError:
            return
        except Exception as exc:
            if self._is_missing(exc):
                return
            msg = f"{self.where(relpath)}: cannot delete ({type(exc).__name__}: {exc})"
            raise RemoteError(msg) from exc

    def list(self, prefix: str) -> list[str]:
        """See ``Store.list``.

        Raises:
            InvalidNameError, RemoteError: as ``Store.list``.
        """
        folder = self._path(prefix)
        # fsspec's walk leaves out folders it could not list, by default: a server that cannot
        # be reached would look like an empty folder
        options = {"on_error": "raise"} if self.protocol in XROOTD else {}
        try:
            found = self.fs.find(folder, **options)
        except FileNotFoundError:
            return []
        except Exception as exc:
            if self._is_missing(exc):
                return []
            msg = f"{self.where(prefix)}: cannot list ({type(exc).__name__}: {exc})"
            raise RemoteError(msg) from exc
        names = []
        for item in found:
            text = str(item)
            # fsspec's http lister returns full URLs; others return paths without the protocol
            start = text.find(self.base)
            if start < 0:
                continue
            rel = text[start + len(self.base) :].lstrip("/")
            if rel and not rel.rsplit("/", 1)[-1].startswith((TMP_PREFIX, ".")):
                names.append(rel)
        return sorted(names)
