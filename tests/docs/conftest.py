"""The docs tests' shared pieces: moto's S3 server (for pages that name ``s3://`` URLs) and the
pages run once per test process, so that the page's own test and checks of what it left behind
(tests/docs/test_publishing_doc.py) share one run."""

from __future__ import annotations

import pytest
from doc_runner import PageRuns
from s3_server import s3_endpoint  # noqa: F401 (fixture)


@pytest.fixture(scope="session")
def doc_pages(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> PageRuns:
    return PageRuns(request, tmp_path_factory)
