"""The examples of README.md and docs/*.md, read from the pages and run as a user would.

Conventions for the pages (tests/docs/test_doc_examples.py runs them):

* A fenced block is one of these forms, told by its language:

  - ``console`` (also ``bash``, ``sh``, ``shell``): a terminal session. A line starting with
    ``$ `` is a command; it goes on over lines ending in ``\\`` and over lines starting with
    ``> `` (the shell's continuation prompt); every other line, up to the next command, is the
    output it shows (stdout and stderr together, as in a terminal). Each command runs in its
    own ``bash -c`` (so ``cd`` and ``export`` are refused: they would change nothing).
  - ``pycon``: an interactive Python session (``>>>`` and ``...`` prompts, the output below),
    run by doctest. The blocks of one page share their names, in page order.
  - ``python`` whose first line is a comment naming a file (``# build_model.py: ...``): that
    file, written into the page's folder for a later command to run.
  - ``json``: must parse as JSON.
  - ``text``: no example (a diagram, a folder layout). Marked ``<!-- doctest: synopsis -->``,
    its ``modelstore SUBCOMMAND --option`` lines are checked against ``--help``: every
    subcommand and every option a line names must exist.

  Any other block (no language, or a ``python`` block naming no file) fails the test, unless
  marked skip; so a new example cannot slip through unrun.
* Output is compared as doctest compares it, with ELLIPSIS (``...`` stands for anything: a time,
  a digest; a line of just ``...`` for any lines, none included) and NORMALIZE_WHITESPACE. A
  command must exit with status 0, unless the output shown holds an ``Error:`` line (the
  one-line error of the command line).
* An HTML comment on the line before the fence marks a block: ``<!-- doctest: slow -->`` (takes
  minutes), ``<!-- doctest: upstream -->`` (needs the upstream package and builds its models;
  both: ``<!-- doctest: slow, upstream -->``), run only under those pytest markers, and
  ``<!-- doctest: skip: REASON -->`` for what cannot run in a test at all (a remote server, a
  private key); keep those rare. A marked block runs after the page's unmarked blocks before it.
* Each page runs in a fresh folder, which holds ``phsp.root`` (the seed's 8 events: tree
  ``Lc2ppiK``, branches ``msq_piK``, ``msq_Kp``, ``weight``), ``events.zarr`` (the same events as
  zarr), an empty ``docs/images/`` and ``benchmarks`` (the repository's). Commands see a private
  HOME (``~/.config/modelstore`` is ``MODELSTORE_CONFIG_DIR``), the test run's private cache
  (tests/conftest.py; native builds are shared), this interpreter's ``python`` and
  ``modelstore`` first on PATH, and, where the page names ``s3://BUCKET/`` URLs, those buckets
  on moto's S3 server on loopback (reached through ``AWS_ENDPOINT_URL_S3``).
"""

from __future__ import annotations

import doctest
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import modelstore

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BIN = Path(sys.executable).parent
SOURCE = Path(modelstore.__file__).resolve().parents[1]  # the modelstore this test imports
COMMAND_TIMEOUT_S = 1800  # a hang guard, not a time limit

