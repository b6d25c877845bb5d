"""Fresh process to the first value, per backend, with warm caches.

Each measurement is a new Python process that runs

    from modelstore import published_model
    published_model(MODEL, version=VERSION, backend=BACKEND).intensity(1.0, 3.0)

and is timed from before the process starts until it exits. One warm-up run per case fills the
caches (native build, JAX's compilation cache); the median of ``--repeat`` runs is reported.

    python benchmarks/bench_first_value.py [--repeat 5] [--legacy] [--max-jax-seconds 2.0]

``--legacy`` adds the 1.2.0 version (JAX and numpy lambdified from the pickle by tensorwaves)
for comparison. ``--max-jax-seconds`` makes the script exit 1 when the JAX median of the latest
version is above the limit (CI uses 2.0).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

PROBE = (
    "import warnings; warnings.simplefilter('ignore')\n"
    "from modelstore import published_model\n"
    "print(published_model({model!r}, version={version!r}, backend={backend!r})"
    ".intensity(1.0, 3.0))\n"
)


def first_value_seconds(model: str, version: str | None, backend: str) -> tuple[float, str]:
    code = PROBE.format(model=model, version=version, backend=backend)
    start = time.perf_counter()
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if run.returncode != 0:
        msg = f"{model}@{version} {backend} failed: {run.stderr.strip()[-400:]}"
        raise SystemExit(msg)
    return elapsed, run.stdout.strip()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="default")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--legacy", action="store_true", help="also time version 1.2.0")
    parser.add_argument("--max-jax-seconds", type=float, default=None)
    args = parser.parse_args()

    cases = [(None, b) for b in ("native", "jax", "numpy")]
    if args.legacy:
        cases += [("1.2.0", b) for b in ("jax", "numpy")]
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
    jax = medians[(None, "jax")]
    print(f"jax / native (median): {jax / medians[(None, 'native')]:.1f}x")
    if args.max_jax_seconds is not None and jax > args.max_jax_seconds:
        print(f"FAIL: JAX first value {jax:.2f} s > {args.max_jax_seconds:.2f} s")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
