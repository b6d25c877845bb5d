"""Running a page's examples: its folder, its environment, its commands and Python sessions.

The conventions are in ``doc_examples``' docstring; this module runs what that one reads.
"""

from __future__ import annotations

import doctest
import io
import json
import os
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from doc_examples import (
    BIN,
    COMMAND_TIMEOUT_S,
    FLAGS,
    ROOT,
    SOURCE,
    STATEFUL,
    Block,
    DocExampleError,
    Step,
    expects_failure,
    joined,
    output_difference,
    page_name,
    read_blocks,
    s3_buckets,
    shell_steps,
)
from s3_server import s3_environment

# -- running --------------------------------------------------------------------------------


def user_env(home: Path, cache: Path, **extra: str) -> dict[str, str]:
    """A user's environment: this environment's python and modelstore first on PATH, a private
    HOME whose ``~/.config/modelstore`` is the config folder, the cache given, no trust
    settings of the caller's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MODELSTORE_", "XDG_"))}
    config = home / ".config" / "modelstore"
    home.mkdir(parents=True, exist_ok=True)
    env.update(
        HOME=str(home), MODELSTORE_CONFIG_DIR=str(config), MODELSTORE_CACHE_DIR=str(cache),
        TMPDIR=str(home), PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}",
        PYTHONPATH=os.pathsep.join([str(SOURCE), *filter(None, [env.get("PYTHONPATH")])]),
        **extra,
    )  # fmt: skip
    return env


def run_command(command: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """One command in its own ``bash -c``, stdout and stderr together; a non-zero exit fails
    with its output."""
    done = run_shell(command, cwd, env)
    if done.returncode != 0:
        msg = f"{command}\nexit {done.returncode}\n{done.stdout}"
        raise DocExampleError(msg)
    return done


def run_shell(command: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """One command in its own ``bash -c``, stdout and stderr together, whatever its exit."""
    if joined(command).lstrip().startswith(STATEFUL):
        msg = f"{command!r}: each command runs in its own shell here; this one changes only its own"
        raise DocExampleError(msg)
    return subprocess.run(
        ["bash", "-c", command], cwd=cwd, env=env, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True, timeout=COMMAND_TIMEOUT_S, check=False,
    )  # fmt: skip


@dataclass
class Ran:
    """What one command of a page printed."""

    step: Step
    done: subprocess.CompletedProcess[str]


@dataclass
class PageRun:
    """A page's examples run in order in one folder, with one environment and one namespace."""

    folder: Path
    env: dict[str, str]
    names: dict[str, Any] = field(default_factory=dict)
    ran: list[Ran] = field(default_factory=list)

    def run(self, block: Block) -> None:
        """Run one block; raises DocExampleError naming the block on any difference."""
        form = block.form
        if form == "shell":
            for step in shell_steps(block):
                self.run_step(block, step)
        elif form == "pycon":
            self.run_pycon(block)
        elif form == "file":
            assert block.file_name is not None
            (self.folder / block.file_name).write_text(block.body, encoding="utf-8")
        elif form == "json":
            try:
                json.loads(block.body)
            except ValueError as exc:
                raise DocExampleError(f"{block.name}: not JSON: {exc}") from exc
        elif form == "text":
            if block.synopsis:
                self.check_synopsis(block)
        else:
            raise DocExampleError(f"{block.name}: no recognised form ({block.lang!r})")

    def run_step(self, block: Block, step: Step) -> None:
        done = run_shell(step.command, self.folder, self.env)
        self.ran.append(Ran(step, done))
        where = f"{page_name(block.path)}:{step.line}: $ {step.command}"
        if done.returncode != 0 and not expects_failure(step.expected):
            raise DocExampleError(f"{where}\nexit {done.returncode}\n{done.stdout}")
        if done.returncode == 0 and expects_failure(step.expected):
            raise DocExampleError(f"{where}\nthe page shows an error; exit 0\n{done.stdout}")
        difference = output_difference(step.expected, done.stdout)
        if difference:
            raise DocExampleError(f"{where}\n{difference}")

    def run_pycon(self, block: Block) -> None:
        parser = doctest.DocTestParser()
        test = parser.get_doctest(block.body, self.names, block.name, str(block.path), block.line)
        report = io.StringIO()
        runner = doctest.DocTestRunner(optionflags=FLAGS)
        cwd = Path.cwd()
        saved = dict(os.environ)
        try:
            os.chdir(self.folder)
            os.environ.clear()
            os.environ.update(self.env)
            runner.run(test, out=report.write, clear_globs=False)
        finally:
            os.chdir(cwd)
            os.environ.clear()
            os.environ.update(saved)
        self.names = test.globs
        if runner.failures:
            raise DocExampleError(f"{block.name}:\n{report.getvalue()}")

    def check_synopsis(self, block: Block) -> None:
        """Every ``modelstore SUBCOMMAND ... --option`` line names what ``--help`` lists."""
        helps: dict[str, str] = {}
        problems = []
        for line in block.body.splitlines():
            words = line.split("#", 1)[0].split()
            if words[:1] != ["modelstore"]:
                continue
            depth = 2  # `modelstore cache leftovers`: a group's subcommand has its own --help
            while True:
                sub = " ".join(words[1:depth])
                if sub not in helps:
                    helps[sub] = run_command(
                        f"modelstore {sub} --help", self.folder, self.env
                    ).stdout
                listed = helps[sub].partition("\nCommands:\n")[2].split()
                if depth < len(words) and words[depth] in listed:
                    depth += 1
                    continue
                break
            options = re.findall(r"(?<![\w-])(--?[a-zA-Z][\w-]*)", " ".join(words[depth:]))
            problems += [f"{line.strip()}: {o}" for o in options if o not in helps[sub]]
        if problems:
            raise DocExampleError(f"{block.name}: options not in --help:\n" + "\n".join(problems))

    def command_output(self, word: str) -> subprocess.CompletedProcess[str]:
        """What the one command naming ``word`` (as a word) printed."""
        found = [r.done for r in self.ran if f" {word} " in f" {joined(r.step.command)} "]
        assert len(found) == 1, f"expected one `{word}` command, ran {[r.args for r in found]}"
        return found[0]


