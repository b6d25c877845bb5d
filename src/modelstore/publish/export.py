"""Copy a verified model version out of a registry into an ordinary folder."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from modelstore.errors import ModelNotFoundError
from modelstore.store.local import TMP_PREFIX, creation_mode

if TYPE_CHECKING:
    from collections.abc import Iterable

    from modelstore.registry import Registry

__all__ = ["export_model"]


def export_model(
    registry: Registry, ref: str, output: Path | None, roles: Iterable[str]
) -> list[Path]:
    """Write ``manifest.json`` and the files of the given roles; return the paths written.

    Every file is verified and every byte prepared before anything is written; the files are
    written into a temporary folder next to the output and moved into place, so a failed
    export leaves no partial folder (a new output folder appears whole, by one rename).

    Raises:
        ModelNotFoundError: no such version, or it has no file of one of ``roles``.
        IntegrityError: a file fails verification (nothing is written).
    """
    manifest = registry.manifest(ref)
    roles = list(roles)
    has = [entry.role for entry in manifest.files]
    lacking = [role for role in roles if role not in has]
    if lacking:
        msg = (
            f"{manifest.model_id}@{manifest.version} has no {', '.join(lacking)} file"
            f" (it has: {', '.join(has)})"
        )
        raise ModelNotFoundError(msg)
    wanted = [entry for entry in manifest.files if entry.role in set(roles)]
    contents = {
        entry.name: registry.read_file(manifest, entry.role, copy_only=True) for entry in wanted
    }
    contents["manifest.json"] = manifest.to_bytes()
    folder = output if output is not None else Path(f"{manifest.model_id}-{manifest.version}")
    parent = folder.absolute().parent
    parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f"{TMP_PREFIX}get-", dir=parent))
    try:
        for name, data in contents.items():
            with open(staging / name, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
        if not folder.exists():
            staging.chmod(creation_mode(directory=True))
            os.rename(staging, folder)
        else:
            for name in contents:
                os.replace(staging / name, folder / name)
    finally:
        with contextlib.suppress(OSError):
            shutil.rmtree(staging)
    return [folder / name for name in contents]
