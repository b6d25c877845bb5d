"""Stream N events through zarr and Parquet files: end-to-end events/s beside the evaluator's own.

    python benchmarks/bench_eval_stream.py --events 2e7 [--paths memory,plain,parquet,dask]

1. writes N phase-space events (uniform over the Dalitz region) to ``events.zarr``, chunk by
   chunk (and, for the ``parquet`` path, the same events to ``events.parquet``, one row group
   per chunk);
2. runs, in a fresh child process each, round after round (``--repeats``):

   - ``memory``: the evaluator alone on the first ``--memory-events`` of the same events, held
     in memory, chunk by chunk (``model.intensity`` per chunk, as the streaming path calls it;
     the median of three passes);
   - ``plain``: ``evaluate_file`` zarr -> zarr (what ``modelstore eval`` does);
   - ``parquet``: ``evaluate_file`` Parquet -> Parquet;
   - ``dask``: ``evaluate_distributed`` zarr -> zarr (a local Dask cluster of worker processes,
     one thread each);

3. samples the resident memory (RSS) of each child and all its descendants (Dask's scheduler,
   nannies and workers) every 50 ms, and reports the peak of their sum;
4. reports the median events/s of each path over the rounds and the median of its ratios to
   the in-memory events/s of the same round (the machine's load changes both: a ratio compares
   figures taken under the same load), and checks that every output holds the same
   intensities, bit for bit.

Timings of the streaming paths are ``EvaluationResult.seconds``: opening the input, building
the evaluator (a cached native library loads in milliseconds; for Dask, starting the cluster
and loading the model in every worker), reading, evaluating, writing and the final fsync and
rename. Loading the Python modules is not included (the child imports zarr or pyarrow first);
the child process's whole wall time is reported beside it.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from collections.abc import Iterator

GENERATE_CHUNK = 1 << 22
PATHS = ("memory", "plain", "parquet", "dask")
OUTPUTS = {"plain": "plain.zarr", "parquet": "plain.parquet", "dask": "dask.zarr"}


def generate(path: Path, n_events: int, model_ref: str, chunk_size: int, seed: int = 1) -> float:
    """Write ``n_events`` uniform over the Dalitz region to a zarr store; return the seconds."""
    import zarr

    from modelstore import published_model
    from modelstore.dalitz.plot import inside_dalitz, model_masses
    from modelstore.format.reference import dalitz_limits

    started = time.perf_counter()
    masses = model_masses(published_model(model_ref))
    (lo1, hi1), (lo2, hi2) = dalitz_limits(*masses)
    group = zarr.open_group(str(path), mode="w")
    arrays = [
        group.create_array(name, shape=(n_events,), chunks=(chunk_size,), dtype="float64")
        for name in ("msq_piK", "msq_Kp")
    ]
    rng = np.random.default_rng(seed)
    done = 0
    while done < n_events:
        want = min(GENERATE_CHUNK, n_events - done)
        s1 = rng.uniform(lo1, hi1, 2 * want)
        s2 = rng.uniform(lo2, hi2, 2 * want)
        keep = inside_dalitz(s1, s2, *masses)
        s1, s2 = s1[keep][:want], s2[keep][:want]
        arrays[0][done : done + len(s1)] = s1
        arrays[1][done : done + len(s2)] = s2
        done += len(s1)
    return time.perf_counter() - started


def to_parquet(source: Path, target: Path, chunk_size: int) -> float:
    """Copy the zarr events to a Parquet file, one row group per chunk; return the seconds."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    import zarr

    started = time.perf_counter()
    group = zarr.open_group(str(source), mode="r")
    names = ["msq_piK", "msq_Kp"]
    n_events = group[names[0]].shape[0]
    schema = pa.schema([(name, pa.float64()) for name in names])
    with pq.ParquetWriter(target, schema, use_dictionary=False) as writer:
        for start in range(0, n_events, chunk_size):
            stop = start + chunk_size
            columns = [group[name][start:stop] for name in names]
            writer.write_table(pa.Table.from_arrays(columns, schema=schema))
    return time.perf_counter() - started


def run_memory(args: argparse.Namespace) -> dict:
    """The evaluator alone on events held in memory, chunk by chunk, as the streaming path."""
    import zarr

    from modelstore import published_model

    model = published_model(args.model, backend=args.backend)
    backend = model.backend
    group = zarr.open_group(args.input, mode="r")
    n_events = min(group["msq_piK"].shape[0], args.memory_events)
    sigma1, sigma2 = group["msq_piK"][:n_events], group["msq_Kp"][:n_events]
    model.intensity(sigma1[: args.chunk_size], sigma2[: args.chunk_size])  # warm up
    seconds = []
    for _ in range(3):
        started = time.perf_counter()
        for start in range(0, n_events, args.chunk_size):
            stop = start + args.chunk_size
            model.intensity(sigma1[start:stop], sigma2[start:stop])
        seconds.append(time.perf_counter() - started)
    return {"events": n_events, "seconds": statistics.median(seconds), "backend": backend}


