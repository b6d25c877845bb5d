"""Every command, hostile arguments and environment: one line on stderr, never a traceback.

The commands are found by walking the click group, so a new command is covered as soon as it
is registered. Each run goes through ``click.testing.CliRunner`` with exceptions caught: the
run passes if it ended by ``SystemExit`` (click's own exit, a usage error or a library error
turned into one line) and printed no traceback. A run that hangs (a FIFO read, say) is stopped
by an alarm and fails.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import TYPE_CHECKING

import click
import pytest
from click.testing import CliRunner
from event_samples import REF, SEED_SIGMA1, SEED_SIGMA2, write_root

from modelstore.cli import main

if TYPE_CHECKING:
    from collections.abc import Iterator

    from modelstore.registry import Registry

ALARM_S = 120


def leaf_commands(group: click.Group = main, path: tuple[str, ...] = ()) -> Iterator[tuple]:
    for name, command in sorted(group.commands.items()):
        if isinstance(command, click.Group):
            yield from leaf_commands(command, (*path, name))
        else:
            yield (*path, name), command


COMMANDS = dict(leaf_commands())
# Commands that would do heavy work with no arguments at all (build every model, re-evaluate
# every version): run those against a missing registry only.
HEAVY_WITHOUT_ARGUMENTS = {("build",), ("publish",), ("verify",), ("cache", "fetch")}


@pytest.fixture
def places(tmp_path: Path) -> dict[str, Path]:
    """Hostile paths: missing, garbage, a FIFO, a folder, a file where a folder is expected."""
    fifo = tmp_path / "fifo.csv"
    os.mkfifo(fifo)
    garbage = tmp_path / "garbage.root"
    garbage.write_bytes(b"\x00\xffnot anything\n" * 10)
    folder = tmp_path / "a-folder"
    folder.mkdir()
    return {
        "missing": tmp_path / "no" / "such" / "file.csv",
        "garbage": garbage,
        "fifo": fifo,
        "folder": folder,
        "input": write_root(tmp_path / "in.root", SEED_SIGMA1, SEED_SIGMA2),
    }


def hostile_values(places: dict[str, Path]) -> list[str]:
    return [
        "",
        "../x",
        "default@9.9.9",
        "default@../../etc",
        "٠",
        "9" * 400,
        "-1",
        "\x1b[2J",
        "x\x00y",
        str(places["missing"]),
        str(places["garbage"]),
        str(places["fifo"]),
        str(places["folder"]),
        "ftp://x",
    ]


def run(args: list[str], env: dict[str, str] | None = None, cwd: Path | None = None) -> object:
    def alarm(_signum: int, _frame: object) -> None:
        msg = f"modelstore {args} did not end within {ALARM_S} s"
        raise TimeoutError(msg)

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(ALARM_S)
    try:
        runner = CliRunner()
        if cwd is not None:
            with runner.isolated_filesystem(temp_dir=cwd):
                return runner.invoke(main, args, env=env, catch_exceptions=True)
        return runner.invoke(main, args, env=env, catch_exceptions=True)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def check(result: object, args: list[str]) -> None:
    shown = f"modelstore {args!r}"
    exc = result.exception
    assert exc is None or isinstance(exc, SystemExit), f"{shown} raised {type(exc).__name__}: {exc}"
    assert "Traceback" not in result.output, f"{shown}:\n{result.output}"


def invocations(command: click.Command, value: str) -> list[list[str]]:
    """Arguments for ``command``: ``value`` for every argument and required option; then each
    optional option that takes a value set to ``value`` too."""
    required: list[str] = []
    for param in command.params:
        if isinstance(param, click.Argument):
            required.append(value)
        elif param.required:
            required += [param.opts[0], value]
    runs = [required]
    for param in command.params:
        if isinstance(param, click.Option) and not param.required and not param.is_flag:
            if param.name == "dask_address":
                # would start a cluster for a valid ref; covered by tests/events/test_distributed.py
                continue
            runs.append([*required, param.opts[0], value])
    return runs


@pytest.mark.parametrize("path", sorted(COMMANDS), ids=" ".join)
def test_every_command_with_hostile_arguments(
    path: tuple[str, ...], places: dict[str, Path], small_registry: Registry, tmp_path: Path
) -> None:
    command = COMMANDS[path]
    env = {"MODELSTORE_CACHE_DIR": str(tmp_path / "cache")}
    registry = ["--registry", str(small_registry.root)]
    # no arguments at all: against a missing registry where that would be heavy work
    if path in HEAVY_WITHOUT_ARGUMENTS:
        args = ["--registry", str(tmp_path / "nowhere"), *path]
    else:
        args = [*registry, *path]
    check(run(args, env, cwd=tmp_path), args)
    for value in hostile_values(places):
        for extra in invocations(command, value):
            args = [*registry, *path, *extra]
            check(run(args, env, cwd=tmp_path), args)


@pytest.mark.parametrize("path", sorted(COMMANDS), ids=" ".join)
@pytest.mark.parametrize(
    "registry", ["ftp://x", "/nonexistent/registry", "", "file:///nonexistent", "s3://"]
)
def test_every_command_with_a_hostile_registry(
    path: tuple[str, ...], registry: str, tmp_path: Path
) -> None:
    env = {"MODELSTORE_CACHE_DIR": str(tmp_path / "cache")}
    command = COMMANDS[path]
    needs = [REF if isinstance(p, click.Argument) else None for p in command.params]
    args = ["--registry", registry, *path, *[a for a in needs if a]]
    if path == ("eval",):
        args += ["-i", "in.root", "-o", "out.csv"]
    elif path == ("plot",):
        args += ["-o", "out.png"]
    elif path in (("sign",),):
        args += ["--key", "key.pem"]
    elif path == ("publish",):
        args += ["--version", "9.9.9", "no-such-model"]
    check(run(args, env, cwd=tmp_path), args)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("MODELSTORE_REGISTRY", "/nonexistent"),
        ("MODELSTORE_REGISTRY", "ftp://x"),
        ("MODELSTORE_NUM_THREADS", "abc"),
        ("MODELSTORE_NUM_THREADS", "-5"),
        ("MODELSTORE_NUM_THREADS", "9" * 40),
        ("MODELSTORE_NATIVE_ISA", "bogus"),
        ("MODELSTORE_OFFLINE", "maybe"),
        ("MODELSTORE_REQUIRE_SIGNATURE", "maybe"),
        ("MODELSTORE_CACHE_DIR", "FIFO"),
        ("MODELSTORE_CACHE_DIR", "FILE"),
    ],
)
@pytest.mark.parametrize(
    "args",
    [
        ["list"],
        ["show", REF],
        ["verify", REF],
        ["eval", REF, "-i", "INPUT", "-o", "out.csv", "--backend", "native"],
        ["eval", REF, "-i", "INPUT", "-o", "out.csv"],
    ],
    ids=["list", "show", "verify", "eval-native", "eval-auto"],
)
def test_hostile_environment(
    variable: str,
    value: str,
    args: list[str],
    places: dict[str, Path],
    tmp_path: Path,
) -> None:
    if value == "FIFO":
        value = str(places["fifo"])
    elif value == "FILE":
        value = str(places["garbage"])
    args = [str(places["input"]) if a == "INPUT" else a for a in args]
    env = {variable: value}
    check(run(args, env, cwd=tmp_path), args)


@pytest.mark.parametrize(
    "case",
    [
        ["eval", REF, "-i", "@fifo", "-o", "out.csv"],
        ["eval", REF, "-i", "@garbage", "-o", "out.csv"],
        ["eval", REF, "-i", "@input", "-o", "@fifo"],
        ["eval", REF, "-i", "@input", "-o", "@fifo", "--overwrite"],
        ["eval", REF, "-i", "@input", "-o", "@folder", "--output-format", "csv", "--overwrite"],
        ["eval", REF, "-i", "@input", "-o", "out.csv", "--chunk-size", "9" * 30],
        ["eval", REF, "-i", "@input", "-o", "out.csv", "--parameter", "m0=1e999999"],
        ["eval", REF, "-i", "@input", "-o", "out.csv", "--sigma1-branch", ""],
        ["eval", REF, "-i", "@input", "-o", "/proc/forbidden/out.csv"],
        ["get", REF, "-o", "@fifo"],
        ["get", REF, "-o", "@garbage"],
        ["get", REF, "--format", "c", "-o", "out"],
        ["plot", REF, "-o", "@fifo"],
        ["plot", REF, "-o", "out.png", "--resolution", "9" * 30],
        ["verify", "--lock", "@fifo"],
        ["verify", "--lock", "@garbage"],
        ["sign", "--key", "@fifo"],
        ["publish", "--version", "9.9.9", "--sign", "@fifo", "default"],
        ["push", "ftp://x"],
        ["push", "@fifo"],
        ["push", "@garbage"],
        ["keygen", "@folder"],
        ["keygen", "@fifo"],
        ["lock", "default@9.9.9"],
        ["show", "default@99999999999999999999.0.0"],
    ],
    ids=lambda case: " ".join(case)[:60],
)
def test_hand_picked_cases(
    case: list[str], places: dict[str, Path], small_registry: Registry, tmp_path: Path
) -> None:
    args = [str(places[a[1:]]) if a.startswith("@") else a for a in case]
    env = {"MODELSTORE_CACHE_DIR": str(tmp_path / "cache")}
    args = ["--registry", str(small_registry.root), *args]
    check(run(args, env, cwd=tmp_path), args)
