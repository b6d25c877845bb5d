"""The one output rule (``modelstore.outputs``) as ``field``, ``band``, ``plot``, ``get`` meet it.

An existing file is replaced only with ``--overwrite``; a FIFO or a character device is written
into and never replaced (a FIFO nothing reads is refused, not waited on); a symbolic link is
never replaced or written through (except to a FIFO or device); a replaced file follows the
umask. ``eval``'s own cases are in tests/events/test_evaluate_file.py and tests/cli/test_eval.py.
"""

from __future__ import annotations

import json
import os
import select
import signal
import stat
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from click.testing import CliRunner

from modelstore.cli import main

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from click.testing import Result

REF = "default@1.4.0"  # polarimetry (field, band) from 1.4.0 on
HANG_GUARD_S = 120


def field_args(out: Path) -> list[str]:
    return ["field", REF, "--grid", "2", "--backend", "numpy", "-o", str(out)]


def band_args(out: Path) -> list[str]:
    return ["band", REF, "--grid", "2", "--backend", "numpy", "-o", str(out)]


def plot_args(out: Path) -> list[str]:
    return ["plot", REF, "--resolution", "4", "--dpi", "20", "--backend", "numpy", "-o", str(out)]


def is_json(data: bytes) -> bool:
    return isinstance(json.loads(data), dict)


def is_png(data: bytes) -> bool:
    return data.startswith(b"\x89PNG")


# (command line for an output path, output name, check of the bytes written)
WHOLE_FILE: dict[str, tuple[Callable[[Path], list[str]], str, Callable[[bytes], bool]]] = {
    "field": (field_args, "field.json", is_json),
    "band": (band_args, "band.json", is_json),
    "plot": (plot_args, "dalitz.png", is_png),
}


@pytest.fixture(autouse=True)
def _hang_guard() -> Iterator[None]:
    """A command that waits on a FIFO for ever fails the test instead of hanging the run."""

    def alarm(_signum: int, _frame: object) -> None:
        msg = f"did not end within {HANG_GUARD_S} s"
        raise TimeoutError(msg)

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(HANG_GUARD_S)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


@pytest.fixture
def umask_027() -> Iterator[int]:
    previous = os.umask(0o027)
    yield 0o027
    os.umask(previous)


def run(args: list[str]) -> Result:
    return CliRunner().invoke(main, args)


def one_error_line(result: Result) -> str:
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), lines
    return lines[0]


@pytest.mark.parametrize("command", sorted(WHOLE_FILE))
def test_an_existing_file_is_replaced_only_with_overwrite(
    command: str, tmp_path: Path, umask_027: int
) -> None:
    make_args, name, valid = WHOLE_FILE[command]
    out = tmp_path / name
    out.write_bytes(b"precious")
    line = one_error_line(run(make_args(out)))
    assert f"{out}: exists already" in line and "--overwrite" in line
    assert out.read_bytes() == b"precious"

    result = run([*make_args(out), "--overwrite"])
    assert result.exit_code == 0, result.output
    assert valid(out.read_bytes())
    assert stat.S_IMODE(out.stat().st_mode) == 0o666 & ~umask_027
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]  # nothing staged left


def test_get_replaces_files_in_its_folder_only_with_overwrite(
    tmp_path: Path, umask_027: int
) -> None:
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / "manifest.json").write_bytes(b"precious")
    args = ["get", REF, "--format", "c", "-o", str(folder)]
    line = one_error_line(run(args))
    assert f"{folder / 'manifest.json'}: exists already" in line and "--overwrite" in line
    assert sorted(p.name for p in folder.iterdir()) == ["manifest.json"]  # nothing written
    assert (folder / "manifest.json").read_bytes() == b"precious"

    result = run([*args, "--overwrite"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in folder.iterdir()) == ["intensity.c", "manifest.json"]
    assert is_json((folder / "manifest.json").read_bytes())
    for path in folder.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask_027


@pytest.mark.parametrize("command", sorted(WHOLE_FILE))
def test_a_fifo_nothing_reads_is_refused_not_replaced(command: str, tmp_path: Path) -> None:
    make_args, name, _ = WHOLE_FILE[command]
    fifo = tmp_path / name
    os.mkfifo(fifo)
    for extra in ([], ["--overwrite"]):
        line = one_error_line(run([*make_args(fifo), *extra]))
        assert f"{fifo}: is a FIFO that nothing reads" in line
        assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
        assert sorted(p.name for p in tmp_path.iterdir()) == [name]


class FifoReader:
    """Reads a FIFO in a thread until its writer closes it (or ``timeout`` seconds pass).

    The FIFO is opened before the writer starts (without blocking), so a writer that opens
    it without blocking finds a reader.
    """

    def __init__(self, path: Path, timeout: float = 60.0) -> None:
        self.fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        self.data = bytearray()
        self.deadline = time.monotonic() + timeout
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        try:
            while time.monotonic() < self.deadline:
                ready, _, _ = select.select([self.fd], [], [], 0.2)
                if not ready:
                    continue
                try:
                    chunk = os.read(self.fd, 1 << 16)
                except BlockingIOError:
                    continue
                if chunk:
                    self.data += chunk
                elif self.data:  # the writer closed it
                    return
                else:  # no writer yet
                    time.sleep(0.05)
        finally:
            os.close(self.fd)

    def result(self) -> bytes:
        self.thread.join(max(0.0, self.deadline - time.monotonic()) + 1)
        return bytes(self.data)


@pytest.mark.parametrize("command", sorted(WHOLE_FILE))
def test_a_fifo_is_written_into_and_stays_a_fifo(command: str, tmp_path: Path) -> None:
    make_args, name, valid = WHOLE_FILE[command]
    fifo = tmp_path / name
    os.mkfifo(fifo)
    reader = FifoReader(fifo)
    result = run(make_args(fifo))  # no --overwrite needed: nothing is replaced
    data = reader.result()
    assert result.exit_code == 0, result.output
    assert valid(data)
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]