def run_child(args: argparse.Namespace) -> None:
    """In the child process: run one path and print the result as JSON."""
    from modelstore._native.openmp import prefer_sleeping_threads

    prefer_sleeping_threads()  # as the ``modelstore`` command does (unless OMP_WAIT_POLICY is set)
    if args.child == "memory":
        print(json.dumps(run_memory(args)))
        return
    from modelstore import published_model
    from modelstore.events import evaluate_distributed, evaluate_file

    # the file formats' libraries are imported when first needed: import them here, so that
    # the timing is the work (reading, evaluating, writing) and not module loading
    if args.child == "parquet":
        import pyarrow.parquet  # noqa: F401
    else:
        import zarr  # noqa: F401

    model = published_model(args.model, backend=args.backend)
    options = {"chunk_size": args.chunk_size}
    if args.child == "dask":
        result = evaluate_distributed(
            model,
            args.input,
            args.output,
            scheduler="local",
            backend=args.backend,
            n_workers=args.workers,
            threads_per_worker=1,
            **options,
        )
    else:
        result = evaluate_file(model, args.input, args.output, **options)
    print(
        json.dumps({"events": result.events, "seconds": result.seconds, "backend": result.backend})
    )


def measure(path_name: str, args: argparse.Namespace, work: Path) -> dict:
    """Run one path in a child process, sampling the RSS of its process tree."""
    import psutil

    source = work / ("events.parquet" if path_name == "parquet" else "events.zarr")
    output = work / OUTPUTS.get(path_name, "unused")
    shutil.rmtree(output, ignore_errors=True)  # each run writes a new output
    if output.is_file():
        output.unlink()
    command = [
        sys.executable, __file__, "--child", path_name,
        "--input", str(source), "--output", str(output),
        "--model", args.model, "--backend", args.backend,
        "--chunk-size", str(args.chunk_size), "--workers", str(args.workers),
        "--memory-events", str(args.memory_events),
    ]  # fmt: skip
    started = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    peak = {"tree": 0, "process": 0}
    stop = threading.Event()

    def sample() -> None:
        parent = psutil.Process(child.pid)
        while not stop.is_set():
            try:
                processes = [parent, *parent.children(recursive=True)]
                sizes = []
                for process in processes:
                    try:
                        sizes.append(process.memory_info().rss)
                    except psutil.Error:
                        continue
                peak["tree"] = max(peak["tree"], sum(sizes))
                peak["process"] = max(peak["process"], max(sizes, default=0))
            except psutil.Error:
                pass
            stop.wait(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, _ = child.communicate()
    stop.set()
    sampler.join()
    wall = time.perf_counter() - started
    if child.returncode != 0:
        msg = f"{path_name} path failed with exit status {child.returncode}"
        raise SystemExit(msg)
    result = json.loads(out.strip().splitlines()[-1])
    return {
        "path": path_name,
        "events": result["events"],
        "backend": result["backend"],
        "seconds": result["seconds"],
        "wall": wall,
        "events_per_s": result["events"] / result["seconds"],
        "peak_tree_mib": peak["tree"] / 2**20,
        "peak_process_mib": peak["process"] / 2**20,
    }


def intensities(path: Path, step: int) -> Iterator[np.ndarray]:
    """The intensity column of an output, ``step`` events at a time."""
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        for batch in pq.ParquetFile(path).iter_batches(batch_size=step, columns=["intensity"]):
            yield batch.column(0).to_numpy()
        return
    import zarr

    array = zarr.open_group(str(path), mode="r")["intensity"]
    for start in range(0, array.shape[0], step):
        yield array[start : start + step]


def same_intensities(a: Path, b: Path) -> bool:
    """True if two outputs hold the same intensities, bit for bit."""
    step = 1 << 22
    pairs = zip(intensities(a, step), intensities(b, step), strict=False)
    same = all(x.tobytes() == y.tobytes() for x, y in pairs)
    return same and sum(map(len, intensities(a, step))) == sum(map(len, intensities(b, step)))


def summarise(rows: list[dict]) -> list[dict]:
    """Per path: the medians over the rounds, and the ratio to the in-memory median."""
    paths = [p for p in PATHS if any(r["path"] == p for r in rows)]
    summary = []
    for path in paths:
        mine = [r for r in rows if r["path"] == path]
        summary.append(
            {
                "path": path,
                "backend": mine[0]["backend"],
                "events": mine[0]["events"],
                "runs": len(mine),
                "seconds": statistics.median(r["seconds"] for r in mine),
                "events_per_s": statistics.median(r["events_per_s"] for r in mine),
                "all_events_per_s": [r["events_per_s"] for r in mine],
                "peak_tree_mib": max(r["peak_tree_mib"] for r in mine),
                "peak_process_mib": max(r["peak_process_mib"] for r in mine),
            }
        )
    # each round runs the paths one after the other: the ratio of a path's events/s to the
    # in-memory events/s of the same round compares figures taken under the same load
    memory = [r["events_per_s"] for r in rows if r["path"] == "memory"]
    for s in summary:
        mine = [r["events_per_s"] for r in rows if r["path"] == s["path"]]
        ratios = [x / m for x, m in zip(mine, memory, strict=False)]
        s["ratio"] = statistics.median(ratios) if ratios else float("nan")
        s["wall"] = statistics.median(r["wall"] for r in rows if r["path"] == s["path"])
    return summary


def main() -> None:
    from modelstore.events import DEFAULT_CHUNK_SIZE

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=float, default=2e7, help="number of events (default 2e7)")
    parser.add_argument("--model", default="default")
    parser.add_argument("--backend", default="native")
    parser.add_argument("--chunk-size", type=int, default=DEFAULT_CHUNK_SIZE)
    parser.add_argument(
        "--workers", type=int, default=os.cpu_count() or 1, help="Dask worker processes"
    )
    parser.add_argument(
        "--paths",
        default="memory,plain,parquet",
        help=f"which paths to run, comma-separated, among {','.join(PATHS)}",
    )
    parser.add_argument("--repeats", type=int, default=3, help="rounds of every path (default 3)")
    parser.add_argument(
        "--memory-events",
        type=int,
        default=1 << 24,
        help="events the in-memory path evaluates (the first of the file; default 2^24)",
    )
    parser.add_argument(
        "--dir", type=Path, default=None, help="work folder (default: a temporary one)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the files")
    parser.add_argument("--child", choices=PATHS, help=argparse.SUPPRESS)
    parser.add_argument("--input", help=argparse.SUPPRESS)
    parser.add_argument("--output", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        run_child(args)
        return
    paths = args.paths.split(",")
    unknown = sorted(set(paths) - set(PATHS))
    if unknown:
        parser.error(f"unknown paths {', '.join(unknown)} (choose among {', '.join(PATHS)})")

    n_events = int(args.events)
    work = Path(tempfile.mkdtemp(prefix="bench-eval-", dir=args.dir))
    try:
        seconds = generate(work / "events.zarr", n_events, args.model, args.chunk_size)
        size = sum(f.stat().st_size for f in (work / "events.zarr").rglob("*") if f.is_file())
        print(
            f"input: {n_events:.3g} events, {size / 2**30:.2f} GiB of zarr, written in"
            f" {seconds:.1f} s"
        )
        if "parquet" in paths:
            seconds = to_parquet(work / "events.zarr", work / "events.parquet", args.chunk_size)
            size = (work / "events.parquet").stat().st_size
            print(f"       {size / 2**30:.2f} GiB of Parquet, written in {seconds:.1f} s")
        load = " ".join(f"{x:.2f}" for x in os.getloadavg())
        print(
            f"machine: {os.cpu_count()} cores, load average {load}; chunk size"
            f" {args.chunk_size}; {args.repeats} rounds; Dask: {args.workers} workers x 1 thread"
        )
        rows = [measure(name, args, work) for _ in range(args.repeats) for name in paths]
        load = " ".join(f"{x:.2f}" for x in os.getloadavg())
        print(f"load average after the runs: {load}")
        print()
        print(
            "| path | backend | events | seconds | process, s | events/s (median)"
            " | ratio to memory | runs, events/s | peak RSS, all | largest process |"
        )
        print("|---|---|---:|---:|---:|---:|---:|---|---:|---:|")
        for r in summarise(rows):
            runs = ", ".join(f"{x / 1e6:.1f} M" for x in r["all_events_per_s"])
            print(
                f"| {r['path']} | {r['backend']} | {r['events']:.3g} | {r['seconds']:.2f} |"
                f" {r['wall']:.2f} | {r['events_per_s'] / 1e6:.1f} M | {r['ratio']:.2f} |"
                f" {runs} | {r['peak_tree_mib']:.0f} MiB | {r['peak_process_mib']:.0f} MiB |"
            )
        print(
            "\n(seconds: the evaluation, median over the rounds; process: the child process's"
            " wall time, start-up and model loading included; ratio to memory: the median over"
            " the rounds of events/s over the in-memory events/s of the same round)"
        )
        written = [work / OUTPUTS[p] for p in paths if p in OUTPUTS]
        if len(written) > 1:
            same = all(same_intensities(written[0], other) for other in written[1:])
            names = ", ".join(p.name for p in written)
            print(f"\nintensities of {names} identical: {same}")
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
