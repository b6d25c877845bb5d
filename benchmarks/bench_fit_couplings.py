"""A coupling-only fit's NLL + gradient from the cache against one full native evaluation.

For one model (1.4.0 or later; default ``default``) with every production coupling free but
the first (the fit's reference): builds a :class:`~modelstore.fit.couplings.CouplingCache` over
``--events`` data events (uniform over the Dalitz region) and ``--normalization`` quasi-random
normalization points, then prints the cache build time, the median time of one
``nll_and_gradient`` call as a fit makes them (back to back), the median time of one native
``intensity`` evaluation of the same data + normalization points, their ratio (target >= 20),
the same ratio in CPU time (all threads; steadier on a shared machine) and the cache's size.
The two are timed interleaved; the first call after each native evaluation, whose data that
evaluation has evicted from the processor's caches, is reported apart (``after_native``).

    python benchmarks/bench_fit_couplings.py [--model default] [--events 100000]
        [--normalization 1000000] [--repeats 7]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np

from modelstore import published_model
from modelstore.dalitz.kinematics import sample_dalitz
from modelstore.dalitz.rates import COUPLING, phase_space_points
from modelstore.fit.couplings import CouplingCache

ITERATIONS = 5  # per repeat, after one native evaluation


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="default")
    parser.add_argument("--version", default=None)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--normalization", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--registry", default=None)
    args = parser.parse_args()

    model = published_model(
        args.model, version=args.version, backend="native", registry=args.registry
    )
    p = model.parameters
    free = [n for n in p if COUPLING.match(n) and "production" in n][1:]
    s1, s2 = sample_dalitz(args.events, p["m0"], p["m1"], p["m2"], p["m3"], seed=1)
    n1, n2 = phase_space_points(model, args.normalization, seed=0)
    model.intensity(s1[:1000], s2[:1000])  # build (or load) the native library

    start = time.perf_counter()
    cache = CouplingCache.build(model, (s1, s2), normalization=(n1, n2), free=free)
    build_s = time.perf_counter() - start
    x = cache.values_from()
    rng = np.random.default_rng(2)
    cache.nll_and_gradient(x)
    a1, a2 = np.concatenate([s1, n1]), np.concatenate([s2, n2])
    model.intensity(a1, a2)
    # A fit calls the cache back to back (the minimiser's own work between calls is small), so
    # the cache's bytes stay in the processor's caches as far as they fit; one native
    # evaluation of 1.1e6 points in between evicts them. Each repeat: one native evaluation,
    # then ITERATIONS iterations; the first of them ("after native") is reported apart, the
    # others are the fit's iterations. Interleaved, so that both see the same load.
    walls: dict[str, list[float]] = {"iteration": [], "after_native": [], "native": []}
    cpus: dict[str, list[float]] = {"iteration": [], "native": []}
    for _ in range(args.repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        model.intensity(a1, a2)
        walls["native"].append(time.perf_counter() - wall)
        cpus["native"].append(time.process_time() - cpu)
        for i in range(ITERATIONS):
            point = x + 0.1 * rng.normal(size=x.size)
            wall, cpu = time.perf_counter(), time.process_time()
            cache.nll_and_gradient(point)
            key = "after_native" if i == 0 else "iteration"
            walls[key].append(time.perf_counter() - wall)
            if i:
                cpus["iteration"].append(time.process_time() - cpu)
    t_iteration = statistics.median(walls["iteration"])
    t_cold = statistics.median(walls["after_native"])
    t_native = statistics.median(walls["native"])
    cpu_ratio = statistics.median(cpus["native"]) / statistics.median(cpus["iteration"])
    print(
        json.dumps(
            {
                "model": model.ref,
                "free_couplings": len(free),
                "real_parameters": len(cache.labels),
                "events": args.events,
                "normalization_points": args.normalization,
                "threads": cache.threads,
                "cache_build_s": round(build_s, 2),
                "cache_mb": round(cache.nbytes / 1e6, 1),
                "stored_columns_per_event": cache.n_columns,
                "iteration_ms_median": round(1e3 * t_iteration, 3),
                "iteration_after_native_ms_median": round(1e3 * t_cold, 3),
                "native_full_evaluation_ms_median": round(1e3 * t_native, 2),
                "native_points": a1.size,
                "ratio_native_to_iteration": round(t_native / t_iteration, 1),
                "ratio_native_to_iteration_after_native": round(t_native / t_cold, 1),
                "ratio_in_cpu_time": round(cpu_ratio, 1),
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
