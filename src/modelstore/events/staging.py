"""Event outputs: which folder is a previous output of ``eval``, and outputs that overlap inputs.

The output rule itself (what may be replaced, staged writes, links, FIFOs and devices) is
`modelstore.outputs`, shared by every command; this module adds what is particular to events.
A folder counts as a previous output (which ``overwrite`` may replace) only if it is a zarr
store this tool wrote: a group whose attributes carry modelstore's provenance and that holds
nothing but arrays. An output that contains an input or sits inside one is refused (paths
compared with symbolic links resolved).
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

from modelstore.errors import EventFileError
from modelstore.outputs import PARTIAL_MARK, Staged, check_output_path

__all__ = ["PARTIAL_MARK", "PROVENANCE_KEY", "Staged", "check_target", "is_previous_output"]

PROVENANCE_KEY = "modelstore"  # the zarr group attribute that marks an output of this tool
_MAX_ZARR_JSON = 1 << 20


def _read_zarr_json(path: Path) -> dict | None:
    """The JSON of a regular (not linked) ``zarr.json`` file, or None."""
    try:
        if not stat.S_ISREG(path.lstat().st_mode):
            return None
        with open(path, "rb") as f:
            data = f.read(_MAX_ZARR_JSON + 1)
        if len(data) > _MAX_ZARR_JSON:
            return None
        doc = json.loads(data)
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


def is_previous_output(folder: Path) -> bool:
    """True if ``folder`` is a zarr store that this tool wrote (and nothing else is inside).

    It must be a real folder (not a link) holding a zarr v3 group whose attributes carry
    modelstore's provenance, and, besides its ``zarr.json``, only real folders that are zarr
    arrays: so replacing it deletes no file a user put there.

    Never raises.
    """
    try:
        if not stat.S_ISDIR(folder.lstat().st_mode):
            return False
        entries = list(os.scandir(folder))
    except OSError:
        return False
    group = _read_zarr_json(folder / "zarr.json")
    attributes = group.get("attributes") if group else None
    if (
        group is None
        or group.get("node_type") != "group"
        or not isinstance(attributes, dict)
        or not isinstance(attributes.get(PROVENANCE_KEY), dict)
        or "model" not in attributes[PROVENANCE_KEY]
    ):
        return False
    for entry in entries:
        if entry.name == "zarr.json":
            continue
        if not entry.is_dir(follow_symlinks=False):
            return False
        array = _read_zarr_json(Path(entry.path) / "zarr.json")
        if array is None or array.get("node_type") != "array":
            return False
    return True


def _overlaps(output: Path, path: Path) -> bool:
    """True if ``output`` is ``path``, contains it or lies inside it (links resolved)."""
    a, b = output.resolve(), path.resolve()
    return a == b or a.is_relative_to(b) or b.is_relative_to(a)


def check_target(target: str | Path, overwrite: bool, inputs: tuple[Path, ...] = ()) -> Path:
    """Refuse a target that the output rule forbids, or that overlaps one of the ``inputs``.

    With ``overwrite``, only a regular file or a zarr output written by this tool may be
    replaced (`modelstore.outputs.check_output_path`, with `is_previous_output`).

    Raises:
        EventFileError: the target overlaps an input.
        OutputError: the target may not be written (an `EventFileError` too).
    """
    target = Path(target)
    for path in inputs:
        if target.resolve() == Path(path).resolve():
            msg = f"{target}: the output would overwrite the input"
            raise EventFileError(msg)
        if _overlaps(target, Path(path)):
            msg = (
                f"{target}: the output would contain or sit inside the input {path};"
                " choose an output outside it"
            )
            raise EventFileError(msg)
    check_output_path(target, overwrite, own_folder=is_previous_output)
    return target
