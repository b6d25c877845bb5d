"""Every example of README.md and docs/*.md runs, and prints what the page shows.

The conventions the pages follow (block forms, ``...`` in outputs, the ``<!-- doctest: ... -->``
markers, the folder and environment a page runs in) are in ``doc_examples``' docstring. In
short: ``console`` blocks are terminal sessions (``$ `` commands, their output below),
``pycon`` blocks Python sessions run by doctest, a ``python`` block naming a file is that file;
output is compared with doctest's ELLIPSIS and NORMALIZE_WHITESPACE. One test per page runs its
unmarked blocks in order; a block marked ``slow`` or ``upstream`` is a test of its own under
that pytest marker; ``skip: REASON`` blocks are reported as skipped with their reason.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from doc_examples import (
    DOCUMENTS,
    ROOT,
    Block,
    DocExampleError,
    Step,
    all_blocks,
    output_difference,
    parse_marker,
    read_blocks,
    shell_steps,
)
from doc_runner import PageRun, PageRuns, runs_by_default, user_env

BLOCKS = all_blocks()


def _marked(block: Block) -> pytest.ParameterSet:
    return pytest.param(block, marks=[getattr(pytest.mark, m) for m in block.marks],
                        id=block.name)  # fmt: skip


@pytest.mark.parametrize("page", DOCUMENTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_page(page: Path, doc_pages: PageRuns) -> None:
    """The page's unmarked blocks, in order, in one folder."""
    doc_pages.unmarked(page)


@pytest.mark.parametrize("block", [_marked(b) for b in BLOCKS if b.marks and b.skip is None])
def test_marked_block(block: Block, doc_pages: PageRuns) -> None:
    """A slow or upstream block, after the page's unmarked blocks before it."""
    if "upstream" in block.marks:
        pytest.importorskip("polarimetry", reason="the upstream package (pip install '.[publish]')")
    run = doc_pages.start(block.path)
    for before in read_blocks(block.path):
        if before.line >= block.line:
            break
        if runs_by_default(before):
            run.run(before)
    run.run(block)


@pytest.mark.parametrize("block", [pytest.param(b, id=b.name) for b in BLOCKS if b.skip])
def test_skipped_block(block: Block) -> None:
    pytest.skip(f"{block.name}: {block.skip}")


def test_every_block_has_a_recognised_form_or_a_reason_to_skip() -> None:
    unrecognised = [f"{b.name} ({b.lang or 'no language'})" for b in BLOCKS
                    if b.form is None and b.skip is None]  # fmt: skip
    assert not unrecognised, f"blocks the docs tests cannot run: {unrecognised}"
    synopses = [b for b in BLOCKS if b.synopsis]
    assert all(b.form == "text" for b in synopses), [b.name for b in synopses]


# -- the reader and the comparator themselves ---------------------------------------------------


def test_a_changed_output_fails() -> None:
    shown = "default@1.4.0: 8 events (0 outside) -> out.parquet in ... s (native)\n"
    printed = "default@1.4.0: 8 events (0 outside) -> out.parquet in 0.3 s (native)"
    assert output_difference(shown, printed) is None
    assert output_difference(shown, printed.replace("8 events", "9 events"))
    assert output_difference(shown, printed.replace("1.4.0", "1.1.0"))
    assert output_difference(shown, printed + "\nanother line\n")  # nothing unshown slips by
    assert output_difference("", "something\n")
    assert output_difference("a   b\n...\nz\n", "a b\nmany\nlines\nz\n") is None
    assert output_difference("...\nz\n", "z\n") is None  # a line of `...`: any lines, or none
    assert output_difference("a\n...\n", "a\n") is None
    assert output_difference("a\n...\nz\n", "a\nz\n") is None
    assert output_difference("a\n...\nz\n", "a\nb\n")


def _page(tmp_path: Path, text: str) -> Path:
    page = tmp_path / "page.md"
    page.write_text(text, encoding="utf-8")
    return page


