"""Copy a verified model version out of a registry into an ordinary folder."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from modelstore.errors import ModelNotFoundError
from modelstore.storage import atomic_write

if TYPE_CHECKING:
    from collections.abc import Iterable

    from modelstore.registry import Registry

__all__ = ["export_model"]


def export_model(registry: Registry, ref: str, output: Path | None, roles: Iterable[str]) -> list[Path]:
    """Write ``manifest.json`` and the files of the given roles; return the paths written.

    Every file is verified before anything is written, so a failed export writes nothing.

    Raises:
        ModelNotFoundError: no such version, or it has no file of one of ``roles``.
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
    contents = {entry.name: registry.read_file(manifest, entry.role) for entry in wanted}
    folder = output if output is not None else Path(f"{manifest.model_id}-{manifest.version}")
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, data in contents.items():
        atomic_write(folder / name, data)
        written.append(folder / name)
    atomic_write(folder / "manifest.json", manifest.to_bytes())
    written.append(folder / "manifest.json")
    return written
