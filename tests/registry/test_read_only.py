"""A registry the process cannot write (CVMFS-like): every read command and eval still work.

Reading must write nothing in the registry: lock files, temporaries, the rollback memory and
native builds go to the cache (``MODELSTORE_CACHE_DIR``), which stays writable. The registry
copy is made read-only with ``chmod -R a-w``; as root (who ignores mode bits) the commands run
with the capabilities that override them dropped (``setpriv``), and as the owner of nothing
in the copy, so no ``chmod`` could undo it.
"""

from __future__ import annotations

import os
import pwd
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from event_samples import SEED_SIGMA1, SEED_SIGMA2, write_root

from modelstore.registry import Registry

_DROPPED = "-dac_override,-dac_read_search,-fowner,-chown,-fsetid"
_MAIN = "import sys; from modelstore.cli import main; sys.exit(main())"
_SRC = str(Path(__file__).resolve().parents[2] / "src")


def _prefix() -> list[str]:
    """What runs a command without the power to write a read-only file."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv: mode bits would not be enforced")
    return [setpriv, "--bounding-set", _DROPPED, "--inh-caps=-all"]


def _snapshot(root: Path) -> dict[str, tuple[int, int, float]]:
    return {
        str(p.relative_to(root)): (p.lstat().st_mode, p.lstat().st_size, p.lstat().st_mtime)
        for p in sorted(root.rglob("*"))
    }


def _set_writable(root: Path, writable: bool) -> None:
    for path in [root, *root.rglob("*")]:
        mode = path.lstat().st_mode
        bits = stat.S_IWUSR if writable else mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)
        os.chmod(path, (mode | bits) if writable else bits)


@pytest.fixture
def read_only_registry(small_registry: Registry, tmp_path: Path) -> Path:
    root = small_registry.root
    owner = None
    if os.geteuid() == 0:
        try:
            owner = pwd.getpwnam("nobody").pw_uid
        except KeyError:
            owner = None
    if owner is not None:
        for path in [root, *root.rglob("*")]:
            os.lchown(path, owner, -1)
    _set_writable(root, writable=False)
    yield root
    if owner is not None:
        for path in [root, *root.rglob("*")]:
            os.lchown(path, 0, -1)
    _set_writable(root, writable=True)


def test_read_commands_and_eval_on_a_read_only_registry(
    read_only_registry: Path, tmp_path: Path
) -> None:
    prefix = _prefix()
    work = tmp_path / "work"
    cache = tmp_path / "cache"
    work.mkdir()
    cache.mkdir()
    env = {
        **os.environ,
        "MODELSTORE_CACHE_DIR": str(cache),
        "HOME": str(work),
        "PYTHONPATH": os.pathsep.join([_SRC, os.environ.get("PYTHONPATH", "")]),
    }
    probe = subprocess.run(
        [*prefix, sys.executable, "-c", f"open({str(read_only_registry / 'probe')!r}, 'w')"],
        capture_output=True,
        env=env,
        check=False,
    )
    if probe.returncode == 0:
        (read_only_registry / "probe").unlink()
        pytest.skip("this process can write a read-only folder here")
    events = write_root(work / "in.root", SEED_SIGMA1, SEED_SIGMA2)
    before = _snapshot(read_only_registry)
    commands = [
        ["list"],
        ["show", "default"],
        ["lock", "default@1.1.0"],
        ["get", "default@1.1.0", "-o", str(work / "got")],
        ["verify"],
        ["verify", "--numeric", "default@1.1.0"],
        ["eval", "default@1.1.0", "-i", str(events), "-o", str(work / "out.parquet")],
        [
            "eval",
            "default@1.4.0",
            "-i",
            str(events),
            "-o",
            str(work / "out.root"),
            "--backend",
            "numpy",
            "--quantities",
            "intensity,alpha_z",
        ],
    ]
    for args in commands:
        result = subprocess.run(
            [*prefix, sys.executable, "-c", _MAIN, "--registry", str(read_only_registry), *args],
            capture_output=True,
            text=True,
            env=env,
            cwd=work,
            check=False,
            timeout=300,
        )
        assert result.returncode == 0, (args, result.stdout[-2000:], result.stderr[-2000:])
        assert "Traceback" not in result.stderr, args
    assert _snapshot(read_only_registry) == before
    assert (work / "out.root").is_file()
    assert (work / "got" / "manifest.json").is_file()
