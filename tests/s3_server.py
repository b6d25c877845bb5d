"""moto's S3 server on 127.0.0.1 for the tests that use ``s3://`` (registries, event stores).

Import the fixtures into a conftest or test module: ``from s3_server import s3_bucket,
s3_endpoint``. `s3_environment` gives the variables that point boto and s3fs at the loopback
server, for fixtures that must set them before starting processes (Dask workers inherit them).
"""

from __future__ import annotations

import logging
import uuid
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path


def s3_environment(endpoint: str, folder: Path) -> dict[str, str]:
    """Variables pointing boto and s3fs at ``endpoint`` with dummy keys, no AWS config files."""
    return {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": str(folder / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(folder / "no-aws-credentials"),
        "AWS_ENDPOINT_URL_S3": endpoint,
    }


def create_bucket(endpoint: str, prefix: str = "bucket") -> str:
    """A new empty bucket on the server at ``endpoint``; its name."""
    import boto3

    name = f"{prefix}-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket=name)
    return name


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """moto's S3 API server on 127.0.0.1 (a real HTTP server speaking the S3 protocol)."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3_bucket(s3_endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A new empty bucket; the environment points boto and s3fs at the loopback server."""
    for name, value in s3_environment(s3_endpoint, tmp_path).items():
        monkeypatch.setenv(name, value)
    return create_bucket(s3_endpoint, "registry")
