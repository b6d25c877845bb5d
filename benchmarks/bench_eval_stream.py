"""Stream N events through a zarr store: events/s and peak memory, plain path and Dask path.

    python benchmarks/bench_eval_stream.py --events 10000000

1. writes N phase-space events (uniform over the Dalitz region) to ``events.zarr``, chunk by
   chunk;
2. runs ``evaluate_file`` (plain: one process, the backend's own threads) and
   ``evaluate_distributed`` (a local Dask cluster of worker processes, one thread each), each
   in a fresh child process, into ``plain.zarr`` and ``dask.zarr``;
3. samples the resident memory (RSS) of the child and all its descendants (Dask's scheduler,
   nannies and workers) every 50 ms, and reports the peak of their sum;
4. checks that both outputs hold the same intensities, bit for bit.

Timings include loading the model (and, for Dask, starting the cluster and loading the model
in every worker): they are what a user of ``modelstore eval`` waits for.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

GENERATE_CHUNK = 1 << 22


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


def run_child(args: argparse.Namespace) -> None:
    """In the child process: evaluate one path and print the result as JSON."""
    from modelstore import published_model
    from modelstore.events import evaluate_distributed, evaluate_file

    model = published_model(args.model, backend=args.backend)
    options = {"chunk_size": args.chunk_size, "overwrite": True}
    if args.child == "plain":
        result = evaluate_file(model, args.input, args.output, **options)
    else:
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
    print(
        json.dumps({"events": result.events, "seconds": result.seconds, "backend": result.backend})
    )


def measure(path_name: str, args: argparse.Namespace, work: Path) -> dict:
    """Run one path in a child process, sampling the RSS of its process tree."""
    import psutil

    command = [
        sys.executable, __file__, "--child", path_name,
        "--input", str(work / "events.zarr"), "--output", str(work / f"{path_name}.zarr"),
        "--model", args.model, "--backend", args.backend,
        "--chunk-size", str(args.chunk_size), "--workers", str(args.workers),
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


def same_intensities(work: Path, chunk_size: int) -> bool:
    import zarr

    a = zarr.open_group(str(work / "plain.zarr"), mode="r")["intensity"]
    b = zarr.open_group(str(work / "dask.zarr"), mode="r")["intensity"]
    if a.shape != b.shape:
        return False
    step = max(chunk_size, 1 << 22)
    return all(
        np.array_equal(a[i : i + step], b[i : i + step], equal_nan=True)
        for i in range(0, a.shape[0], step)
    )


def main() -> None:
    from modelstore.events import DEFAULT_CHUNK_SIZE

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=float, default=1e8, help="number of events (default 1e8)")
    parser.add_argument("--model", default="default")
    parser.add_argument("--backend", default="auto")
    parser.add_argument("--chunk-size", type=int, default=DEFAULT_CHUNK_SIZE)
    parser.add_argument(
        "--workers", type=int, default=os.cpu_count() or 1, help="Dask worker processes"
    )
    parser.add_argument(
        "--paths", default="plain,dask", help="which paths to run (comma-separated)"
    )
    parser.add_argument(
        "--dir", type=Path, default=None, help="work folder (default: a temporary one)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the zarr stores")
    parser.add_argument("--child", choices=["plain", "dask"], help=argparse.SUPPRESS)
    parser.add_argument("--input", help=argparse.SUPPRESS)
    parser.add_argument("--output", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        run_child(args)
        return

    n_events = int(args.events)
    work = Path(tempfile.mkdtemp(prefix="bench-eval-", dir=args.dir))
    try:
        seconds = generate(work / "events.zarr", n_events, args.model, args.chunk_size)
        size = sum(f.stat().st_size for f in (work / "events.zarr").rglob("*") if f.is_file())
        gib = size / 2**30
        print(f"input: {n_events:.3g} events, {gib:.2f} GiB of zarr, written in {seconds:.1f} s")
        print(
            f"machine: {os.cpu_count()} cores; chunk size {args.chunk_size};"
            f" Dask: {args.workers} workers x 1 thread"
        )
        rows = [measure(name, args, work) for name in args.paths.split(",")]
        print()
        print("| path | backend | events | seconds | events/s | peak RSS, all | largest process |")
        print("|---|---|---:|---:|---:|---:|---:|")
        for r in rows:
            print(
                f"| {r['path']} | {r['backend']} | {r['events']:.3g} | {r['seconds']:.1f} |"
                f" {r['events_per_s']:.3g} | {r['peak_tree_mib']:.0f} MiB"
                f" | {r['peak_process_mib']:.0f} MiB |"
            )
        if {"plain", "dask"} <= {r["path"] for r in rows}:
            print(
                f"\nplain and Dask intensities identical: {same_intensities(work, args.chunk_size)}"
            )
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
