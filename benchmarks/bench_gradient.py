"""Gradients: generation, compilation and speed of value+gradient against value only.

Prints, for one model (latest version), for 4 columns and for every parameter:

* generation time of the derivative C unit: cold (sympy: srepr forms, lowering, tangents,
  printing) and warm (the generated-text cache of a second call, in a fresh process);
* compile time of the unit (the verified build cache emptied first);
* events/s (median of several runs) of the intensity alone (``ms_evaluate``) and of
  value+gradient, native and JAX (``jax.jacfwd`` of the array program; JIT timed separately).

Runs in a private temporary cache, so nothing is reused from earlier runs.

    python benchmarks/bench_gradient.py [--model default] [--events 200000] [--repeats 5]
        [--jax-events 20000] [--no-jax]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

WARM = r"""
import sys, time
start = time.perf_counter()
from modelstore import published_model
from modelstore._native.gradient import native_gradient, gradient_columns
m = published_model(sys.argv[1], backend="native")
wrt = sys.argv[2:] or [p.name for p in m.manifest.parameters]
unit = native_gradient(m, gradient_columns(m.manifest.parameters, wrt))
print(time.perf_counter() - start, unit.generated, unit.build_status, "sympy" in sys.modules)
"""


def _median_rate(fn, n: int, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return n / statistics.median(times)


def _generate_and_build(model, wrt):
    """(cold generation s, compile s): sympy to text (kept in the cache), then the build."""
    from modelstore._native.build import load_or_build
    from modelstore._native.generated import cached_text
    from modelstore._native.gradient import gradient_columns, model_forms, unit_key
    from modelstore._native.gradient_source import GRADIENT_CDEF, gradient_c_source
    from modelstore._native.lowering import _LAST, lower_model

    columns = gradient_columns(model.manifest.parameters, wrt)
    _LAST.clear()
    start = time.perf_counter()
    names = [p.name for p in model.manifest.parameters]
    text = gradient_c_source(lower_model(model_forms(model), names), columns)
    generation = time.perf_counter() - start
    _, digest, _ = cached_text(unit_key(model, columns, "c"), lambda: text)
    start = time.perf_counter()
    load_or_build(digest, lambda: text, GRADIENT_CDEF)
    return generation, time.perf_counter() - start


def _jax(name, wrt, s1, s2, repeats, native_rate):
    from modelstore import published_model

    model = published_model(name, backend="jax")
    start = time.perf_counter()
    model.value_and_gradient(s1, s2, wrt)
    jit = time.perf_counter() - start
    rate = _median_rate(lambda: model.value_and_gradient(s1, s2, wrt), s1.size, repeats)
    model.intensity(s1, s2)
    value = _median_rate(lambda: model.intensity(s1, s2), s1.size, repeats)
    print(f"  jax value only:           {value:12.0f} events/s")
    print(f"  jax value+gradient:       {rate:12.0f} events/s  (first call, JIT: {jit:.1f} s)")
    print(f"  native/jax (value+gradient): {native_rate / rate:.1f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="default")
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--jax-events", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-jax", action="store_true")
    args = parser.parse_args()
    os.environ["MODELSTORE_CACHE_DIR"] = tempfile.mkdtemp(prefix="bench-gradient-")

    from modelstore import published_model
    from modelstore.dalitz.kinematics import sample_dalitz

    model = published_model(args.model, backend="native")
    p = model.parameters
    s1, s2 = sample_dalitz(args.events, p["m0"], p["m1"], p["m2"], p["m3"], seed=1)
    every = [q.name for q in model.manifest.parameters]
    four = [
        n for n in every
        if n.startswith(("m_{K(892)}", "\\Gamma_{K(892)}", "R_\\mathrm{dec}"))
        or n == "\\mathcal{H}^\\mathrm{production}[K(892), 1, 1/2]"
    ]  # fmt: skip
    print(f"model {model.ref}, {args.events} events (JAX: {args.jax_events}), "
          f"median of {args.repeats}; {os.cpu_count()} CPUs, "
          f"threads {os.environ.get('MODELSTORE_NUM_THREADS', 'all')}")  # fmt: skip
    model.intensity(s1[:10], s2[:10])  # build the value library first
    value_rate = _median_rate(lambda: model.intensity(s1, s2), args.events, args.repeats)
    print(f"native value only (ms_evaluate):        {value_rate:12.0f} events/s")
    for label, wrt in (("4 parameters", four), (f"all {len(every)} parameters", every)):
        generation, compile_s = _generate_and_build(model, wrt)
        warm = subprocess.run(
            [sys.executable, "-c", WARM, model.model_id, *(wrt if wrt is four else [])],
            capture_output=True, text=True, check=True,
        ).stdout.split()  # fmt: skip
        model.gradient(s1[:10], s2[:10], wrt)
        rate = _median_rate(lambda w=wrt: model.value_and_gradient(s1, s2, w), args.events,
                            args.repeats)  # fmt: skip
        columns = model.gradient(1.3, 3.5, wrt).shape[-1]
        print(f"[{label}, {columns} columns]")
        print(f"  generation cold (sympy):  {generation:8.2f} s")
        print(f"  generation warm (2nd process, cache; sympy imported: {warm[3]}):"
              f" {float(warm[0]):.2f} s (generated: {warm[1]}, build: {warm[2]})")  # fmt: skip
        print(f"  compile:                  {compile_s:8.2f} s")
        print(f"  native value+gradient:    {rate:12.0f} events/s"
              f"  ({value_rate / rate:.1f}x the value's time)")  # fmt: skip
        if args.no_jax:
            continue
        _jax(args.model, wrt, s1[: args.jax_events], s2[: args.jax_events], args.repeats, rate)


if __name__ == "__main__":
    main()