def test_a_wrong_shown_output_or_exit_fails_the_page(tmp_path: Path) -> None:
    page = _page(tmp_path, "```console\n$ modelstore show default@1.4.0\ndefault@1.4.0 ...\n```\n"
                 "\n```console\n$ modelstore show default@9.9.9\n```\n")  # fmt: skip
    right, wrong = read_blocks(page)
    run = PageRun(tmp_path, user_env(tmp_path / "home", tmp_path / "cache"))
    run.run(right)
    with pytest.raises(DocExampleError, match="exit 1"):
        run.run(wrong)
    stale = Block(page, 1, "console", right.body.replace("default@1.4.0 ...", "default@1.1.0 ..."))
    with pytest.raises(DocExampleError, match="Expected"):
        run.run(stale)
    error = Block(page, 1, "console", "$ modelstore show default@9.9.9\nError: ...\n")
    run.run(error)  # an error the page shows is expected, exit status and all
    with pytest.raises(DocExampleError, match="shows an error; exit 0"):
        run.run(Block(page, 1, "console", "$ true\nError: ...\n"))


def test_a_wrong_pycon_output_fails(tmp_path: Path) -> None:
    run = PageRun(tmp_path, user_env(tmp_path / "home", tmp_path / "cache"))
    run.run(Block(tmp_path, 1, "pycon", ">>> x = 6 * 7\n>>> x\n42\n"))
    with pytest.raises(DocExampleError, match="Got:\n    42"):
        run.run(Block(tmp_path, 5, "pycon", ">>> x\n41\n"))  # the page's names persist


def test_shell_steps() -> None:
    body = ("$ modelstore eval default \\\n    --dask local\nline one\n\nline two\n"
            "$ for q in a b; do\n>     echo $q\n> done\na\nb\n$ # a comment\n")  # fmt: skip
    steps = shell_steps(Block(ROOT / "x.md", 10, "console", body))
    assert steps == [
        Step("modelstore eval default \\\n    --dask local", "line one\n\nline two\n", 11),
        Step("for q in a b; do\n    echo $q\ndone", "a\nb\n", 16),
        Step("# a comment", "", 21),
    ]
    with pytest.raises(DocExampleError, match="before the first"):
        shell_steps(Block(ROOT / "x.md", 1, "console", "output\n$ true\n"))


def test_forms_and_markers(tmp_path: Path) -> None:
    page = _page(tmp_path, "<!-- doctest: slow, upstream -->\n```console\n$ true\n```\n"
                 "<!-- doctest: skip: needs a server -->\n```\nx\n```\n```python\nx = 1\n```\n"
                 "```python\n# run.py: a script\n```\n```bash\nno prompt\n```\n")  # fmt: skip
    blocks = read_blocks(page)
    assert [(b.marks, b.skip, b.form) for b in blocks] == [
        (("slow", "upstream"), None, "shell"),
        ((), "needs a server", None),
        ((), None, None),  # a python block naming no file: not recognised
        ((), None, "file"),
        ((), None, None),  # a shell block without `$ `: not recognised
    ]
    with pytest.raises(DocExampleError, match="needs a reason"):
        parse_marker("skip")
    with pytest.raises(DocExampleError, match="unknown doctest marker"):
        parse_marker("sloww")


def test_a_synopsis_naming_an_unknown_option_fails(tmp_path: Path) -> None:
    run = PageRun(tmp_path, user_env(tmp_path / "home", tmp_path / "cache"))
    good = "modelstore plot REF -o dalitz.png [--quantity alpha_z]   # a comment --not-checked\n"
    run.run(Block(tmp_path, 1, "text", good, synopsis=True))
    with pytest.raises(DocExampleError, match="--quantiti"):
        run.run(Block(tmp_path, 1, "text", good.replace("quantity", "quantiti"), synopsis=True))
