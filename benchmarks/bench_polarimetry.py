"""Throughput of the polarimeter (I, α⃗) against the intensity alone and against JAX, in one run.

For one model (1.4.0 or later): events/s of native (I, α⃗) through ``intensity_and_polarimeter``,
native intensity only through ``intensity``, and JAX (I, α⃗), at 10^6 phase-space events, each the
median of several runs after a warm-up (build and JIT excluded). Prints the ratios
native (I, α⃗) / native I (target >= 0.5) and native (I, α⃗) / JAX (I, α⃗) (target >= 8).

    python benchmarks/bench_polarimetry.py [--model default] [--events 1000000] [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

from modelstore import published_model
from modelstore.dalitz.kinematics import sample_dalitz


def _median_seconds(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="default")
    parser.add_argument("--version", default=None)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--registry", default=None)
    parser.add_argument("--no-jax", action="store_true", help="skip JAX (slow to compile)")
    args = parser.parse_args()

    native = published_model(
        args.model, version=args.version, backend="native", registry=args.registry
    )
    p = native.parameters
    s1, s2 = sample_dalitz(args.events, p["m0"], p["m1"], p["m2"], p["m3"], seed=1)
    results: dict[str, object] = {
        "model": native.ref,
        "events": args.events,
        "repeats": args.repeats,
    }

    start = time.perf_counter()
    native.intensity_and_polarimeter(s1[:1000], s2[:1000])  # build (or load) the library
    results["native_build_s"] = round(time.perf_counter() - start, 2)
    results["native_threads"] = native.evaluator.threads
    results["native_isa"] = native.evaluator.isa
    native.intensity(s1, s2)
    native.intensity_and_polarimeter(s1, s2)
    t_intensity = _median_seconds(lambda: native.intensity(s1, s2), args.repeats)
    t_polar = _median_seconds(lambda: native.intensity_and_polarimeter(s1, s2), args.repeats)
    results["native_intensity_events_per_s"] = round(args.events / t_intensity)
    results["native_polarimetry_events_per_s"] = round(args.events / t_polar)
    results["ratio_polarimetry_to_intensity"] = round(t_intensity / t_polar, 3)

    if not args.no_jax:
        jax_model = published_model(
            args.model, version=args.version, backend="jax", registry=args.registry
        )
        start = time.perf_counter()
        jax_model.intensity_and_polarimeter(s1, s2)  # compile (one program per chunk length)
        results["jax_compile_and_first_s"] = round(time.perf_counter() - start, 2)
        t_jax = _median_seconds(lambda: jax_model.intensity_and_polarimeter(s1, s2), args.repeats)
        results["jax_polarimetry_events_per_s"] = round(args.events / t_jax)
        results["ratio_native_to_jax_polarimetry"] = round(t_jax / t_polar, 2)
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
