"""Evaluate a zarr event store chunk by chunk on a dask.distributed cluster, into a zarr store.

Only names travel to the workers: the registry's location (folder or URL), ``id@version``, the
manifest digest the client resolved, the backend and the zarr paths. Each worker loads the
model itself through `modelstore.published_model` (verifying every byte, refusing any other
manifest than the client's) and keeps it for the next chunk; the model's evaluator is never
pickled.

The input, the output and the registry may be local paths, which workers must then see under
the same names as the client (one machine, or a shared file system), or URLs (``s3://``, any
fsspec URL but ``root://``; a registry over ``https://`` or ``root://`` too), which each worker
opens itself with the endpoint and credentials of its own environment: then workers need no
shared file system. Each worker verifies the model it loads, wherever the registry lives.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from modelstore._optional import require
from modelstore.errors import ClusterError, EventFileError, ModelstoreError
from modelstore.events.evaluate import (
    EvaluationResult,
    count_nan,
    provenance,
    resonance_overrides,
)
from modelstore.events.formats import DEFAULT_CHUNK_SIZE, Columns, columns_for
from modelstore.events.locations import (
    EventURL,
    address_of,
    check_output,
    detect_location_format,
    open_zarr_store,
    parse_location,
    stage_output,
)
from modelstore.events.readers import ZarrReader
from modelstore.events.writer_base import METADATA_KEY
from modelstore.events.zarr_writer import create_zarr_arrays

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping

    from modelstore.format.manifest import ParameterValue
    from modelstore.model import PublishedModel

__all__ = ["LOCAL", "evaluate_distributed"]

LOCAL = "local"
CONNECT_TIMEOUT_S = 30
DRAIN_TIMEOUT_S = 60


@dataclass(frozen=True)
class _Job:
    """Everything a worker needs to evaluate one block: names, paths and URLs only."""

    registry: str
    ref: str
    digest: str
    backend: str
    input: str
    output: str
    columns: Columns
    parameters: dict[str, Any] = field(default_factory=dict)
    trust_code: bool = False  # the client's decision to run this registry's code
    run: str = field(default_factory=lambda: uuid.uuid4().hex)  # one evaluate_distributed call


_MODELS: dict[tuple[str, str, str, str, bool], PublishedModel] = {}
_MODELS_LOCK = threading.Lock()
# zarr groups opened by this worker, by run, URL and mode: a long-lived worker keeps those of the
# last few runs only, and never reuses one across runs (the store behind a URL may have changed)
_GROUPS: OrderedDict[tuple[str, str, bool], Any] = OrderedDict()
_GROUPS_KEPT = 8


def _worker_model(job: _Job) -> PublishedModel:
    """The model of ``job``, loaded once per worker process through the verified path."""
    from modelstore.model import published_model

    key = (job.registry, job.ref, job.digest, job.backend, job.trust_code)
    with _MODELS_LOCK:
        model = _MODELS.get(key)
        if model is None:
            model = published_model(
                job.ref,
                backend=job.backend,
                digest=job.digest,
                registry=job.registry,
                trust_code=job.trust_code,
            )
            _ = model.evaluator  # built under the lock, once per process
            _MODELS[key] = model
    return model


def _worker_group(run: str, where: str, writable: bool) -> Any:
    """The zarr group at a path or URL; a remote one is opened once per run and worker."""
    import zarr

    location = parse_location(where)
    mode: Literal["r", "r+"] = "r+" if writable else "r"
    if isinstance(location, Path):
        return zarr.open_group(where, mode=mode)
    key = (run, where, writable)
    with _MODELS_LOCK:
        group = _GROUPS.get(key)
        if group is None:
            group = zarr.open_group(open_zarr_store(location, writable=writable), mode=mode)
            _GROUPS[key] = group
            while len(_GROUPS) > _GROUPS_KEPT:
                _GROUPS.popitem(last=False)
        _GROUPS.move_to_end(key)
    return group


def _evaluate_block(job: _Job, start: int, stop: int) -> tuple[int, int, str]:
    """Evaluate events ``start:stop`` on a worker; return (invalid, outside, backend name)."""
    model = _worker_model(job)
    source = _worker_group(job.run, job.input, writable=False)
    sigma1 = np.asarray(source[job.columns.sigma1][start:stop], dtype=np.float64)
    sigma2 = np.asarray(source[job.columns.sigma2][start:stop], dtype=np.float64)
    intensity = model.intensity(sigma1, sigma2, **job.parameters)
    target = _worker_group(job.run, job.output, writable=True)
    for name, values in zip(job.columns.outputs, (sigma1, sigma2, intensity), strict=False):
        target[name][start:stop] = values
    return (*count_nan(sigma1, sigma2, intensity), model.backend)


@contextlib.contextmanager
def _connect(scheduler: Any, n_workers: int | None, threads_per_worker: int) -> Iterator[Any]:
    """A dask Client: of a new local cluster for ``"local"``, else of the scheduler named."""
    distributed = require("distributed", "the Dask path")
    Client, LocalCluster = distributed.Client, distributed.LocalCluster  # noqa: N806
    if isinstance(scheduler, Client):
        yield scheduler
        return
    if scheduler == LOCAL:
        threads = str(threads_per_worker)
        with (
            LocalCluster(
                n_workers=n_workers or os.cpu_count() or 1,
                threads_per_worker=threads_per_worker,
                processes=True,
                dashboard_address=":0",  # any free port: never clash with another cluster
                env={"MODELSTORE_NUM_THREADS": threads, "OMP_NUM_THREADS": threads},
            ) as cluster,
            Client(cluster) as client,
        ):
            yield client
        return
    try:
        client = Client(scheduler, timeout=CONNECT_TIMEOUT_S)
    except (OSError, ValueError) as exc:
        msg = f"cannot reach the Dask scheduler at {scheduler!r}: {exc}"
        raise ClusterError(msg) from None
    with client:
        yield client


def evaluate_distributed(
    model: PublishedModel,
    input: str | Path | EventURL,
    output: str | Path | EventURL,
    *,
    scheduler: Any = LOCAL,
    backend: str = "auto",
    input_format: str | None = None,
    output_format: str | None = None,
    columns: Columns | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    parameters: Mapping[str, ParameterValue] | None = None,
    overwrite: bool = False,
    progress: Callable[[int, int | None], None] | None = None,
    n_workers: int | None = None,
    threads_per_worker: int = 1,
    resonance: str | None = None,
) -> EvaluationResult:
    """Evaluate ``model`` for each event of zarr ``input`` on a Dask cluster, into zarr ``output``.

    The events are cut into blocks of ``chunk_size``; each block is one task, which reads its
    slice of the input and writes the same slice of every output array (whole output chunks,
    so no two tasks write the same chunk). A bounded number of tasks is in flight at a time.
    The output is staged under a temporary name and renamed (copied, for a URL: see
    `modelstore.events.locations`) when every block is done; on failure or interruption it is
    deleted.

    Args:
        model: the model; workers load it by registry location, ref and manifest digest.
        input: a zarr store holding σ1 and σ2 columns: a path, or a URL (``s3://...``).
        output: the zarr store to create (σ1, σ2 and intensity, as `evaluate_file` writes): a
            path, or a URL.
        scheduler: ``"local"`` (start a LocalCluster with worker processes for this call), the
            address of a running scheduler (``"tcp://host:8786"``), or a ``distributed.Client``.
        backend: the backend the workers use (``"auto"``: each worker takes the fastest it can).
        input_format: must be zarr if given (the name may then end differently).
        output_format: must be zarr if given.
        columns: the σ1 and σ2 column names, and the output names (default: the model's,
            `modelstore.events.columns_for`).
        chunk_size: events per task (and per output chunk).
        parameters: parameter values overriding the model's defaults, by name.
        overwrite: replace ``output`` if it exists.
        progress: called as blocks complete with (events done, total events).
        n_workers: worker processes of a local cluster (default: one per core).
        threads_per_worker: threads of each local worker (and of its native evaluator).
        resonance: evaluate this resonance alone, as `evaluate_file` does.

    Returns:
        The counts and timing; ``backend`` lists the backends the workers used.

    Raises:
        EventFileError: the input is not a good zarr store, or the output cannot be written.
        ClusterError: the scheduler cannot be reached, or a task was lost.
        MissingExtraError: a URL's scheme needs an extra (``s3://``: ``modelstore[s3]``).
        InvalidInputError: a resonance the model does not have.
    """
    started = time.perf_counter()
    columns = columns_for(model.manifest) if columns is None else columns
    input, output = parse_location(input), parse_location(output)
    for path, given, role in ((input, input_format, "input"), (output, output_format, "output")):
        if detect_location_format(path, given, role) != "zarr":
            msg = (
                f"{path}: the Dask path reads and writes zarr stores only"
                " (convert the input with modelstore eval first)"
            )
            raise EventFileError(msg)
    if chunk_size < 1:
        msg = f"chunk size must be positive, got {chunk_size}"
        raise EventFileError(msg)
    check_output(output, overwrite, inputs=(input,))
    overrides = dict(parameters or {})  # checked by the model on the workers
    evaluated_with = resonance_overrides(model, overrides, resonance)
    with ZarrReader(input, columns) as reader:
        total = reader.n_events
    assert total is not None  # noqa: S101 (narrows the type)
    digest = model.registry.resolve(model.ref)[2]
    staged = stage_output(output, directory=True, overwrite=overwrite)
    try:
        metadata = provenance(model, backend, input, columns, overrides, resonance=resonance)
        group = create_zarr_arrays(staged.path, columns, total, chunk_size, metadata)
        job = _Job(
            registry=model.registry.store.address,  # the workers connect: passwords included
            ref=model.ref,
            digest=digest,
            backend=backend,
            input=address_of(input),
            output=address_of(staged.path),
            columns=columns,
            parameters=evaluated_with,
            trust_code=model.registry.code_trust() is not None,
        )
        with _connect(scheduler, n_workers, threads_per_worker) as client:
            invalid, outside, backends = _run_blocks(client, job, total, chunk_size, progress)
        metadata["backend"] = ",".join(sorted(backends)) or backend
        metadata["invalid_inputs"] = str(invalid)
        metadata["outside_dalitz"] = str(outside)
        group.attrs[METADATA_KEY] = metadata
        staged.commit()
    except BaseException:
        staged.abort()
        raise
    return EvaluationResult(
        model=model.ref,
        backend=metadata["backend"],
        input=input,
        output=output,
        events=total,
        outside=outside,
        seconds=time.perf_counter() - started,
        invalid=invalid,
    )


def _run_blocks(
    client: Any,
    job: _Job,
    total: int,
    chunk_size: int,
    progress: Callable[[int, int | None], None] | None,
) -> tuple[int, int, set[str]]:
    distributed = require("distributed", "the Dask path")
    as_completed, wait = distributed.as_completed, distributed.wait

    blocks = iter(
        [(start, min(start + chunk_size, total)) for start in range(0, total, chunk_size)]
    )
    threads = sum(client.nthreads().values()) or 1
    in_flight = max(4, 2 * threads)  # keeps every thread busy; bounds the scheduler's queue
    sizes: dict[Any, int] = {}

    def submit(start: int, stop: int) -> Any:
        future = client.submit(_evaluate_block, job, start, stop, pure=False)
        sizes[future] = stop - start
        return future

    pending = as_completed([submit(*block) for block in itertools.islice(blocks, in_flight)])
    invalid, outside, done, backends = 0, 0, 0, set()
    try:
        for future in pending:
            try:
                bad, count, name = future.result()
            except ModelstoreError:
                raise
            except Exception as exc:
                msg = f"{job.ref}: a Dask task failed ({type(exc).__name__}: {exc})"
                raise ClusterError(msg) from None
            invalid += bad
            outside += count
            backends.add(name)
            done += sizes.pop(future)
            if progress is not None:
                progress(done, total)
            block = next(blocks, None)
            if block is not None:
                pending.add(submit(*block))
    except BaseException:
        # Let the few tasks in flight end before the staged output is deleted, so that none
        # writes into it afterwards (a remote cluster outlives this call); then drop the rest.
        with contextlib.suppress(Exception):
            wait(list(sizes), timeout=DRAIN_TIMEOUT_S)
        client.cancel(list(sizes))
        raise
    if done != total:
        msg = f"{job.ref}: the cluster evaluated {done} of {total} events"
        raise ClusterError(msg)
    return invalid, outside, backends
