"""Writing events to a zarr store (a local folder or a remote URL), chunk by chunk."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from modelstore.events.formats import Columns
from modelstore.events.locations import EventURL, Location, open_zarr_store, parse_location
from modelstore.events.staging import Staged
from modelstore.events.writer_base import METADATA_KEY, EventWriter

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

__all__ = ["ZarrWriter", "create_zarr_arrays"]


def create_zarr_arrays(
    path: str | Path | EventURL,
    columns: Columns,
    n_events: int,
    chunk_size: int,
    metadata: Mapping[str, str] | None = None,
    fields: Sequence[tuple[str, np.dtype]] | None = None,
) -> Any:
    """Create a zarr v3 group at ``path`` (a folder, or a URL) with arrays for the output columns.

    ``fields`` are ``(name, dtype)`` pairs (default: ``columns.outputs`` as float64).

    Returns:
        The zarr group; its arrays have ``n_events`` elements (NaN until written) in chunks
        of ``chunk_size``, compressed with Blosc (LZ4, level 1, byte shuffle).

    Raises:
        OSError: the zarr group cannot be written.
        EventFileError: a URL that cannot be opened.
        MissingExtraError: the URL's scheme needs an extra.
    """
    import zarr
    from zarr.codecs import BloscCodec

    store = open_zarr_store(parse_location(path), writable=True)
    group = zarr.open_group(store, mode="w", zarr_format=3)
    if metadata:
        group.attrs[METADATA_KEY] = dict(metadata)
    if fields is None:
        fields = [(name, np.dtype(np.float64)) for name in columns.outputs]
    for name, dtype in fields:
        group.create_array(
            name,
            shape=(n_events,),
            chunks=(max(1, chunk_size),),
            dtype=dtype,
            fill_value=np.nan if dtype.kind == "f" else 0,
            # byte shuffle then LZ4 at level 1: float64 columns come out a little smaller than
            # with zarr's default (zstd) at twice its speed, so that writing keeps up with the
            # native evaluator (benchmarks/bench_eval_stream.py); any codec is read
            compressors=[BloscCodec(cname="lz4", clevel=1, shuffle="shuffle")],
        )
    return group


class ZarrWriter(EventWriter):
    """A zarr v3 group with one 1-D float64 array per column, chunked like the writes."""

    format = "zarr"
    directory = True
    forbidden = "/"  # a slash would make nested groups

    def _open(self, staged: Location) -> None:
        group = create_zarr_arrays(
            staged, self.columns, self.n_events or 0, self.chunk_size, self.metadata, self.fields
        )
        self._group = group
        self._arrays = [group[name] for name in self.names]
        self._pool = ThreadPoolExecutor(len(self._arrays), thread_name_prefix="modelstore-zarr")

    def _add_metadata(self, extra: dict[str, str]) -> None:
        self._group.attrs[METADATA_KEY] = dict(self.metadata)

    def _write(self, arrays: tuple[np.ndarray, ...]) -> None:
        start, stop = self.written, self.written + len(arrays[0])

        def store(target: Any, values: np.ndarray) -> None:
            if self.n_events is None:
                target.resize((stop,))
            target[start:stop] = values

        # the columns are encoded and stored side by side (zarr and Blosc release the GIL)
        list(self._pool.map(store, self._arrays, arrays))
        size = max(1, self.chunk_size)
        chunks = range(start // size, -(-stop // size))
        staged = self._staged
        if isinstance(staged, Staged):  # a remote store (`RemoteStaged`) has nothing to fsync
            staged.sync_soon(
                staged.path / name / array.metadata.encode_chunk_key((i,))
                for name, array in zip(self.names, self._arrays, strict=True)
                for i in chunks
            )

    def _close(self) -> None:
        self._arrays = []
        self._pool.shutdown()

    def _discard(self) -> None:
        # waits for the stores in progress, so that none writes after the staged folder is gone
        pool = getattr(self, "_pool", None)
        if pool is not None:
            pool.shutdown(cancel_futures=True)
        self._arrays = []
