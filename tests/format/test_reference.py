"""Reference values: deterministic zarr zips, read back within budgets fixed before any data."""

from __future__ import annotations

import io
import json
import time
import tracemalloc
import zipfile

import numpy as np
import pytest

from modelstore.errors import IntegrityError
from modelstore.format.reference import read_reference, write_reference


def small_reference() -> bytes:
    values = np.linspace(0.5, 1.5, 26)
    return write_reference(
        {"sigma1": values, "sigma2": values + 2, "intensity": values * 3}, {"model": "toy"}
    )


def hostile_reference(array: str = "sigma1", **changes: object) -> bytes:
    """A valid reference whose ``array`` metadata is rewritten (shape, chunks, type, codecs)."""
    source = zipfile.ZipFile(io.BytesIO(small_reference()))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for info in source.infolist():
            data = source.read(info)
            if info.filename == f"{array}/zarr.json":
                meta = json.loads(data)
                if "shape" in changes:
                    meta["shape"] = changes["shape"]
                if "chunks" in changes:
                    meta["chunk_grid"]["configuration"]["chunk_shape"] = changes["chunks"]
                if "data_type" in changes:
                    meta["data_type"] = changes["data_type"]
                if "codecs" in changes:
                    meta["codecs"] = changes["codecs"]
                data = json.dumps(meta).encode()
            zf.writestr(info.filename, data)
    return buffer.getvalue()


def test_round_trip():
    arrays = read_reference(small_reference())
    np.testing.assert_array_equal(arrays["sigma1"], np.linspace(0.5, 1.5, 26))


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"shape": [20_000_000], "chunks": [1]}, "20000000 elements"),  # ran 60 s and 4.6 GB
        ({"shape": [10**13], "chunks": [10**13]}, "elements"),  # MemoryError
        ({"shape": [999_999], "chunks": [1]}, "999999 chunks"),
        ({"shape": [26], "chunks": [26], "data_type": "complex256"}, "data type"),
        (
            {
                "shape": [26],
                "chunks": [26],
                "codecs": [{"name": "sharding_indexed", "configuration": {}}],
            },
            "codecs",
        ),
        ({"shape": [-1], "chunks": [1]}, "malformed shape"),
    ],
)
def test_declarations_beyond_the_budget_are_refused_before_reading_data(changes, match):
    data = hostile_reference("sigma1", **changes)
    assert len(data) < 4000  # a small file
    tracemalloc.start()
    start = time.perf_counter()
    try:
        with pytest.raises(IntegrityError, match=f"array 'sigma1'.*{match}"):
            read_reference(data, "hostile.zip")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert time.perf_counter() - start < 2
    assert peak < 20 << 20


def test_a_chunk_that_inflates_beyond_its_array_is_refused_before_decoding():
    """1.7 KB that zstd would inflate to 256 MiB: the frame's declared size is checked first."""
    import struct

    declared = 256 << 20
    blocks = declared // (128 << 10)
    body = b"".join(
        struct.pack("<I", (k == blocks - 1) | (1 << 1) | ((128 << 10) << 3))[:3] + b"\0"
        for k in range(blocks)
    )  # run-length blocks of zeros
    frame = b"\x28\xb5\x2f\xfd\xe0" + struct.pack("<Q", declared) + body
    source = zipfile.ZipFile(io.BytesIO(small_reference()))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for info in source.infolist():
            zf.writestr(
                info.filename, frame if info.filename == "sigma1/c/0" else source.read(info)
            )
    data = buffer.getvalue()
    assert len(data) < 4000
    tracemalloc.start()
    try:
        with pytest.raises(IntegrityError, match="chunk 'sigma1/c/0' declares 268435456"):
            read_reference(data)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 20 << 20
