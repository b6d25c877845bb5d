"""docs/publishing.md, run as a user would: the page's own code blocks, read from the page.

"From an ampform-dpd model to a signed, shared registry": the build script is written to the
file the bash block runs; the bash block runs command by command, each in its own ``bash -c``
in a temporary folder, with the ``python`` and ``modelstore`` of this interpreter's environment
first on PATH, a private HOME (so ``~/.config/modelstore`` is the test's) and a private cache.
``s3://bucket/`` becomes a new bucket on moto's S3 server on loopback, reached through
``AWS_ENDPOINT_URL_S3`` (docs/sharing.md: endpoints "come from the usual places"); every
other character of the commands is the page's. Then the output the page shows, the
"Others then use it" commands (inline code of the page) as another user from the pushed copy,
and the Python block. Nothing here repeats the page's commands: edit the page and this test
runs the new text.
"""

from __future__ import annotations

import os
import pickle
import re
import runpy
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from s3_server import create_bucket, s3_environment

import modelstore
from modelstore import Registry, published_model
from modelstore.errors import SignatureError

pytest.importorskip("ampform_dpd")
pytest.importorskip("cloudpickle")

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "publishing.md"
SECTION = "## From an ampform-dpd model to a signed, shared registry"
DOC_BUCKET = "s3://bucket/"
BIN = Path(sys.executable).parent
SOURCE = Path(modelstore.__file__).resolve().parents[1]  # the modelstore this test imports
COMMAND_TIMEOUT_S = 600  # a hang guard, not a time limit

