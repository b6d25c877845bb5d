"""Where an event store lives: a local path, or a URL that fsspec speaks (``s3://``, ``gs://``...).

`parse_location` turns what a user typed into a `Path` or an `EventURL` (a ``file://`` URL is a
local path), refusing NUL bytes and unknown schemes. Only zarr stores are read or written
through a URL: `open_zarr_store` opens one with the options the registry code uses for the same
scheme (connect and read timeouts, ``$MODELSTORE_TIMEOUT``); endpoints and credentials come from
the environment as for remote registries (``AWS_ENDPOINT_URL_S3``, ``AWS_ACCESS_KEY_ID``...,
fsspec's ``FSSPEC_S3_*``), so Dask workers on other machines need only the same variables.

Remote outputs are written under ``.NAME.partial-XXXX`` beside the target and put in place by
`RemoteStaged.commit`, the group's ``zarr.json`` last (XRootD renames instead, see
`xrootd_tree`), so a failed run never leaves what reads as a complete output. ``overwrite``
replaces only a store modelstore wrote (provenance, arrays only), on object stores (no links;
the old store is deleted just before the copy) and XRootD (checked for links, moved aside, and
deleted once the new store is in place).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelstore.errors import EventFileError, MissingExtraError, ModelstoreError, OutputError
from modelstore.events.formats import _SUFFIXES, INPUT_FORMATS, OUTPUT_FORMATS, detect_format
from modelstore.events.staging import (
    PARTIAL_MARK,
    PROVENANCE_KEY,
    Staged,
    check_target,
    is_previous_output,
)
from modelstore.outputs import OVERWRITE_HINT
from modelstore.redaction import redact
from modelstore.store.fsspec_options import (
    ATOMIC_PUT,
    EXTRA_OF_SCHEME,
    XROOTD,
    with_timeouts,
    xrootd_options,
)

__all__ = [
    "EventURL",
    "Location",
    "RemoteStaged",
    "address_of",
    "check_output",
    "detect_location_format",
    "open_zarr_store",
    "parse_location",
    "shown_location",
    "stage_output",
]

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*(?:::[A-Za-z][A-Za-z0-9+.\-]*)*)://(.*)$", re.S)
_GROUP_JSON, _MAX_ZARR_JSON = "zarr.json", 1 << 20
_GROUP_FILES = (_GROUP_JSON, ".zgroup")  # a zarr v3 group, or a v2 one (inputs only)


@dataclass(frozen=True)
class EventURL:
    """An event store reached through fsspec, as ``scheme://rest`` (no trailing slash).

    Attributes:
        url: the URL, its scheme in lower case: what connects. Its text, ``str()``, is what is
            shown, a password as ``***``.
    """

    url: str

    def __str__(self) -> str:
        return redact(self.url)

    def __repr__(self) -> str:
        return f"EventURL({str(self)!r})"

    @property
    def protocol(self) -> str:
        """The URL's (first) scheme: ``s3``, ``root``, ``memory``..."""
        return self.url.partition("://")[0].split("::")[0]

    @property
    def name(self) -> str:
        """The last component (``out.zarr`` of ``s3://bucket/runs/out.zarr``)."""
        return self.url.rpartition("/")[2]

    def sibling(self, name: str) -> EventURL:
        """The URL of ``name`` beside this one.

        Never raises.
        """
        return EventURL(f"{self.url.rpartition('/')[0]}/{name}")

    def contains(self, other: EventURL) -> bool:
        """True if ``other`` is this URL or lies inside it.

        Never raises.
        """
        return other.url == self.url or other.url.startswith(self.url + "/")


Location = Path | EventURL


def parse_location(value: str | os.PathLike[str] | EventURL) -> Location:
    """A local path, or an `EventURL` for ``scheme://...`` (``file://`` gives a local path).

    Raises:
        EventFileError: an empty text, a NUL byte, an unknown URL scheme, or a URL without a
            path.
    """
    text = value.url if isinstance(value, EventURL) else os.fspath(value)
    if "\x00" in text:
        msg = f"{text!r}: a path or URL may not contain a NUL byte"
        raise EventFileError(msg)
    if isinstance(value, Path):
        return value
    if not text:
        msg = "an empty path was given for an event file"
        raise EventFileError(msg)
    match = _SCHEME.match(text)
    if match is None:
        return Path(text)
    scheme, rest = match.group(1).lower(), match.group(2).rstrip("/")
    if scheme == "file":
        return Path(rest)
    from fsspec.registry import known_implementations, registry

    unknown = [
        s for s in scheme.split("::") if s not in known_implementations and s not in registry
    ]
    if unknown:
        msg = f"{text}: unknown URL scheme {unknown[0]!r} (use a local path, s3://, root://...)"
        raise EventFileError(msg)
    if not rest.strip("/"):
        msg = f"{text}: the URL names no bucket or path"
        raise EventFileError(msg)
    return EventURL(f"{scheme}://{rest}")