def write_page_inputs(folder: Path) -> None:
    """What every page's folder holds before its first command (doc_examples' docstring)."""
    import uproot
    import zarr
    from event_samples import SEED_SIGMA1, SEED_SIGMA2

    weight = np.linspace(0.5, 1.2, len(SEED_SIGMA1))
    with uproot.recreate(folder / "phsp.root") as file:
        branches = {"msq_piK": SEED_SIGMA1, "msq_Kp": SEED_SIGMA2, "weight": weight}
        file.mktree("Lc2ppiK", dict.fromkeys(branches, np.float64))
        file["Lc2ppiK"].extend(branches)
    group = zarr.open_group(str(folder / "events.zarr"), mode="w")
    for name, values in {"msq_piK": SEED_SIGMA1, "msq_Kp": SEED_SIGMA2}.items():
        group.create_array(name, data=values, chunks=(4,))
    (folder / "docs" / "images").mkdir(parents=True)
    (folder / "benchmarks").symlink_to(ROOT / "benchmarks")


class PageRuns:
    """Starts a page's run in a fresh folder; the unmarked blocks' run is kept per page."""

    def __init__(self, request: pytest.FixtureRequest, factory: pytest.TempPathFactory) -> None:
        self._request = request
        self._factory = factory
        # the test session's private cache (tests/conftest.py), so that native builds are shared
        self._cache = Path(os.environ.get("MODELSTORE_CACHE_DIR") or factory.mktemp("cache"))
        self._done: dict[Path, PageRun] = {}

    def start(self, page: Path) -> PageRun:
        """A fresh folder, environment and namespace for ``page``, its buckets created."""
        tmp = self._factory.mktemp(page.stem)
        folder = tmp / "work"
        folder.mkdir()
        write_page_inputs(folder)
        extra: dict[str, str] = {}
        buckets = s3_buckets(read_blocks(page))
        if buckets:
            import boto3

            endpoint = self._request.getfixturevalue("s3_endpoint")
            extra = s3_environment(endpoint, tmp)
            client = boto3.client(
                "s3", endpoint_url=endpoint, region_name="us-east-1",
                aws_access_key_id=extra["AWS_ACCESS_KEY_ID"],
                aws_secret_access_key=extra["AWS_SECRET_ACCESS_KEY"],
            )  # fmt: skip
            existing = {b["Name"] for b in client.list_buckets().get("Buckets", [])}
            for name in sorted(buckets):
                if name in existing:  # left by an earlier run of the page: emptied
                    listed = client.list_objects_v2(Bucket=name).get("Contents", [])
                    for item in listed:
                        client.delete_object(Bucket=name, Key=item["Key"])
                else:
                    client.create_bucket(Bucket=name)
        return PageRun(folder, user_env(tmp / "home", self._cache, **extra))

    def unmarked(self, page: Path) -> PageRun:
        """The page's unmarked blocks run in order (once per test process)."""
        if page not in self._done:
            run = self.start(page)
            for block in read_blocks(page):
                if runs_by_default(block):
                    run.run(block)
            self._done[page] = run
        return self._done[page]


def runs_by_default(block: Block) -> bool:
    """Whether the fast suite runs the block: not marked slow or upstream, not skipped."""
    return not block.marks and block.skip is None
