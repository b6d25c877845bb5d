"""A fit of K(892)'s mass, width and couplings: modelstore (native) against tensorwaves' own route.

Default mode: one toy of ``--events`` events (default 20 000) of the ``default`` model, fitted
for m, Γ of K(892) and its production couplings but the reference one, on the same
``--normalization`` quasi-random phase-space points (default: the rule,
max(100 000, 100 × events)) by

* modelstore: ``published_model(...)`` + ``modelstore.fit.fit`` (native, exact gradient);
* tensorwaves: ``load_forms("srepr")`` + ``create_parametrized_function`` (JAX) +
  ``SympyDataTransformer`` + ``UnbinnedNLL`` + ``Minuit2`` (its numerical gradient);

then prints both NLL minima, their difference (target |ΔNLL| <= 1e-3), end-to-end times
including set-up, and their ratio (target >= 10). ``--skip-tensorwaves`` times modelstore only.

``--toys N``: N toys of ``--toy-events`` events (default 1000), K(892) mass and width free,
default normalization; prints per parameter the pull mean ± its error and the pull width.

    python benchmarks/bench_fit.py [--events 20000] [--normalization N] [--skip-tensorwaves]
    python benchmarks/bench_fit.py --toys 200 [--toy-events 1000] [--toy-normalization N]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from fit_toys import generate_toy

from modelstore import published_model
from modelstore.dalitz.rates import phase_space_points
from modelstore.fit import fit, normalization_size

FREE = ["m_K892", "Gamma_K892", "H_prod_K892_m1_m1half", "H_prod_K892_0_1half",
        "H_prod_K892_1_1half"]  # fmt: skip
START_SHIFT = 1.02  # every free parameter starts 2 % off its generating value


def tensorwaves_fit(model_ref: str, data: tuple, points: tuple, start: dict) -> tuple:
    """tensorwaves' own route, from the srepr forms; returns (NLL, values, seconds)."""
    began = time.perf_counter()
    from tensorwaves.data.transform import SympyDataTransformer
    from tensorwaves.estimator import UnbinnedNLL
    from tensorwaves.function.sympy import create_parametrized_function
    from tensorwaves.optimizer import Minuit2

    model = published_model(model_ref, backend="numpy")
    forms = model.load_forms("srepr")
    defaults = forms["parameter_defaults"]
    function = create_parametrized_function(
        forms["intensity_expr"], parameters=defaults, backend="jax", use_cse=True
    )
    masses = {s: v for s, v in defaults.items() if str(s) in ("m0", "m1", "m2", "m3")}
    definitions = {**forms["variables"], **forms["sigma3"]}
    definitions = {s: e.xreplace(definitions).xreplace(masses) for s, e in definitions.items()}
    transformer = SympyDataTransformer.from_sympy(definitions, backend="jax")

    def complete(pair: tuple) -> dict:
        sample = {"sigma1": pair[0], "sigma2": pair[1]}
        return {**transformer(sample), **sample}

    estimator = UnbinnedNLL(function, complete(data), complete(points), backend="jax")
    result = Minuit2().optimize(estimator, start)
    seconds = time.perf_counter() - began
    return float(result.estimator_value), result.parameter_values, seconds, result


def main_fit(args: argparse.Namespace) -> None:
    began = time.perf_counter()
    model = published_model(args.model, backend="native")
    names = list(model.parameter_overrides(dict.fromkeys(FREE)))
    truth = model.parameters
    data = generate_toy(model, args.events, seed=args.seed)
    n_norm = args.normalization or normalization_size(args.events)
    points = phase_space_points(model, n_norm, seed=0)
    start = {n: truth[n] * START_SHIFT for n in names}
    print(f"toy: {args.events} events, {n_norm} normalization points"
          f" ({time.perf_counter() - began:.1f} s to make)")  # fmt: skip

    t0 = time.perf_counter()
    model = published_model(args.model, backend="native")  # set-up counted from here
    ours = fit(model, data, free=FREE, normalization=points, start=start)
    ours_s = time.perf_counter() - t0
    print(f"modelstore: NLL {ours.nll:.6f} valid={ours.valid} nfcn={ours.nfcn}"
          f" ngrad={ours.ngrad}, {ours_s:.2f} s end to end")  # fmt: skip
    for label in ours.labels:
        print(f"  {label:>50s} = {ours.values[label]:+.6f} ± {ours.errors[label]:.6f}")
    if args.skip_tensorwaves:
        return
    nll, values, tw_s, result = tensorwaves_fit(args.model, data, points, start)
    print(f"tensorwaves: NLL {nll:.6f} valid={result.minimum_valid}"
          f" nfcn={result.function_calls}, {tw_s:.2f} s end to end")  # fmt: skip
    for name, value in values.items():
        print(f"  {name:>50s} = {value}")
    print(f"ΔNLL (modelstore - tensorwaves) = {ours.nll - nll:+.2e} (target |ΔNLL| <= 1e-3)")
    print(f"speed-up end to end: {tw_s / ours_s:.1f}x (target >= 10x)")


def main_toys(args: argparse.Namespace) -> None:
    model = published_model(args.model, backend="native")
    free = ["m_K892", "Gamma_K892"]
    names = list(model.parameter_overrides(dict.fromkeys(free)))
    truth = model.parameters
    pulls: dict[str, list[float]] = {n: [] for n in names}
    invalid = 0
    began = time.perf_counter()
    for k in range(args.toys):
        data = generate_toy(model, args.toy_events, seed=1000 + k)
        result = fit(model, data, free=free, seed=k, normalization=args.toy_normalization)
        if not result.valid:
            invalid += 1
            continue
        for n in names:
            pulls[n].append((result.values[n] - float(truth[n])) / result.errors[n])
    print(f"{args.toys} toys of {args.toy_events} events, {invalid} invalid fits,"
          f" {time.perf_counter() - began:.0f} s")  # fmt: skip
    for n in names:
        p = np.array(pulls[n])
        width = p.std(ddof=1)
        err, width_err = width / np.sqrt(p.size), width / np.sqrt(2 * (p.size - 1))
        print(f"  {n:>20s}: pull mean {p.mean():+.3f} ± {err:.3f},"
              f" width {width:.3f} ± {width_err:.3f}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="default")
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--normalization", type=int, default=None)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--skip-tensorwaves", action="store_true")
    parser.add_argument("--toys", type=int, default=0)
    parser.add_argument("--toy-events", type=int, default=1000)
    parser.add_argument("--toy-normalization", type=int, default=None)
    args = parser.parse_args()
    if args.toys:
        main_toys(args)
    else:
        main_fit(args)


if __name__ == "__main__":
    main()
