"""Publish time through the one publish path, and native vs JAX events/s per decay.

For each test decay (a hand-written sympy toy, D⁰ → K⁻ π⁺ π⁰ and J/ψ → K⁰ Σ⁺ p̄ built with
ampform-dpd, from tests/) and for the LHCb `default` model (built from upstream, then through the
same ``build_forms``), it prints the seconds to unfold the model, to publish it with C (checks,
artifacts, the publish-time gate with a cold C build) into a fresh temporary registry, and the
events/s of the native and JAX evaluators at 10^6 phase-space events (median of 7 calls, the
two called in turn, after one warm-up call). Versions are published with the latest native
lowering (4: fewer roots and divisions in the C source, as 3; the array program that JAX runs is
lowered as before).

    python benchmarks/bench_publish.py [--events 1000000] [--skip-default] [--skip-jpsi]

Needs the publish extra (ampform-dpd; the upstream package for `default`) and a C compiler.
The targets (issue 17): publish ≤ 60 s with C; native ≥ 5× JAX.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))


def _events_per_second(models: dict, s1, s2, repeat: int = 7) -> dict[str, float]:
    """Events/s of each backend: median of ``repeat`` calls, the backends called in turn (one
    call each per round), so that both see the same load on a shared machine."""
    for model in models.values():
        model.intensity(s1[:1000], s2[:1000])  # build / compile outside the timing
        model.intensity(s1, s2)
    times: dict[str, list[float]] = {name: [] for name in models}
    for _ in range(repeat):
        for name, model in models.items():
            start = time.perf_counter()
            model.intensity(s1, s2)
            times[name].append(time.perf_counter() - start)
    return {name: s1.size / statistics.median(t) for name, t in times.items()}


def _measure(name: str, make, registry_root: Path, events: int) -> dict:
    from modelstore import published_model
    from modelstore.dalitz.kinematics import sample_dalitz
    from modelstore.publish.generic import publish_forms

    start = time.perf_counter()
    forms, about = make()
    unfold = time.perf_counter() - start
    outcome = publish_forms(forms, name, "1.0.0", registry=registry_root, **about)
    masses = [published_model(name, registry=registry_root).parameters[f"m{i}"] for i in range(4)]
    s1, s2 = sample_dalitz(events, *(float(m) for m in masses), seed=1)
    rates = _events_per_second(
        {b: published_model(name, backend=b, registry=registry_root) for b in ("native", "jax")},
        s1,
        s2,
    )
    return {"unfold": unfold, "publish": outcome.seconds, "gate": outcome.gate, **rates}


def _toy():
    from toy_models import toy_forms

    return toy_forms(), {"decay": "toy 0 → 1 2 3", "particles": ["D⁰", "K⁻", "π⁺", "π⁰"]}


def _ampform(builder):
    def make():
        import ampform_models

        from modelstore.publish.ampform_adapter import about_ampform_dpd, forms_from_ampform_dpd

        model = getattr(ampform_models, builder)()
        about = about_ampform_dpd(model)
        return forms_from_ampform_dpd(model), {
            "decay": about.decay,
            "particles": list(about.particles),
        }

    return make


def _default(registry_root: Path, events: int) -> dict:
    """`default` through build_model (upstream) → build_forms, timed as `modelstore publish`."""
    from modelstore import published_model
    from modelstore.dalitz.kinematics import sample_dalitz
    from modelstore.publish.build import publish_models
    from modelstore.registry import Registry

    start = time.perf_counter()
    publish_models(Registry(registry_root), [0], "9.0.0")
    seconds = time.perf_counter() - start
    parameters = published_model("default", registry=registry_root).parameters
    s1, s2 = sample_dalitz(events, *(float(parameters[f"m{i}"]) for i in range(4)), seed=1)
    rates = _events_per_second(
        {
            b: published_model("default", backend=b, registry=registry_root)
            for b in ("native", "jax")
        },
        s1,
        s2,
    )
    return {"unfold": float("nan"), "publish": seconds, "gate": {}, **rates}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--skip-default", action="store_true")
    parser.add_argument("--skip-jpsi", action="store_true")
    args = parser.parse_args()
    from modelstore._native.openmp import prefer_sleeping_threads

    # as the ``modelstore`` command does (unless OMP_WAIT_POLICY is set): on a loaded machine
    # spinning OpenMP threads cost the native evaluator up to 10x (2 cores, load 8)
    prefer_sleeping_threads()
    cases = [("toy", _toy), ("d0-kpipi0", _ampform("d0_model"))]
    if not args.skip_jpsi:
        cases.append(("jpsi-k0-sigma-pbar", _ampform("jpsi_model")))
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["MODELSTORE_CACHE_DIR"] = str(Path(tmp) / "cache")  # cold C builds
        results = {}
        for name, make in cases:
            results[name] = _measure(name, make, Path(tmp) / "registry", args.events)
        if not args.skip_default:
            results["default (LHCb)"] = _default(Path(tmp) / "lhcb", args.events)
    header = f"{'model':<22} {'unfold s':>9} {'publish s':>10} {'native ev/s':>12} {'JAX ev/s':>10}"
    print(header + " ratio")
    for name, r in results.items():
        print(
            f"{name:<22} {r['unfold']:>9.1f} {r['publish']:>10.1f} {r['native'] / 1e6:>10.2f} M"
            f" {r['jax'] / 1e6:>8.2f} M {r['native'] / r['jax']:>5.1f}x"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
