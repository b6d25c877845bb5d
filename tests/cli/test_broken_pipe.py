"""A closed stdout (``modelstore show default | head``) ends every command quietly.

Like ``git`` or ``ls``: exit status 141 (128 + SIGPIPE), nothing on stderr; no traceback and
no ``Error: Broken pipe``. The reader is a real pipe that is closed before the command writes.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

ENTRY = "from modelstore.cli import main; main()"


def run_with_closed_stdout(*args: str) -> tuple[int, str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", ENTRY, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # nothing reads: the command's first write (or flush) meets EPIPE
    stderr = proc.stderr.read().decode(errors="replace")
    return proc.wait(timeout=120), stderr


@pytest.mark.parametrize(
    "args",
    [
        ("list",),
        ("show", "default"),
        ("show", "default", "--json"),
        ("cache", "list"),
        ("--help",),
        ("--version",),
        ("show", "--help"),
    ],
    ids=" ".join,
)
def test_a_closed_stdout_ends_quietly(args: tuple[str, ...]) -> None:
    code, stderr = run_with_closed_stdout(*args)
    assert stderr == ""
    assert code == 141


def test_errors_still_go_to_stderr_with_a_closed_stdout() -> None:
    code, stderr = run_with_closed_stdout("show", "no-such-model")
    assert code == 1
    assert stderr.startswith("Error: no model 'no-such-model'")
