"""Every link and image in README.md and docs/*.md that points into the repository resolves."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
EXTERNAL = ("http://", "https://", "mailto:", "#")
MAX_IMAGE_BYTES = 250_000


def links(document: Path) -> list[str]:
    text = document.read_text(encoding="utf-8")
    text = re.sub(r"```.*?```", "", text, flags=re.DOTALL)  # code blocks hold no links
    return [target for target in LINK.findall(text) if not target.startswith(EXTERNAL)]


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_repository_links_resolve(document: Path) -> None:
    missing = [
        target
        for target in links(document)
        if not (document.parent / target.split("#", 1)[0]).exists()
    ]
    assert not missing, f"{document.name}: links to missing files {missing}"


def test_link_pattern() -> None:
    assert LINK.findall("see [a](docs/a.md#x), ![b](img/b.png) and [c](https://e.org)") == [
        "docs/a.md#x",
        "img/b.png",
        "https://e.org",
    ]


def test_images_are_small_and_used() -> None:
    images = sorted((ROOT / "docs" / "images").glob("*"))
    assert images, "docs/images is empty"
    used = {
        (document.parent / target).resolve() for document in DOCUMENTS for target in links(document)
    }
    for image in images:
        assert image.stat().st_size < MAX_IMAGE_BYTES, f"{image.name} is too large"
        assert image.resolve() in used, f"{image.name} is not shown in any document"
