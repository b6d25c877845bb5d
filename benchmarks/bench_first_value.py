"""Fresh process to the first value, per backend, with warm caches (or empty ones: ``--cold``).

Each measurement is a new Python process that runs

    from modelstore import published_model
    published_model(MODEL, version=VERSION, backend=BACKEND).intensity(1.0, 3.0)

and is timed from before the process starts until it exits. One warm-up run per case fills the
caches (native build, JAX's compilation cache); the median of ``--repeat`` runs is reported.

    python benchmarks/bench_first_value.py [--repeat 5] [--legacy] [--check-jax-cache]
    python benchmarks/bench_first_value.py --cold [--repeat 3] [--backend native] [--legacy]

``--legacy`` adds the 1.2.0 version (JAX and numpy lambdified from the pickle by tensorwaves)
for comparison. ``--check-jax-cache`` also times JAX without its persistent compilation cache
(``MODELSTORE_JAX_CACHE=off``) and a bare ``import jax``, and exits 1 unless the cache saves
most of the time JAX spends past its import:
``(JAX warm - import jax) / (JAX without cache - import jax) <= 0.8``. That is a ratio of two
figures from the same run, so it holds on a fast machine and on one 3-4x slower; no absolute
time is a gate (CI uses this).

``--cold`` times the first value with nothing cached instead: each repeat is a fresh process
with its own new, empty ``MODELSTORE_CACHE_DIR`` (no native build, no JAX compilation cache),
removed afterwards; no warm-up run. It prints the median, min and max per backend, and the
median CPU seconds of the process with the compilers it ran (user + system; on a loaded machine
closer to what an idle one would take than the wall time).
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

PROBE = (
    "import warnings; warnings.simplefilter('ignore')\n"
    "from modelstore import published_model\n"
    "print(published_model({model!r}, version={version!r}, backend={backend!r})"
    ".intensity(1.0, 3.0))\n"
)


CACHE_SHARE_LIMIT = 0.8  # measured 0.47 on a loaded 2-core machine; a cache not used gives ~1


def run_seconds(code: str, env: dict[str, str] | None = None) -> tuple[float, str]:
    start = time.perf_counter()
    run = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, **(env or {})},
    )
    elapsed = time.perf_counter() - start
    if run.returncode != 0:
        msg = f"{code!r} failed: {run.stderr.strip()[-400:]}"
        raise SystemExit(msg)
    return elapsed, run.stdout.strip()


def first_value_seconds(model: str, version: str | None, backend: str) -> tuple[float, str]:
    return run_seconds(PROBE.format(model=model, version=version, backend=backend))


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def cold_first_value_seconds(
    model: str, version: str | None, backend: str
) -> tuple[float, float, str]:
    """One fresh process with a new, empty cache folder (removed afterwards): wall seconds, CPU
    seconds of the process and the compilers it ran (less sensitive to a loaded machine), value."""
    cache = tempfile.mkdtemp(prefix="modelstore-cold-")  # mode 0700: a cache the build trusts
    try:
        probe = PROBE.format(model=model, version=version, backend=backend)
        cpu = children_cpu_seconds()
        seconds, value = run_seconds(probe, {"MODELSTORE_CACHE_DIR": cache})
        return seconds, children_cpu_seconds() - cpu, value
    finally:
        shutil.rmtree(cache, ignore_errors=True)


def cold(cases: list[tuple[str | None, str]], model: str, repeat: int) -> int:
    print(
        f"{'version':<8} {'backend':<7} {'cold median s':>13} {'min s':>7} {'max s':>7}"
        f" {'cpu median s':>12}  value"
    )
    for version, backend in cases:
        times, cpus, value = [], [], ""
        for _ in range(repeat):
            seconds, cpu, value = cold_first_value_seconds(model, version, backend)
            times.append(seconds)
            cpus.append(cpu)
        print(
            f"{version or 'latest':<8} {backend:<7} {statistics.median(times):13.2f}"
            f" {min(times):7.2f} {max(times):7.2f} {statistics.median(cpus):12.2f}  {value}"
        )
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="default")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--legacy", action="store_true", help="also time version 1.2.0")
    parser.add_argument(
        "--check-jax-cache",
        action="store_true",
        help="exit 1 unless JAX's compilation cache saves most of its time past `import jax`",
    )
    parser.add_argument(
        "--cold",
        action="store_true",
        help="an empty cache folder for every run (no warm-up); per-backend medians",
    )
    parser.add_argument(
        "--backend",
        action="append",
        choices=("native", "jax", "numpy"),
        help="time only this backend (repeatable; default: all three)",
    )
    args = parser.parse_args()
    if args.cold and args.check_jax_cache:
        parser.error("--check-jax-cache compares warm caches; run it without --cold")
    if args.check_jax_cache and args.backend and set(args.backend) != {"native", "jax"}:
        parser.error("--check-jax-cache needs the native and jax backends")

    backends = args.backend or ["native", "jax", "numpy"]
    cases = [(None, b) for b in backends]
    if args.legacy:
        cases += [("1.2.0", b) for b in backends if b != "native"]
    if args.cold:
        return cold(cases, args.model, args.repeat)
    medians = {}
    print(
        f"{'version':<8} {'backend':<7} {'warm-up s':>9} {'median s':>9}"
        f" {'min s':>7} {'max s':>7}  value"
    )
    for version, backend in cases:
        warmup, _ = first_value_seconds(args.model, version, backend)
        times, value = [], ""
        for _ in range(args.repeat):
            seconds, value = first_value_seconds(args.model, version, backend)
            times.append(seconds)
        medians[(version, backend)] = statistics.median(times)
        print(
            f"{version or 'latest':<8} {backend:<7} {warmup:9.2f} {statistics.median(times):9.2f}"
            f" {min(times):7.2f} {max(times):7.2f}  {value}"
        )
    if (None, "jax") in medians and (None, "native") in medians:
        print(f"jax / native (median): {medians[(None, 'jax')] / medians[(None, 'native')]:.1f}x")
    if not args.check_jax_cache:
        return 0
    jax = medians[(None, "jax")]
    probe = PROBE.format(model=args.model, version=None, backend="jax")
    bare = statistics.median(run_seconds("import jax")[0] for _ in range(args.repeat))
    uncached = statistics.median(
        run_seconds(probe, {"MODELSTORE_JAX_CACHE": "off"})[0] for _ in range(args.repeat)
    )
    share = (jax - bare) / max(uncached - bare, 1e-9)
    print(
        f"import jax {bare:.2f} s; JAX first value {jax:.2f} s warm, {uncached:.2f} s without its"
        f" compilation cache; warm / uncached past the import: {share:.2f}"
        f" (limit {CACHE_SHARE_LIMIT})"
    )
    if share > CACHE_SHARE_LIMIT:
        print("FAIL: JAX's persistent compilation cache does not save most of its compile time")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