def address_of(location: Location) -> str:
    """What reopens a location (``parse_location``): a resolved path, or the URL with its password.

    For workers that open the location again; never shown (see `shown_location`).

    Never raises.
    """
    return str(location.resolve()) if isinstance(location, Path) else location.url


def shown_location(location: Location) -> str:
    """The text recorded for a location in provenance: a resolved path, or the URL (no password).

    Never raises.
    """
    return str(location.resolve()) if isinstance(location, Path) else str(location)


def detect_location_format(location: Location, given: str | None, role: str) -> str:
    """`detect_format` for a path or a URL; a URL reads and writes zarr stores only.

    A URL's format comes from its name (``.zarr``), or from a group ``zarr.json`` found there.

    Raises:
        EventFileError: as `detect_format`; or a format other than zarr for a URL.
    """
    if isinstance(location, Path):
        return detect_format(location, given, role)
    if given is not None:
        fmt = detect_format(str(location), given, role)
    else:
        name = location.name.lower()
        found = next((f for suffix, f in _SUFFIXES if name.endswith(suffix)), None)
        if found is None and role == "input":
            found = "zarr" if any(_remote_file(location, n) for n in _GROUP_FILES) else None
        allowed = INPUT_FORMATS if role == "input" else OUTPUT_FORMATS
        if found is None or found not in allowed:
            msg = f"{location}: cannot tell the {role} format from the name (name it .zarr)"
            raise EventFileError(msg)
        fmt = found
    if fmt != "zarr":
        msg = f"{location}: only zarr stores are read or written through a URL, not {fmt}"
        raise EventFileError(msg)
    return fmt


def _storage_options(protocol: str) -> dict[str, Any]:
    """fsspec options for ``protocol``: the registry code's timeouts, no shared instance.

    A cached filesystem instance would keep the endpoint of the environment it was made in.
    """
    return {**_fsspec_options(protocol), "skip_instance_cache": True}


def _fsspec_options(protocol: str) -> dict[str, Any]:
    """The options the registry code gives fsspec for ``protocol`` (timeouts; XRootD's)."""
    options = with_timeouts(protocol, {})
    return xrootd_options(options) if protocol in XROOTD else options


def _filesystem(location: EventURL) -> tuple[Any, str]:
    """The fsspec filesystem of ``location`` and the path in it.

    Raises:
        MissingExtraError: the scheme's driver is not installed.
        EventFileError: the filesystem cannot be made (a bad option, an unreachable host).
    """
    from fsspec.core import url_to_fs

    try:
        fs, path = url_to_fs(location.url, **_storage_options(location.protocol))
    except ImportError as exc:
        extra = EXTRA_OF_SCHEME.get(location.protocol)
        if extra is None:
            msg = f"{location}: cannot open ({exc})"
            raise EventFileError(msg) from None
        msg = (
            f"{location.protocol}:// event stores need an extra: pip install 'modelstore[{extra}]'"
        )
        raise MissingExtraError(msg) from None
    except ModelstoreError:
        raise
    except Exception as exc:
        msg = f"{location}: cannot open ({type(exc).__name__}: {exc})"
        raise EventFileError(msg) from None
    return fs, path.rstrip("/")


def _remote_failure(location: EventURL, what: str, exc: BaseException) -> EventFileError:
    text = redact(" ".join(str(exc).split()))[:300]  # cut after redacting: no part of a password
    return EventFileError(f"{location}: {what} ({type(exc).__name__}: {text})")