needs_root = pytest.mark.skipif(
    os.geteuid() != 0, reason="making or replacing a device node needs root"
)


@needs_root
@pytest.mark.parametrize("command", sorted(WHOLE_FILE))
def test_a_device_is_written_into_and_stays_a_device(command: str, tmp_path: Path) -> None:
    """A private null device (as /dev/null: character device 1, 3) named as the output."""
    make_args, name, _ = WHOLE_FILE[command]
    node = tmp_path / name
    os.mknod(node, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    result = run(make_args(node))
    assert result.exit_code == 0, result.output
    info = os.lstat(node)
    assert stat.S_ISCHR(info.st_mode) and info.st_rdev == os.makedev(1, 3)
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]


def _restore_dev_null(before: os.stat_result) -> None:
    """Put /dev/null back if the command under test replaced it (the finding's damage)."""
    info = os.lstat("/dev/null")
    if stat.S_ISCHR(info.st_mode) and info.st_rdev == before.st_rdev:
        return
    spare = Path("/dev/.modelstore-test-null")
    spare.unlink(missing_ok=True)
    os.mknod(spare, stat.S_IFCHR | 0o666, before.st_rdev)
    os.chmod(spare, stat.S_IMODE(before.st_mode))
    os.replace(spare, "/dev/null")


@needs_root
def test_dev_null_stays_a_device_when_named_as_the_output() -> None:
    """Issue 18, finding 5: as root, ``field ... -o /dev/null`` replaced /dev/null by a file.

    Should it happen again, /dev/null is put back before the test fails.
    """
    before = os.lstat("/dev/null")
    try:
        result = run(field_args(Path("/dev/null")))
        after = os.lstat("/dev/null")
    finally:
        _restore_dev_null(before)
    assert result.exit_code == 0, result.output
    assert stat.S_ISCHR(after.st_mode) and after.st_rdev == before.st_rdev
    assert after.st_ino == before.st_ino


@pytest.mark.parametrize("command", sorted(WHOLE_FILE))
def test_a_symbolic_link_is_neither_replaced_nor_written_through(
    command: str, tmp_path: Path
) -> None:
    make_args, name, _ = WHOLE_FILE[command]
    target = tmp_path / "precious.txt"
    target.write_bytes(b"precious")
    link = tmp_path / name
    link.symlink_to(target)
    for extra in ([], ["--overwrite"]):
        line = one_error_line(run([*make_args(link), *extra]))
        assert f"{link}: is a symbolic link" in line
        assert link.is_symlink() and target.read_bytes() == b"precious"


def test_get_neither_writes_through_a_linked_folder_nor_replaces_a_link(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "manifest.json").write_bytes(b"precious")
    link = tmp_path / "out"
    link.symlink_to(elsewhere)
    folder = tmp_path / "real"
    folder.mkdir()
    (folder / "manifest.json").symlink_to(elsewhere / "manifest.json")
    for extra in ([], ["--overwrite"]):
        args = ["get", REF, "--format", "c", *extra]
        line = one_error_line(run([*args, "-o", str(link)]))
        assert f"{link}: is a symbolic link" in line
        assert sorted(p.name for p in elsewhere.iterdir()) == ["manifest.json"]
        assert (elsewhere / "manifest.json").read_bytes() == b"precious"

        line = one_error_line(run([*args, "-o", str(folder)]))
        assert f"{folder / 'manifest.json'}: is a symbolic link" in line
        assert (folder / "manifest.json").is_symlink()
        assert sorted(p.name for p in folder.iterdir()) == ["manifest.json"]
