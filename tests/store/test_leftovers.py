"""The leftover rules: names, kinds (no links), busy entries kept, nothing else removed."""

from __future__ import annotations

import os
import time
from pathlib import Path

from modelstore.store.leftovers import find_leftovers, remove_leftovers


def test_only_entries_of_the_names_and_kind_asked_for(tmp_path: Path) -> None:
    folder = tmp_path / "f"
    folder.mkdir()
    (folder / ".tmp-a").write_bytes(b"abc")
    (folder / "data").write_bytes(b"kept")
    (folder / "x.tmp-b").write_bytes(b"kept")
    (folder / ".tmp-dir").mkdir()
    (folder / ".tmp-link").symlink_to(folder / "data")
    (folder / "sub").mkdir()
    (folder / "sub" / ".tmp-deep").write_bytes(b"not directly in the folder")
    files = find_leftovers([folder], [".tmp-"])
    assert [(f.path.name, f.size, f.folder) for f in files] == [(".tmp-a", 3, False)]
    folders = find_leftovers([folder], [".tmp-"], directories=True)
    assert [(f.path.name, f.folder) for f in folders] == [(".tmp-dir", True)]


def test_a_folder_that_is_a_link_is_not_entered(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    (real / ".tmp-a").write_bytes(b"x")
    (tmp_path / "link").symlink_to(real)
    assert find_leftovers([tmp_path / "link", tmp_path / "missing"], [".tmp-"]) == []


def test_young_or_busy_entries_are_kept(tmp_path: Path) -> None:
    old, young, held = (tmp_path / f".tmp-{n}" for n in ("old", "young", "held"))
    for path in (old, young, held):
        path.write_bytes(b"x")
    hour_ago = time.time() - 3600
    os.utime(old, (hour_ago, hour_ago))
    os.utime(held, (hour_ago, hour_ago))
    found = find_leftovers([tmp_path], [".tmp-"], min_age=600, busy=lambda p: p == held)
    assert {f.path: f.busy for f in found} == {old: False, young: True, held: True}
    assert [f.path for f in remove_leftovers(found)] == [old]
    assert not old.exists() and young.exists() and held.exists()


def test_removal_checks_the_kind_again(tmp_path: Path) -> None:
    path = tmp_path / ".tmp-a"
    path.write_bytes(b"x")
    (found,) = find_leftovers([tmp_path], [".tmp-"])
    path.unlink()
    path.mkdir()  # replaced by a folder since: not what was found, kept
    (path / "inside").write_bytes(b"kept")
    assert remove_leftovers([found]) == []
    assert (path / "inside").exists()
    folder = tmp_path / ".tmp-f"
    folder.mkdir()
    (folder / "a").write_bytes(b"12345")
    (folder / "link").symlink_to(tmp_path / ".tmp-a" / "inside")
    (found_folder,) = find_leftovers([tmp_path], [".tmp-f"], directories=True)
    assert found_folder.size == 5
    assert remove_leftovers([found_folder]) == [found_folder]
    assert not folder.exists() and (path / "inside").exists()  # links inside not followed
    assert "5 bytes" in found_folder.describe()