def open_zarr_store(location: Location, *, writable: bool = False) -> Any:
    """What `zarr.open_group` opens: the path as text, or an fsspec store for a URL.

    Raises:
        EventFileError: the input is missing (no such bucket or store), or the URL cannot be
            opened.
        MissingExtraError: the scheme's driver is not installed.
    """
    if isinstance(location, Path):
        return str(location)
    from zarr.storage import FsspecStore

    fs, path = _filesystem(location)
    if not writable:
        try:
            found = fs.exists(path)
            group = found and any(fs.exists(f"{path}/{name}") for name in _GROUP_FILES)
        except Exception as exc:
            raise _remote_failure(location, "cannot read", exc) from None
        if not found:
            msg = f"{location}: no such zarr store (or no such bucket)"
            raise EventFileError(msg)
        if not group:
            msg = (
                f"{location}: not a zarr group (no {_GROUP_JSON} or .zgroup: not a zarr store,"
                " or an output whose run did not complete)"
            )
            raise EventFileError(msg)
    # fsspec keeps this asynchronous instance for the process (as zarr's own from_url does):
    # a new one per store would leave its HTTP session unclosed ("Unclosed client session")
    try:
        if location.protocol in XROOTD:  # fsspec-xrootd cannot back a zarr store
            from modelstore.events.xrootd_store import XRootDStore

            return XRootDStore(location.url, read_only=not writable)
        options = {**_fsspec_options(location.protocol), "asynchronous": True}
        return FsspecStore.from_url(location.url, storage_options=options, read_only=not writable)
    except Exception as exc:
        raise _remote_failure(location, "cannot open", exc) from None


def _remote_file(location: EventURL, relpath: str) -> dict | None:
    """The JSON object at ``relpath`` under ``location``, or None (missing, unreadable, large)."""
    try:
        fs, path = _filesystem(location)
        with fs.open(f"{path}/{relpath}", "rb") as f:
            data = f.read(_MAX_ZARR_JSON + 1)
        doc = json.loads(data) if len(data) <= _MAX_ZARR_JSON else None
    except Exception:  # missing, unreachable, not JSON: not a store this tool wrote
        return None
    return doc if isinstance(doc, dict) else None


def _is_previous_output(location: EventURL, files: list[str]) -> bool:
    """True if the store (objects ``files``) is a group with our provenance holding only arrays."""
    group = _remote_file(location, _GROUP_JSON)
    attributes = group.get("attributes") if group else None
    if (
        group is None
        or group.get("node_type") != "group"
        or not isinstance(attributes, dict)
        or not isinstance(attributes.get(PROVENANCE_KEY), dict)
        or "model" not in attributes[PROVENANCE_KEY]
    ):
        return False
    arrays: dict[str, bool] = {}
    for name in files:
        if name == _GROUP_JSON:
            continue
        top, _, rest = name.partition("/")
        if not rest or not (rest == _GROUP_JSON or rest.startswith("c/")):
            return False
        if top not in arrays:
            node = _remote_file(location, f"{top}/{_GROUP_JSON}")
            arrays[top] = node is not None and node.get("node_type") == "array"
        if not arrays[top]:
            return False
    return True


def _list_files(fs: Any, path: str, location: EventURL) -> list[str]:
    """The objects under ``path``, relative to it (empty if there are none)."""
    try:
        found = fs.find(path)
    except FileNotFoundError:
        return []
    except Exception as exc:
        raise _remote_failure(location, "cannot list", exc) from None
    return sorted(str(f)[len(path) + 1 :] for f in found if str(f).startswith(path + "/"))


def _is_object_store(protocol: str) -> bool:
    """True for object stores (S3, GCS, Azure...): no folders, a bucket must exist."""
    return protocol in ATOMIC_PUT and protocol != "memory"


def _check_remote_target(target: EventURL, overwrite: bool, inputs: tuple[Location, ...]) -> None:
    if _is_object_store(target.protocol) and "/" not in target.url.partition("://")[2]:
        msg = f"{target}: name a store inside the bucket ({target.protocol}://BUCKET/NAME.zarr)"
        raise EventFileError(msg)
    for source in inputs:
        if isinstance(source, EventURL) and target.protocol == source.protocol:
            if source.url == target.url:
                msg = f"{target}: the output would overwrite the input"
                raise EventFileError(msg)
            if target.contains(source) or source.contains(target):
                msg = (
                    f"{target}: the output would contain or sit inside the input {source};"
                    " choose an output outside it"
                )
                raise EventFileError(msg)
    fs, path = _filesystem(target)
    try:
        exists = fs.exists(path)
    except Exception as exc:
        raise _remote_failure(target, "cannot inspect the output", exc) from None
    if not exists:
        return
    if not overwrite:
        msg = f"{target}: exists already ({OVERWRITE_HINT})"
        raise OutputError(msg)
    if target.protocol not in XROOTD and not _is_object_store(target.protocol):
        msg = (
            f"{target}: exists already; modelstore replaces outputs on object stores and"
            f" root:// only ({target.protocol}:// could hold symbolic links it cannot see);"
            " delete it yourself"
        )
        raise OutputError(msg)
    if not _is_previous_output(target, _list_files(fs, path, target)):
        msg = (
            f"{target}: is a store that modelstore did not write (or whose run did not"
            " complete); refusing to replace it (--overwrite replaces only a zarr output"
            " written by modelstore eval)"
        )
        raise OutputError(msg)
    if target.protocol in XROOTD:  # the server stats through links: look for them
        from modelstore.events.xrootd_tree import check_tree

        check_tree(target.url)


