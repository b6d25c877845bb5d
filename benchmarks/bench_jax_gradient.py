"""JAX gradient of a version's intensity: compile time and per-call time (issue 19).

    python benchmarks/bench_jax_gradient.py [--ref default@1.4.0] [--events 16384] [--plain]
        [--fast-compile]

Prints the first call (tracing and XLA compilation included) and the median of 3 further
calls of :class:`modelstore.backends.jax_gradient.JaxGradient` (the array program in segments,
each compiled on its own); with ``--plain`` also ``jax.jit(jax.grad(...))`` of the whole
program (default@1.4.0: 522 s to compile on the loaded 2-core machine, 2026-12-02).
It also times ``model.gradient`` on the ``jax`` backend (``jax.jacfwd`` of the program) for the
K(892) mass, width and one coupling (first call, then per call). ``--fast-compile`` compiles
every program with ``jax_gradient.FAST_COMPILE`` (XLA's expensive LLVM passes off) instead of
XLA's defaults, for comparison in a second run (2026-12-03, loaded machine, 4096 events:
segments 19.2 vs 23.4 s first call, 0.028 vs 0.020 s per call; jacfwd, with the options
applied to it in that run, 3.2 vs 4.1 s, 0.011 vs 0.002 s, so model.gradient keeps XLA's
defaults; plain jit(grad) compile 36.5 s vs 522 s).
JAX's persistent cache is off, so every run compiles.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ref", default="default@1.4.0")
    parser.add_argument("--events", type=int, default=1 << 14)
    parser.add_argument("--plain", action="store_true")
    parser.add_argument("--fast-compile", action="store_true")
    args = parser.parse_args()
    os.environ["MODELSTORE_JAX_CACHE"] = "off"
    from modelstore.backends.jax_gradient import FAST_COMPILE

    options = FAST_COMPILE if args.fast_compile else {}
    print(f"XLA options: {options or 'XLA defaults'}")
    from conftest import embedded_registry_root

    from modelstore import published_model
    from modelstore.backends.jax_gradient import JaxGradient
    from modelstore.dalitz.kinematics import sample_dalitz
    from modelstore.registry import Registry

    model = published_model(args.ref, registry=Registry(embedded_registry_root()), backend="numpy")
    p = model.parameters
    s1, s2 = sample_dalitz(args.events, *(float(p[f"m{i}"]) for i in range(4)), seed=1)
    gradient = JaxGradient(model, chunk=args.events, compiler_options=options)
    start = time.perf_counter()
    gradient(s1, s2)
    first = time.perf_counter() - start
    times = []
    for _ in range(3):
        start = time.perf_counter()
        gradient(s1, s2)
        times.append(time.perf_counter() - start)
    print(f"{args.ref}: {len(gradient.segments)} segments, {args.events} events")
    print(f"segmented: first call {first:.1f} s, then {statistics.median(times):.3f} s per call")
    jax_model = published_model(args.ref, registry=model.registry, backend="jax")
    wrt = ["m_K892", "Gamma_K892", "H_prod_K892_1_1half"]  # ASCII aliases
    start = time.perf_counter()
    jax_model.gradient(s1, s2, wrt)
    first = time.perf_counter() - start
    times = []
    for _ in range(3):
        start = time.perf_counter()
        jax_model.gradient(s1, s2, wrt)
        times.append(time.perf_counter() - start)
    print(
        f"model.gradient (jax, jacfwd, XLA defaults, {len(wrt)} parameters): "
        f"first call {first:.1f} s, then {statistics.median(times):.3f} s per call"
    )
    if args.plain:
        import jax
        import jax.numpy as jnp

        from modelstore.backends.base import pack_parameters
        from modelstore.format.arraycode import compile_array_program

        source = model.registry.read_file(model.manifest, "array-source").decode()
        program = compile_array_program(source)
        par = jnp.asarray(pack_parameters(model.manifest.parameters, p))
        a, b = jnp.asarray(s1), jnp.asarray(s2)
        grad = jax.jit(
            jax.grad(lambda q: program(a, b, q, jnp).sum()),
            compiler_options=options,
        )
        start = time.perf_counter()
        compiled = grad.lower(par).compile()
        compile_s = time.perf_counter() - start
        jax.block_until_ready(compiled(par))
        times = []
        for _ in range(3):
            start = time.perf_counter()
            jax.block_until_ready(compiled(par))
            times.append(time.perf_counter() - start)
        print(
            f"plain jit(grad): compile {compile_s:.1f} s, {statistics.median(times):.3f} s per call"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
