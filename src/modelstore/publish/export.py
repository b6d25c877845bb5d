"""Copy a verified model version out of a registry into an ordinary folder."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from modelstore.errors import ModelNotFoundError, OutputError
from modelstore.outputs import Staged, check_output_path, output_kind

if TYPE_CHECKING:
    from collections.abc import Iterable

    from modelstore.registry import Registry

__all__ = ["export_model"]


def export_model(
    registry: Registry,
    ref: str,
    output: Path | None,
    roles: Iterable[str],
    *,
    overwrite: bool = False,
) -> list[Path]:
    """Write ``manifest.json`` and the files of the given roles; return the paths written.

    Every file is verified and every byte prepared before anything is written. A new output
    folder is written under a temporary name beside it and appears whole, by one rename; into
    an existing folder each file is written under a temporary name and renamed into place,
    by the output rule of `modelstore.outputs`: a file of the same name is replaced only with
    ``overwrite``, and a link, FIFO or device of the same name never.

    Raises:
        ModelNotFoundError: no such version, or it has no file of one of ``roles``.
        IntegrityError: a file fails verification (nothing is written).
        OutputError: the output is not a folder (a file, a link...), or a file in it may not
            be replaced (nothing is written), or writing failed.
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
    kind = output_kind(folder)
    if kind == "missing":
        staged = Staged(folder, directory=True)
        try:
            for name, data in contents.items():
                (staged.path / name).write_bytes(data)
        except OSError as exc:
            staged.abort()
            msg = f"{folder}: cannot write ({exc.strerror or exc})"
            raise OutputError(msg) from None
        staged.commit()
        return [folder / name for name in contents]
    if kind == "symbolic link":
        msg = f"{folder}: is a symbolic link; refusing to write into it (name its folder)"
        raise OutputError(msg)
    if kind != "folder":
        msg = f"{folder}: is a {kind}, not a folder; refusing to write into it"
        raise OutputError(msg)
    for name in contents:  # every file may be written, before any is
        check_output_path(folder / name, overwrite)
    files: list[Staged] = []
    try:
        for name, data in contents.items():
            files.append(Staged(folder / name, overwrite=overwrite))
            files[-1].path.write_bytes(data)
        return [staged.commit() for staged in files]
    except OSError as exc:
        for staged in files:
            staged.abort()
        if isinstance(exc, OutputError):
            raise
        msg = f"{folder}: cannot write ({exc.strerror or exc})"
        raise OutputError(msg) from None
