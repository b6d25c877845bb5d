"""moto's S3 server for the docs tests (the page's `push s3://bucket/models`)."""

from __future__ import annotations

from s3_server import s3_endpoint  # noqa: F401 (fixture)
