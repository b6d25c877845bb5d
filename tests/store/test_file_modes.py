"""Files and folders this tool writes get the modes an ordinary ``open``/``mkdir`` would give.

Temporary files from ``mkstemp`` are 0o600 (folders from ``mkdtemp`` 0o700); what is renamed
into place as a user's file must respect the umask instead: 0o644 under umask 0o022, 0o600
under 0o077.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner
from event_samples import REF, SEED_SIGMA1, SEED_SIGMA2, fast_backend, write_root

from modelstore.cli import main
from modelstore.registry import Registry
from modelstore.store.local import LocalStore, atomic_write

UMASKS = [(0o022, 0o644, 0o755), (0o077, 0o600, 0o700), (0o002, 0o664, 0o775)]


@pytest.fixture(params=UMASKS, ids=lambda u: oct(u[0]))
def umask(request: pytest.FixtureRequest) -> tuple[int, int, int]:
    old = os.umask(request.param[0])
    try:
        yield request.param
    finally:
        os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def test_creation_mode_follows_the_umask(umask: tuple[int, int, int]) -> None:
    from modelstore.store.local import creation_mode

    _, file_mode, dir_mode = umask
    assert creation_mode() == file_mode
    assert creation_mode(directory=True) == dir_mode
    assert os.umask(umask[0]) == umask[0]  # reading it did not change it


def test_atomic_write_and_local_store(umask: tuple[int, int, int], tmp_path: Path) -> None:
    """atomic_write serves get, plot, publish and push into a folder, and the cache."""
    _, file_mode, _ = umask
    atomic_write(tmp_path / "a" / "file.bin", b"data")
    assert mode(tmp_path / "a" / "file.bin") == file_mode
    LocalStore(tmp_path / "store").write("manifests/index.json", b"{}")
    assert mode(tmp_path / "store" / "manifests" / "index.json") == file_mode


def test_get_writes_files_with_the_umask(
    umask: tuple[int, int, int], tmp_path: Path, small_registry: Registry
) -> None:
    _, file_mode, _ = umask
    out = tmp_path / "out"
    result = CliRunner().invoke(
        main, ["--registry", str(small_registry.root), "get", "default@1.0.0", "-o", str(out)]
    )
    assert result.exit_code == 0, result.output
    written = list(out.iterdir())
    assert written
    assert {p.name: mode(p) for p in written} == {p.name: file_mode for p in written}


@pytest.mark.parametrize("suffix", ["csv", "parquet", "npz", "zarr"])
def test_eval_outputs_follow_the_umask(
    suffix: str, umask: tuple[int, int, int], tmp_path: Path
) -> None:
    _, file_mode, dir_mode = umask
    source = write_root(tmp_path / "in.root", SEED_SIGMA1, SEED_SIGMA2)
    out = tmp_path / f"out.{suffix}"
    result = CliRunner().invoke(
        main, ["eval", REF, "-i", str(source), "-o", str(out), "--backend", fast_backend()]
    )
    assert result.exit_code == 0, result.output
    if suffix == "zarr":
        assert mode(out) == dir_mode
        for path in out.rglob("*"):
            assert mode(path) == (dir_mode if path.is_dir() else file_mode), path
    else:
        assert mode(out) == file_mode


def test_plot_follows_the_umask(umask: tuple[int, int, int], tmp_path: Path) -> None:
    _, file_mode, _ = umask
    out = tmp_path / "dalitz.svg"
    result = CliRunner().invoke(
        main,
        [
            "plot",
            REF,
            "-o",
            str(out),
            "--resolution",
            "8",
            "--dpi",
            "20",
            "--backend",
            fast_backend(),
        ],
    )
    assert result.exit_code == 0, result.output
    assert mode(out) == file_mode