def check_output(target: Location, overwrite: bool, inputs: tuple[Location, ...] = ()) -> None:
    """`staging.check_target` for a path or a URL: refuse an output that may not be written.

    Raises:
        EventFileError: the output exists (and ``overwrite`` is false, or modelstore did not
            write it), or it is, contains or lies inside an input.
    """
    if isinstance(target, Path):
        check_target(target, overwrite, tuple(p for p in inputs if isinstance(p, Path)))
    else:
        _check_remote_target(target, overwrite, inputs)


class RemoteStaged:
    """A hidden prefix beside a remote ``target`` that `commit` copies into place.

    Args:
        target: the URL the complete zarr store gets.
        overwrite: whether a store modelstore wrote may be replaced on commit.

    Raises:
        EventFileError: the target may not be written, or its bucket does not exist.
    """

    def __init__(self, target: EventURL, *, overwrite: bool = False) -> None:
        _check_remote_target(target, overwrite, ())
        self.target = target
        self.overwrite = overwrite
        self._fs, self._target_path = _filesystem(target)
        parent = self._target_path.rpartition("/")[0]
        try:
            if _is_object_store(target.protocol):
                bucket = self._target_path.split("/")[0]
                if not self._fs.exists(bucket):
                    msg = f"{target}: no bucket {bucket!r} (create it first)"
                    raise EventFileError(msg)
            elif parent:
                self._fs.makedirs(parent, exist_ok=True)
        except EventFileError:
            raise
        except Exception as exc:
            raise _remote_failure(target, "cannot write here", exc) from None
        self.path = target.sibling(f".{target.name}{PARTIAL_MARK}{uuid.uuid4().hex[:12]}")
        self._staged_path = f"{parent}/{self.path.name}" if parent else self.path.name
        self._done = False

    def commit(self) -> EventURL:
        """Copy the staged store into place, its group ``zarr.json`` last; return the target.

        Raises:
            EventFileError: the target appeared meanwhile and may not be replaced, the staged
                store has no group, or a copy failed (the target then has no group ``zarr.json``).
        """
        if self._done:
            msg = f"{self.target}: already committed or aborted"
            raise EventFileError(msg)
        _check_remote_target(self.target, self.overwrite, ())
        files = _list_files(self._fs, self._staged_path, self.path)
        if _GROUP_JSON not in files:
            msg = f"{self.target}: the staged output has no zarr group"
            raise EventFileError(msg)
        try:
            if self.target.protocol in XROOTD:  # a file system: one rename of the folder
                from modelstore.events.xrootd_tree import replace_tree

                # the previous output (checked above) is moved aside, deleted once replaced
                replace_tree(self.path.url, self.target.url)
                self._done = True
                return self.target
            if self._fs.exists(self._target_path):  # a previous output, checked above
                self._fs.rm(self._target_path, recursive=True)
            chunks = [name for name in files if name != _GROUP_JSON]
            for batch in (chunks, [_GROUP_JSON]):
                if batch:
                    self._fs.copy(
                        [f"{self._staged_path}/{n}" for n in batch],
                        [f"{self._target_path}/{n}" for n in batch],
                    )
        except ModelstoreError:
            raise
        except Exception as exc:
            raise _remote_failure(self.target, "cannot move the output into place", exc) from None
        self.abort()
        return self.target

    def abort(self) -> None:
        """Delete the staged prefix (idempotent).

        Never raises.
        """
        if self._done:
            return
        self._done = True
        with contextlib.suppress(Exception):
            if self.target.protocol in XROOTD:  # fsspec-xrootd's rm leaves the folders
                from modelstore.events.xrootd_tree import remove_tree

                remove_tree(self.path.url)
            else:
                self._fs.rm(self._staged_path, recursive=True)


def stage_output(
    target: Location, *, directory: bool = False, overwrite: bool = False
) -> Staged | RemoteStaged:
    """A `Staged` file or folder for a local target; a `RemoteStaged` zarr store for a URL.

    Raises:
        EventFileError: the target may not be written (see `check_output`), or a URL for
            something else than a zarr store.
    """
    if isinstance(target, Path):
        return Staged(
            target, directory=directory, overwrite=overwrite, own_folder=is_previous_output
        )
    if not directory:
        msg = f"{target}: only zarr stores are written through a URL"
        raise EventFileError(msg)
    return RemoteStaged(target, overwrite=overwrite)