FENCE = re.compile(r"^```([\w+-]*)[ \t]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
INLINE = re.compile(r"`([^`]+)`")
NUMBER = re.compile(r"(?<![\w.@])\d+\.\d+(?:e[-+]?\d+)?(?![\w.])")
STATEFUL = ("cd ", "export ", "source ", ". ", "alias ")


# -- reading the page ----------------------------------------------------------------------


@dataclass(frozen=True)
class Block:
    lang: str
    body: str


def section(text: str, heading: str) -> str:
    """The text from ``heading`` up to the next heading of the same level."""
    start = text.index(heading + "\n")
    level = heading.split(" ", 1)[0] + " "
    end = text.find("\n" + level, start + len(heading))
    return text[start:] if end < 0 else text[start:end]


def fenced_blocks(text: str) -> list[Block]:
    """Every fenced code block, with its language (``""`` when the fence names none)."""
    return [Block(m.group(1), m.group(2)) for m in FENCE.finditer(text)]


def inline_code(text: str) -> list[str]:
    """The inline code spans outside fenced blocks, line breaks inside a span read as spaces."""
    prose = FENCE.sub("", text)
    return [" ".join(span.split()) for span in INLINE.findall(prose)]


def commands(bash: str) -> list[str]:
    """The commands of a bash block: ``\\``-continued lines joined, blank and comment lines out."""
    joined = re.sub(r"\\\n\s*", " ", bash)
    return [
        line for line in joined.splitlines() if line.strip() and not line.lstrip().startswith("#")
    ]


def output_pattern(expected: str) -> re.Pattern[str]:
    """A line the page shows as output, as a pattern: decimal numbers (times, deviations) and
    ``...`` match any value, runs of blanks any blanks; everything else literally."""
    parts = []
    for word in expected.split():
        pieces = re.split(r"(\.\.\.)", word)
        word_pattern = ""
        for piece in pieces:
            if piece == "...":
                word_pattern += r"\S*"
                continue
            last = 0
            for number in NUMBER.finditer(piece):
                word_pattern += re.escape(piece[last : number.start()])
                word_pattern += r"\d+(?:\.\d+)?(?:e[-+]?\d+)?"
                last = number.end()
            word_pattern += re.escape(piece[last:])
        parts.append(word_pattern)
    return re.compile(r"\s*" + r"\s+".join(parts) + r"\s*")


def missing_output(expected: str, actual: str) -> list[str]:
    """The lines of ``expected`` that ``actual`` does not show, in the page's order."""
    lines = actual.splitlines()
    missing, at = [], 0
    for line in expected.splitlines():
        pattern = output_pattern(line)
        found = next((i for i in range(at, len(lines)) if pattern.fullmatch(lines[i])), None)
        if found is None:
            missing.append(line)
        else:
            at = found + 1
    return missing


@dataclass(frozen=True)
class Page:
    build: Block
    script_name: str
    commands: list[str]
    output: str
    python: Block
    inline: list[str]

    def inline_starting(self, prefix: str) -> str:
        spans = [s for s in self.inline if s.startswith(prefix)]
        assert len(spans) == 1, f"docs/publishing.md: expected one `{prefix}...`, found {spans}"
        return spans[0]


def read_page(text: str) -> Page:
    """The blocks of the section, by language: build script, shell commands, output, Python."""
    part = section(text, SECTION)
    blocks = fenced_blocks(part)
    python = [b for b in blocks if b.lang == "python"]
    bash = [b for b in blocks if b.lang == "bash"]
    output = [b for b in blocks if b.lang == ""]
    assert (len(python), len(bash), len(output)) == (2, 1, 1), [b.lang for b in blocks]
    name = re.match(r"# (\S+\.py)\b", python[0].body)
    assert name, "the build block's first line names its file (# build_model.py: ...)"
    return Page(python[0], name.group(1), commands(bash[0].body), output[0].body,
                python[1], inline_code(part))  # fmt: skip


# -- running it ----------------------------------------------------------------------------


class DocCommandError(AssertionError):
    pass


def run_command(command: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """One command of the page in its own ``bash -c``; a non-zero exit fails with its output."""
    if command.startswith(STATEFUL):
        msg = f"{command!r}: each command runs in its own shell here; this one changes only its own"
        raise DocCommandError(msg)
    done = subprocess.run(
        ["bash", "-c", command], cwd=cwd, env=env, capture_output=True, text=True,
        timeout=COMMAND_TIMEOUT_S, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        msg = f"{command}\nexit {done.returncode}\n{done.stdout}{done.stderr}"
        raise DocCommandError(msg)
    return done


def user_env(home: Path, cache: Path, **extra: str) -> dict[str, str]:
    """A user's environment: this environment's python and modelstore first on PATH, a private
    HOME (the config folder is ~/.config/modelstore) and cache, no trust settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MODELSTORE_", "XDG_"))}
    home.mkdir(parents=True, exist_ok=True)
    env.update(
        HOME=str(home), MODELSTORE_CACHE_DIR=str(cache),
        PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}",
        PYTHONPATH=os.pathsep.join([str(SOURCE), *filter(None, [env.get("PYTHONPATH")])]),
        **extra,
    )  # fmt: skip
    return env


@dataclass(frozen=True)
class Published:
    folder: Path  # where the publisher ran the commands
    url: str  # the pushed copy, s3://<new bucket>/models
    s3_env: dict[str, str]
    runs: list[subprocess.CompletedProcess[str]]

    def run_of(self, word: str) -> subprocess.CompletedProcess[str]:
        found = [r for r in self.runs if f" {word} " in f" {r.args[-1]} "]
        assert len(found) == 1, f"expected one `{word}` command, ran {[r.args for r in found]}"
        return found[0]


@pytest.fixture(scope="module")
def page() -> Page:
    return read_page(DOC.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def published(page: Page, s3_endpoint: str, tmp_path_factory: pytest.TempPathFactory) -> Published:
    """The publisher's session: the build script, then the bash block, command by command."""
    if not (BIN / "modelstore").exists():
        pytest.skip(f"no modelstore command next to {sys.executable} (package not installed)")
    tmp = tmp_path_factory.mktemp("publishing-doc")
    folder = tmp / "publisher"
    folder.mkdir()
    (folder / page.script_name).write_text(page.build.body, encoding="utf-8")
    s3_env = s3_environment(s3_endpoint, tmp)
    with pytest.MonkeyPatch.context() as mp:
        for name, value in s3_env.items():
            mp.setenv(name, value)
        bucket = create_bucket(s3_endpoint)
    env = user_env(tmp / "publisher-home", tmp / "publisher-cache", **s3_env)
    runs = []
    assert any(DOC_BUCKET in c for c in page.commands), page.commands
    for command in page.commands:
        runs.append(run_command(command.replace(DOC_BUCKET, f"s3://{bucket}/"), folder, env))
    return Published(folder, f"s3://{bucket}/models", s3_env, runs)


@pytest.fixture
def other_user(published: Published, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Someone else, here and in this process: own folder, config and cache, the S3 endpoint."""
    for name in [k for k in os.environ if k.startswith("MODELSTORE_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("MODELSTORE_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("MODELSTORE_CACHE_DIR", str(tmp_path / "cache"))
    for name, value in published.s3_env.items():
        monkeypatch.setenv(name, value)
    folder = tmp_path / "other"
    folder.mkdir()
    return folder


def _published_model_span(page: Page, url: str) -> Any:
    """``published_model("d0-kpipi0", registry=...)`` of the page, with the pushed copy's URL
    for the ``...`` (the page leaves it open)."""
    span = page.inline_starting("published_model(")
    assert "registry=..." in span, span
    code = span.replace("registry=...", "registry=registry")
    return eval(code, {"published_model": published_model, "registry": url})  # noqa: S307


# -- the tests -----------------------------------------------------------------------------


def test_the_commands_publish_verify_and_push_a_signed_registry(published: Published) -> None:
    keygen = published.run_of("keygen").stdout
    key_id = re.search(r"ed25519:[0-9a-f]{32}", keygen)
    assert key_id, keygen
    verify = published.run_of("verify").stdout
    assert re.search(r"\b0 failed, 0 not checked", verify), verify
    for backend in ("native", "jax", "numpy"):
        assert re.search(rf"^OK .*numeric/{backend}", verify, re.MULTILINE), verify
    push = published.run_of("push")
    assert published.url in push.stdout, push.stdout
    assert f"index signed by {key_id.group(0)}" in push.stdout, push.stdout


def test_publish_prints_what_the_page_shows(page: Page, published: Published) -> None:
    publish = published.run_of("publish").stdout
    assert not missing_output(page.output, publish), (page.output, publish)


def test_others_who_do_not_trust_the_key_are_refused(
    page: Page, published: Published, other_user: Path
) -> None:
    with pytest.raises(SignatureError, match="none of which this client trusts"):
        _published_model_span(page, published.url)


def test_others_trusting_the_key_evaluate_the_pushed_copy_natively(
    page: Page, published: Published, other_user: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The page's ``published_model(...)`` and ``modelstore ... eval`` from the S3 copy, by
    someone who was given ``me.pub`` and names it in MODELSTORE_TRUSTED_KEYS (docs/sharing.md)."""
    pytest.importorskip("uproot")
    pyarrow_parquet = pytest.importorskip("pyarrow.parquet")
    from event_samples import write_root

    given = shutil.copy(published.folder / "me.pub", other_user / "publisher.pub")
    monkeypatch.setenv("MODELSTORE_TRUSTED_KEYS", str(given))
    model = _published_model_span(page, published.url)
    assert model.backend == "native"
    reference = model.reference()
    values = model.intensity(reference["sigma1"], reference["sigma2"])
    np.testing.assert_allclose(values, reference["intensity"], rtol=1e-9, equal_nan=True)

    inside = np.flatnonzero(np.isfinite(reference["intensity"]))[::10]
    write_root(other_user / "events.root", reference["sigma1"][inside], reference["sigma2"][inside])
    command = page.inline_starting("modelstore --registry s3://bucket/models eval")
    env = user_env(other_user / "home", other_user / "cache", **published.s3_env,
                   MODELSTORE_TRUSTED_KEYS=str(given))  # fmt: skip
    done = run_command(command.replace(DOC_BUCKET, published.url.removesuffix("models")),
                       other_user, env)  # fmt: skip
    assert "(native)" in done.stdout, done.stdout
    table = pyarrow_parquet.read_table(other_user / "out.parquet")
    np.testing.assert_allclose(
        table.column("intensity").to_numpy(), reference["intensity"][inside], rtol=1e-9
    )


def test_the_python_block_publishes_the_same_model(
    page: Page, published: Published, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Python block in a fresh folder. Glue for its undefined names: ``model`` is the build
    script's (run here with runpy), ``forms`` the seed's dict that script wrote."""
    monkeypatch.setenv("MODELSTORE_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("MODELSTORE_TRUSTED_KEYS", str(published.folder / "me.pub"))
    monkeypatch.chdir(tmp_path)
    (tmp_path / page.script_name).write_text(page.build.body, encoding="utf-8")
    namespace = runpy.run_path(str(tmp_path / page.script_name))
    with (tmp_path / "exported-model.pkl").open("rb") as f:
        namespace["forms"] = pickle.load(f)  # the file the script above wrote
    exec(page.python.body, namespace)  # noqa: S102

    mine = Registry(tmp_path / "my-registry")
    assert set(mine.index().models) == {"d0-kpipi0", "my-model"}
    from_cli = Registry(published.folder / "my-registry").manifest("d0-kpipi0")
    from_python = mine.manifest("d0-kpipi0")
    assert from_python.file("intensity-srepr").digest == from_cli.file("intensity-srepr").digest
    # the adapter filled the particles' masses and the producing packages from the model
    about = from_python.about
    assert about is not None
    masses = {p.name: p.value for p in from_python.parameters}
    assert [p.mass for p in about.particles] == [masses[f"m{i}"] for i in range(4)]
    assert "ampform-dpd" in dict(about.packages)


# -- the reader itself: a changed page is a changed test -----------------------------------


def test_a_changed_command_on_the_page_is_what_runs(tmp_path: Path) -> None:
    text = DOC.read_text(encoding="utf-8")
    original = read_page(text)
    keygen = next(c for c in original.commands if c.startswith("modelstore keygen"))
    changed = read_page(text.replace(keygen, keygen.replace("me.key", "our.key", 1)))
    assert changed.commands != original.commands
    assert any(c.startswith("modelstore keygen our.key") for c in changed.commands)
    publish = next(c for c in original.commands if " publish " in c)
    assert "--sign me.key" in publish and "\\" not in publish  # continuation lines joined
    # the page's key file names, as run: a trust line naming the wrong .pub file fails
    env = user_env(tmp_path / "home", tmp_path / "cache")
    run_command("modelstore keygen me.key", tmp_path, env)
    with pytest.raises(DocCommandError, match="me.key.pub"):
        run_command("cp me.key.pub ~/.config/modelstore/trusted-keys/", tmp_path, env)
    with pytest.raises(DocCommandError, match="own shell"):
        run_command("export MODELSTORE_TRUSTED_KEYS=$PWD/me.pub", tmp_path, env)


def test_the_output_pattern() -> None:
    shown = "published  d0-kpipi0@1.0.0     6.2 s\nsigned the index with ed25519:..."
    assert not missing_output(
        shown, "published  d0-kpipi0@1.0.0  12.0 s\nsigned the index with ed25519:ab12"
    )
    assert missing_output(
        shown, "published  d0-kpipi0@1.0.1  2.0 s\nsigned the index with ed25519:ab"
    )
    assert missing_output(
        shown, "signed the index with ed25519:ab\npublished  d0-kpipi0@1.0.0 2.0 s"
    )
    line = "checked at 1614 points: array program 1.0e-11, C 1.0e-11"
    assert output_pattern(line).fullmatch("checked at 1614 points: array program 3.2e-12, C 7e-10")
    assert not output_pattern(line).fullmatch(
        "checked at 1615 points: array program 3.2e-12, C 7e-10"
    )
