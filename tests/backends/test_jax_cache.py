"""JAX's persistent cache: kept only in a ``<cache>/jax`` closed to everyone else (mode 0700).

JAX writes its compiled programs with the process's umask (0666 under umask 000): the folder,
not the entries, keeps other users out, so a folder anyone else can enter is refused, with one
warning.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import pytest

from modelstore.backends import _array
from modelstore.store import private

jax = pytest.importorskip("jax")


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh ``$MODELSTORE_CACHE_DIR`` two missing folders down."""
    folder = tmp_path / "a" / "b" / "cache"
    monkeypatch.setenv("MODELSTORE_CACHE_DIR", str(folder))
    monkeypatch.delenv(_array.JAX_CACHE_ENV, raising=False)
    return folder


@pytest.fixture
def umask() -> object:
    """Set the process umask for one test."""
    old = os.umask(0o022)
    os.umask(old)
    yield os.umask
    os.umask(old)


@pytest.fixture
def fresh_jax_config(monkeypatch: pytest.MonkeyPatch) -> object:
    """JAX with no cache folder configured and modelstore's check not yet made; restored after."""
    saved = (
        jax.config.jax_compilation_cache_dir,
        jax.config.jax_persistent_cache_min_compile_time_secs,
    )
    jax.config.update("jax_compilation_cache_dir", None)
    monkeypatch.setattr(_array, "_jax_cache_checked", False, raising=False)
    yield
    jax.config.update("jax_compilation_cache_dir", saved[0])
    jax.config.update("jax_persistent_cache_min_compile_time_secs", saved[1])


def mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


@pytest.mark.parametrize("mask", [0o000, 0o022, 0o077], ids=["umask000", "umask022", "umask077"])
def test_a_new_cache_is_closed_and_its_parents_follow_the_umask(
    cache: Path, umask: object, mask: int, fresh_jax_config: object
) -> None:
    umask(mask)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _array._configure_jax()
    assert jax.config.jax_compilation_cache_dir == str(cache / "jax")
    assert mode(cache / "jax") == mode(cache) == 0o700
    for parent in (cache.parent, cache.parent.parent):  # what mkdir gives under the umask
        assert mode(parent) == 0o777 & ~mask


@pytest.mark.parametrize(
    ("folder_mode", "problem"),
    [
        (0o755, "open to group or others (mode 755"),
        (0o711, "open to group or others (mode 711"),
        (0o750, "open to group or others (mode 750"),
        (0o770, "writable by group or others (mode 770"),
        (0o777, "writable by group or others (mode 777"),
    ],
    ids=["755", "711", "750", "770", "777"],
)
def test_a_jax_folder_others_can_enter_is_refused_with_one_warning(
    cache: Path,
    folder_mode: int,
    problem: str,
    fresh_jax_config: object,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(private, "_private_group", lambda gid: False)
    (cache / "jax").mkdir(parents=True)
    (cache / "jax").chmod(folder_mode)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(2):  # checked once per process
            _array._configure_jax()
    assert len(caught) == 1
    message = str(caught[0].message)
    assert f"not keeping JAX's compiled programs in {cache / 'jax'}" in message
    assert problem in message
    assert jax.config.jax_compilation_cache_dir is None
    assert mode(cache / "jax") == folder_mode  # never loosened nor tightened


def test_an_open_cache_folder_is_refused(cache: Path, fresh_jax_config: object) -> None:
    cache.mkdir(parents=True)
    cache.chmod(0o777)
    with pytest.warns(UserWarning, match=r"writable by group or others \(mode 777"):
        _array._configure_jax()
    assert jax.config.jax_compilation_cache_dir is None


def test_the_users_private_group_may_have_group_bits(
    cache: Path, fresh_jax_config: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    """umask 002 with user private groups: 0770 reaches nobody else."""
    monkeypatch.setattr(private, "_private_group", lambda gid: True)
    (cache / "jax").mkdir(parents=True)
    (cache / "jax").chmod(0o770)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _array._configure_jax()
    assert jax.config.jax_compilation_cache_dir == str(cache / "jax")


def test_off_leaves_the_cache_alone(
    cache: Path, fresh_jax_config: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(_array.JAX_CACHE_ENV, "off")
    _array._configure_jax()
    assert jax.config.jax_compilation_cache_dir is None
    assert not cache.exists()


@pytest.mark.parametrize("existing", [None, 0o755], ids=["new", "existing755"])
def test_under_umask_000_no_entry_is_within_reach_of_others(tmp_path: Path, existing: int | None):
    """A real JAX process: its 0666 entries land only in a folder nobody else can enter."""
    cache = tmp_path / "cache"
    if existing is not None:
        (cache / "jax").mkdir(parents=True)
        (cache / "jax").chmod(existing)
    script = textwrap.dedent(
        """
        import os
        os.umask(0)
        from modelstore.backends._array import _configure_jax
        jax = _configure_jax()
        print(jax.jit(lambda x: x * 2.0 + 1.0)(1.5))
        """
    )
    env = {**os.environ, "MODELSTORE_CACHE_DIR": str(cache), "JAX_PLATFORMS": "cpu"}
    env.pop(_array.JAX_CACHE_ENV, None)
    proc = subprocess.run(
        [sys.executable, "-c", script],
        check=False,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    entries = [p for p in (cache / "jax").rglob("*") if p.is_file()]
    if existing is None:
        assert mode(cache / "jax") == 0o700
        assert entries  # the cache is in use...
        assert any(mode(p) & 0o002 for p in entries)  # ...with entries as JAX writes them
    else:
        assert entries == []
        assert proc.stderr.count("not keeping JAX's compiled programs") == 1