FENCE = re.compile(r"^```([\w+-]*)[ \t]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
MARKER = re.compile(r"<!--\s*doctest:\s*(.*?)\s*-->[ \t]*\n\Z")
INLINE = re.compile(r"`([^`]+)`")
SHELLS = ("console", "bash", "sh", "shell")
MARKS = ("slow", "upstream")
STATEFUL = ("cd ", "export ", "source ", ". ", "alias ")
FILE_LINE = re.compile(r"#\s*([\w.-]+\.\w+)\b")
S3_BUCKET = re.compile(r"s3://([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])/")
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
ANY_LINES = re.compile(r"\s*^\.\.\.[ \t]*$\s*", re.MULTILINE)


class DocExampleError(AssertionError):
    """An example of a page that does not run, or does not print what the page shows."""


# -- reading the pages ----------------------------------------------------------------------


@dataclass(frozen=True)
class Block:
    """One fenced block: where it is, its language, its text and the marks written before it."""

    path: Path
    line: int  # of the opening fence, 1-based
    lang: str
    body: str
    marks: tuple[str, ...] = ()
    skip: str | None = None  # the reason, for ``<!-- doctest: skip: REASON -->``
    synopsis: bool = False

    @property
    def name(self) -> str:
        """``docs/eval.md:260``: the page and line, as test ids and messages give it."""
        return f"{page_name(self.path)}:{self.line}"

    @property
    def form(self) -> str | None:
        """``shell``, ``pycon``, ``file``, ``json`` or ``text``; None for no recognised form."""
        if self.lang in SHELLS:
            return "shell" if any(ln.startswith("$ ") for ln in self.body.splitlines()) else None
        if self.lang == "python":
            return "file" if self.file_name else None
        if self.lang in ("pycon", "json", "text"):
            return self.lang
        return None

    @property
    def file_name(self) -> str | None:
        """The file a ``python`` block is, from its first line (``# build_model.py: ...``)."""
        first = self.body.split("\n", 1)[0]
        found = FILE_LINE.match(first)
        return found.group(1) if found else None


def page_name(path: Path) -> str:
    """A page's path as messages give it: from the repository root when it lies there."""
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def parse_marker(text: str) -> tuple[tuple[str, ...], str | None, bool]:
    """The marks, skip reason and synopsis flag of a ``<!-- doctest: ... -->`` comment's text."""
    if text.startswith("skip"):
        reason = text.removeprefix("skip").lstrip(":").strip()
        if not reason:
            raise DocExampleError("`<!-- doctest: skip -->` needs a reason: `skip: REASON`")
        return (), reason, False
    words = [w.strip() for w in text.split(",") if w.strip()]
    unknown = [w for w in words if w not in (*MARKS, "synopsis")]
    if unknown or not words:
        raise DocExampleError(f"unknown doctest marker {text!r}: slow, upstream, synopsis, skip")
    return tuple(w for w in words if w in MARKS), None, "synopsis" in words


def read_blocks(path: Path, text: str | None = None) -> list[Block]:
    """Every fenced block of a page, in order, with the marker on the line before it."""
    text = path.read_text(encoding="utf-8") if text is None else text
    blocks = []
    for found in FENCE.finditer(text):
        before = text[: found.start()]
        marker = MARKER.search(before)
        marks, skip, synopsis = parse_marker(marker.group(1)) if marker else ((), None, False)
        blocks.append(Block(path, before.count("\n") + 1, found.group(1), found.group(2),
                            marks, skip, synopsis))  # fmt: skip
    return blocks


def all_blocks() -> list[Block]:
    """The blocks of README.md and docs/*.md."""
    return [block for page in DOCUMENTS for block in read_blocks(page)]


def inline_code(text: str) -> list[str]:
    """The inline code spans outside fenced blocks, line breaks inside a span read as spaces."""
    prose = FENCE.sub("", text)
    return [" ".join(span.split()) for span in INLINE.findall(prose)]


@dataclass(frozen=True)
class Step:
    """One command of a shell block and the output the page shows for it."""

    command: str
    expected: str
    line: int  # in the page


def shell_steps(block: Block) -> list[Step]:
    """The commands of a shell block, each with the lines the page shows after it."""
    steps: list[Step] = []
    command: list[str] = []
    expected: list[str] = []
    start = 0
    for at, line in enumerate(block.body.splitlines(), start=block.line + 1):
        in_command = bool(command) and not expected
        if in_command and (command[-1].endswith("\\") or line.startswith("> ")):
            command.append(line.removeprefix("> "))
        elif line.startswith("$ "):
            if command:
                steps.append(Step("\n".join(command), "".join(f"{e}\n" for e in expected), start))
            command, expected, start = [line[2:]], [], at
        elif not command:
            if line.strip():
                raise DocExampleError(f"{block.name}: output before the first `$ ` command")
        else:
            expected.append(line)
    if command:
        steps.append(Step("\n".join(command), "".join(f"{e}\n" for e in expected), start))
    return steps


def joined(command: str) -> str:
    """A command with its ``\\``-continued lines joined (as bash reads them)."""
    return re.sub(r"\\\n\s*", " ", command)


# -- comparing ------------------------------------------------------------------------------


def output_difference(expected: str, actual: str) -> str | None:
    """None when ``actual`` is what the page shows (doctest's ELLIPSIS, NORMALIZE_WHITESPACE),
    else doctest's report of the difference."""
    checker = doctest.OutputChecker()
    # a line of just ``...`` stands for any lines, none included (doctest's own ``...`` needs
    # the whitespace around it)
    expected = ANY_LINES.sub("...", expected)
    if not expected.endswith("\n") and expected:
        expected += "\n"
    if actual and not actual.endswith("\n"):
        actual += "\n"
    if checker.check_output(expected, actual, FLAGS):
        return None
    example = doctest.Example("command", expected)
    return checker.output_difference(example, actual, FLAGS)


def expects_failure(expected: str) -> bool:
    """Whether the output shown is a failed command's (a line starting ``Error:``)."""
    return any(line.startswith("Error:") for line in expected.splitlines())


def s3_buckets(blocks: list[Block]) -> set[str]:
    """The buckets the runnable shell and Python blocks name in ``s3://BUCKET/`` URLs."""
    return {
        name
        for block in blocks
        if block.form in ("shell", "pycon") and block.skip is None
        for name in S3_BUCKET.findall(block.body)
    }
