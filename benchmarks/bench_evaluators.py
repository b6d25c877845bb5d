"""Compare the evaluator backends side by side for one model, in one run.

Prints, for the default model (latest version): events/s of native, JAX (tensorwaves) and
numpy at 10^6 phase-space events (median of several runs; build and JIT timed separately),
the native/JAX ratio, peak extra memory at 10^7 events for native and JAX (each measured in
its own process), and the time from a fresh process to the first value.

    python benchmarks/bench_evaluators.py [--model default] [--events 1000000] [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

FRESH = (
    "import sys; from modelstore import published_model; "
    "print(published_model({ref!r}).intensity(1.0, 3.0)); "
    "print('heavy imports:',"
    " sorted(m for m in ('jax', 'sympy', 'tensorwaves') if m in sys.modules))"
)

MEMORY = r"""
import json, sys
from modelstore import published_model
from modelstore.dalitz.kinematics import sample_dalitz
ref, backend, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
model = published_model(ref, backend=backend)
p = model.parameters
model.intensity(*sample_dalitz(1000, p["m0"], p["m1"], p["m2"], p["m3"]))  # build / JIT
s1, s2 = sample_dalitz(n, p["m0"], p["m1"], p["m2"], p["m3"], seed=1)
def status(key):
    with open("/proc/self/status") as f:
        return 1024 * next(int(l.split()[1]) for l in f if l.startswith(key))
with open("/proc/self/clear_refs", "w") as f:   # reset the peak (VmHWM) to the current RSS
    f.write("5")
before = status("VmRSS")
out = model.intensity(s1, s2)
print(json.dumps({"inputs": s1.nbytes + s2.nbytes, "output": out.nbytes,
                  "growth": status("VmHWM") - before}))
"""


def _median_rate(fn, n: int, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return n / statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="default")
    parser.add_argument("--events", type=int, default=10**6)
    parser.add_argument("--memory-events", type=int, default=10**7)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    from modelstore import published_model
    from modelstore.dalitz.kinematics import sample_dalitz

    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores, model {args.model}")
    model = published_model(args.model, backend="numpy")
    p = model.parameters
    s1, s2 = sample_dalitz(args.events, p["m0"], p["m1"], p["m2"], p["m3"], seed=1)
    n = s1.size
    rates, setup = {}, {}

    with tempfile.TemporaryDirectory() as cache:
        os.environ["MODELSTORE_CACHE_DIR"] = cache
        start = time.perf_counter()
        native = published_model(args.model, backend="native")
        native.intensity(1.0, 3.0)
        setup["native"] = f"cold build {time.perf_counter() - start:.2f} s"
        rates["native"] = _median_rate(lambda: native.intensity(s1, s2), n, args.repeats)
        threads = native.evaluator.threads
        isa = native.evaluator.isa
        native.evaluator.threads = 1
        rates[f"native 1 thread {isa}"] = _median_rate(
            lambda: native.intensity(s1, s2), n, args.repeats
        )
        if native.evaluator.abi >= 3:
            for lower in ("avx2", "portable"):
                native.evaluator.limit_isa(lower)
                if native.evaluator.isa == lower and lower != isa:
                    rates[f"native 1 thread {lower}"] = _median_rate(
                        lambda: native.intensity(s1, s2), n, args.repeats
                    )
            native.evaluator.limit_isa("avx512")
        native.evaluator.threads = threads
        reference = native.intensity(s1, s2)
        del os.environ["MODELSTORE_CACHE_DIR"]

    start = time.perf_counter()
    jax_model = published_model(args.model, backend="jax")
    jax_model.intensity(s1, s2)
    setup["jax"] = f"lambdify + JIT {time.perf_counter() - start:.2f} s"
    rates["jax"] = _median_rate(lambda: jax_model.intensity(s1, s2), n, args.repeats)
    jax_values = jax_model.intensity(s1, s2)

    start = time.perf_counter()
    model.intensity(1.0, 3.0)
    setup["numpy"] = f"lambdify {time.perf_counter() - start:.2f} s"
    rates["numpy"] = _median_rate(lambda: model.intensity(s1, s2), n, max(2, args.repeats // 2))

    deviation = np.nanmax(np.abs(reference / jax_values - 1))
    print(f"\nthroughput at {n:,} phase-space events (median of {args.repeats} runs)")
    for name, rate in rates.items():
        print(f"  {name:<24} {rate / 1e6:8.2f} M events/s   {setup.get(name, '')}")
    print(
        f"  native / jax ratio   {rates['native'] / rates['jax']:8.1f}x"
        f"  (native: {threads} threads, {isa})"
    )
    print(f"  largest |native/jax - 1| = {deviation:.1e}")

    print(f"\npeak memory at {args.memory_events:,} events (own process each)")
    for backend in ("native", "jax"):
        proc = subprocess.run(
            [sys.executable, "-c", MEMORY, args.model, backend, str(args.memory_events)],
            capture_output=True,
            text=True,
            check=True,
        )
        m = json.loads(proc.stdout.strip().splitlines()[-1])
        ratio = (m["inputs"] + m["growth"]) / (m["inputs"] + m["output"])
        print(
            f"  {backend:<8} RSS growth during the call {m['growth'] / 2**20:8.1f} MiB"
            f" (output {m['output'] / 2**20:.1f} MiB, inputs {m['inputs'] / 2**20:.1f} MiB);"
            f" (inputs + growth) / (inputs + output) = {ratio:.2f}"
        )

    print("\nfresh process to first value (warm build cache), median of 5:")
    code = FRESH.format(ref=args.model)
    times = []
    for _ in range(5):
        start = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        )
        times.append(time.perf_counter() - start)
    print(
        f"  {statistics.median(times):.3f} s wall;"
        f" output: {' | '.join(proc.stdout.split(chr(10))[:2])}"
    )


if __name__ == "__main__":
    main()
