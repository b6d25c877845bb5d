"""docs/publishing.md, run as a user would, then checks of what its run left behind.

tests/docs/test_doc_examples.py runs the page's blocks (the build script written to its file,
the console session command by command with the output it shows, the Python session) through
``doc_runner`` in a temporary folder with a private HOME and cache; ``s3://bucket/`` is a
bucket on moto's S3 server on loopback. The same run (``doc_pages.unmarked``, once per test
process) is checked further here: the key that signed is the key made, the pushed copy refuses
users who do not trust it and serves those who do ("Others then use it", the page's inline
code), and the Python session published the same expression. Nothing here repeats the page's
commands: edit the page and this test runs the new text.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from doc_examples import ROOT, DocExampleError, inline_code, read_blocks, shell_steps
from doc_runner import PageRun, PageRuns, run_command, user_env

from modelstore import Registry, published_model
from modelstore.errors import SignatureError

pytest.importorskip("ampform_dpd")
pytest.importorskip("cloudpickle")

DOC = ROOT / "docs" / "publishing.md"
URL = "s3://bucket/models"  # where the page pushes


def inline_starting(prefix: str) -> str:
    spans = [s for s in inline_code(DOC.read_text(encoding="utf-8")) if s.startswith(prefix)]
    assert len(spans) == 1, f"docs/publishing.md: expected one `{prefix}...`, found {spans}"
    return spans[0]


@pytest.fixture(scope="module")
def published(doc_pages: PageRuns) -> PageRun:
    """The publisher's session: the page's unmarked blocks, run in order."""
    return doc_pages.unmarked(DOC)


@pytest.fixture
def other_user(published: PageRun, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Someone else, here and in this process: own folder, config and cache, the S3 endpoint."""
    for name in [k for k in os.environ if k.startswith("MODELSTORE_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("MODELSTORE_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("MODELSTORE_CACHE_DIR", str(tmp_path / "cache"))
    for name, value in published.env.items():
        if name.startswith("AWS_"):
            monkeypatch.setenv(name, value)
    folder = tmp_path / "other"
    folder.mkdir()
    return folder


def _published_model_span(url: str) -> Any:
    """``published_model("d0-kpipi0", registry=...)`` of the page, with the pushed copy's URL
    for the ``...`` (the page leaves it open)."""
    span = inline_starting("published_model(")
    assert "registry=..." in span, span
    code = span.replace("registry=...", "registry=registry")
    return eval(code, {"published_model": published_model, "registry": url})  # noqa: S307


def test_the_key_made_signs_what_is_published_and_pushed(published: PageRun) -> None:
    keygen = published.command_output("keygen").stdout
    key_id = re.search(r"ed25519:[0-9a-f]{32}", keygen)
    assert key_id, keygen
    for word in ("publish", "verify", "push"):
        assert key_id.group(0) in published.command_output(word).stdout, word
    verify = published.command_output("verify").stdout
    for backend in ("native", "jax", "numpy"):
        assert re.search(rf"^OK .*numeric/{backend}", verify, re.MULTILINE), verify
    assert URL in published.command_output("push").stdout


def test_others_who_do_not_trust_the_key_are_refused(published: PageRun, other_user: Path) -> None:
    with pytest.raises(SignatureError, match="none of which this client trusts"):
        _published_model_span(URL)


def test_others_trusting_the_key_evaluate_the_pushed_copy_natively(
    published: PageRun, other_user: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The page's ``published_model(...)`` and ``modelstore ... eval`` from the S3 copy, by
    someone who was given ``me.pub`` and names it in MODELSTORE_TRUSTED_KEYS (docs/sharing.md)."""
    pytest.importorskip("uproot")
    pyarrow_parquet = pytest.importorskip("pyarrow.parquet")
    from event_samples import write_root

    given = shutil.copy(published.folder / "me.pub", other_user / "publisher.pub")
    monkeypatch.setenv("MODELSTORE_TRUSTED_KEYS", str(given))
    model = _published_model_span(URL)
    assert model.backend == "native"
    reference = model.reference()
    values = model.intensity(reference["sigma1"], reference["sigma2"])
    np.testing.assert_allclose(values, reference["intensity"], rtol=1e-9, equal_nan=True)

    inside = np.flatnonzero(np.isfinite(reference["intensity"]))[::10]
    # a model outside the LHCb catalog reads tree events, branches sigma1 and sigma2 by default
    sigmas = (reference["sigma1"][inside], reference["sigma2"][inside])
    write_root(other_user / "events.root", *sigmas, tree="events", names=("sigma1", "sigma2"))
    command = inline_starting(f"modelstore --registry {URL} eval")
    aws = {k: v for k, v in published.env.items() if k.startswith("AWS_")}
    env = user_env(other_user / "home", other_user / "cache", **aws,
                   MODELSTORE_TRUSTED_KEYS=str(given))  # fmt: skip
    done = run_command(command, other_user, env)
    assert "(native)" in done.stdout, done.stdout
    table = pyarrow_parquet.read_table(other_user / "out.parquet")
    np.testing.assert_allclose(
        table.column("intensity").to_numpy(), reference["intensity"][inside], rtol=1e-9
    )


def test_the_python_session_publishes_the_same_model(
    published: PageRun, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The page's Python session published into ``python-registry`` from the build script's
    model (through the ampform-dpd adapter) what the command line published from its file."""
    monkeypatch.setenv("MODELSTORE_CONFIG_DIR", published.env["MODELSTORE_CONFIG_DIR"])
    mine = Registry(published.folder / "python-registry")
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

    def commands(page_text: str) -> list[str]:
        page = tmp_path / "publishing.md"
        page.write_text(page_text, encoding="utf-8")
        blocks = [b for b in read_blocks(page) if b.form == "shell"]
        return [step.command for block in blocks for step in shell_steps(block)]

    original = commands(text)
    keygen = next(c for c in original if c.startswith("modelstore keygen"))
    changed = commands(text.replace(keygen, keygen.replace("me.key", "our.key", 1)))
    assert changed != original
    assert any(c.startswith("modelstore keygen our.key") for c in changed)
    publish = next(c for c in original if " publish " in c)
    assert "--sign me.key" in publish and "\\\n" in publish  # continuation lines kept for bash
    # the page's key file names, as run: a trust line naming the wrong .pub file fails
    env = user_env(tmp_path / "home", tmp_path / "cache")
    run_command("modelstore keygen me.key", tmp_path, env)
    with pytest.raises(DocExampleError, match="me.key.pub"):
        run_command("cp me.key.pub ~/.config/modelstore/trusted-keys/", tmp_path, env)
    with pytest.raises(DocExampleError, match="own shell"):
        run_command("export MODELSTORE_TRUSTED_KEYS=$PWD/me.pub", tmp_path, env)
