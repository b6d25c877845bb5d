"""The docs tests' shared pieces: moto's S3 server (for pages that name ``s3://`` URLs) and the
pages run once per test process, so that the page's own test and checks of what it left behind
(tests/docs/test_publishing_doc.py) share one run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from doc_examples import Block, PageRun, read_blocks, s3_buckets, user_env
from s3_server import s3_endpoint, s3_environment  # noqa: F401 (fixture)

REPOSITORY = Path(__file__).resolve().parents[2]


def write_page_inputs(folder: Path) -> None:
    """What every page's folder holds before its first command (doc_examples' docstring)."""
    import zarr
    from event_samples import SEED_SIGMA1, SEED_SIGMA2

    import uproot

    weight = np.linspace(0.5, 1.2, len(SEED_SIGMA1))
    with uproot.recreate(folder / "phsp.root") as file:
        branches = {"msq_piK": SEED_SIGMA1, "msq_Kp": SEED_SIGMA2, "weight": weight}
        file.mktree("Lc2ppiK", {name: np.float64 for name in branches})
        file["Lc2ppiK"].extend(branches)
    group = zarr.open_group(str(folder / "events.zarr"), mode="w")
    for name, values in {"msq_piK": SEED_SIGMA1, "msq_Kp": SEED_SIGMA2}.items():
        group.create_array(name, data=values, chunks=(4,))
    (folder / "docs" / "images").mkdir(parents=True)
    (folder / "benchmarks").symlink_to(REPOSITORY / "benchmarks")


class PageRuns:
    """Starts a page's run in a fresh folder; the unmarked blocks' run is kept per page."""

    def __init__(self, request: pytest.FixtureRequest, factory: pytest.TempPathFactory) -> None:
        self._request = request
        self._factory = factory
        self._cache = factory.mktemp("docs-cache")
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
            client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                                  aws_access_key_id="testing", aws_secret_access_key="testing")  # fmt: skip
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


@pytest.fixture(scope="session")
def doc_pages(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> PageRuns:
    return PageRuns(request, tmp_path_factory)
