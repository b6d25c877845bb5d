"""What a user gets from README command 1 (`pip install .`, no extras), checked from outside the
repository: run by .ci/run in a fresh venv, from a temporary folder.

Checks (exit 1 and a line per failure if any fails):
- the upstream stack (ampform, ampform-dpd, polarimetry, qrules) is not importable;
- every backend x every published version of `default` gives the seed values;
- (every backend of the latest version of all 18 models against its stored reference values is
  `modelstore verify --numeric --latest`, the next step of .ci/run);
- a registry not trusted to run code (an unsigned copy of `default@1.4.0`) answers through the
  data-only path, and refuses `native`, in a fresh process;
- `auto` answers with no working C compiler (MODELSTORE_CC=/bin/false), in a fresh process;
- loading a verified native model imports neither jax nor sympy;
- no heavy extra is installed (dask, distributed, matplotlib, pandas, pyarrow, s3fs, uproot), and a
  command that needs one exits non-zero with one line naming `pip install 'modelstore[EXTRA]'`.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import modelstore
from modelstore import published_model

SEED = {(1.0, 3.0): 1156.5307379422927, (1.1, 3.2): 636.1087670531597}
RTOL = 1e-9
failures: list[str] = []


def check(condition: bool, what: str) -> None:
    print(("ok    " if condition else "FAIL  ") + what, flush=True)
    if not condition:
        failures.append(what)


def main() -> int:
    here = Path.cwd().resolve()
    package = Path(modelstore.__file__).resolve()
    check("site-packages" in package.parts, f"modelstore is the installed package ({package})")
    check(
        not here.is_relative_to(Path(__file__).resolve().parents[1]),  # a path, not a prefix
        f"runs outside the repository ({here})",
    )
    for name in ("ampform", "ampform_dpd", "polarimetry", "qrules"):
        check(importlib.util.find_spec(name) is None, f"{name} is not importable")

    registry = modelstore.default_registry()
    versions = sorted(
        registry.index().models["default"].versions, key=lambda v: tuple(map(int, v.split(".")))
    )
    for version in versions:
        manifest = registry.manifest(f"default@{version}")
        backends = ["jax", "numpy"] + (["native"] if manifest.has_file("native-source") else [])
        for backend in backends:
            try:
                model = published_model("default", version=version, backend=backend)
                values = {point: model.intensity(*point) for point in SEED}
                ok = all(abs(values[p] - SEED[p]) <= RTOL * SEED[p] for p in SEED)
                check(ok, f"default@{version} {backend}: seed values {values[(1.0, 3.0)]!r}")
            except Exception as exc:
                check(False, f"default@{version} {backend}: {type(exc).__name__}: {exc}")

    probe = (
        "import sys, warnings\n"
        "warnings.simplefilter('ignore')\n"
        "from modelstore import published_model\n"
        "m = published_model('default')\n"
        "print(m.intensity(1.0, 3.0), m.backend)\n"
    )
    env = {**os.environ, "MODELSTORE_CC": "/bin/false"}
    run = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=False
    )
    answered = run.returncode == 0 and abs(float(run.stdout.split()[0]) - SEED[(1.0, 3.0)]) < 1e-6
    check(
        answered,
        f"auto without a compiler answers: {run.stdout.strip() or run.stderr.strip()[-300:]}",
    )

    untrusted = Path("unsigned-registry")
    copy = (
        "import json, shutil, sys\n"
        "from pathlib import Path\n"
        "from modelstore import default_registry, published_model\n"
        "from modelstore.registry import blob_path\n"
        "src = default_registry()\n"
        "man = src.manifest('default@1.4.0')\n"
        f"dst = Path({str(untrusted)!r})\n"
        "paths = ['manifests/default/1.4.0.json'] + [blob_path(f.digest) for f in man.files]\n"
        "for p in paths:\n"
        "    (dst / p).parent.mkdir(parents=True, exist_ok=True)\n"
        "    shutil.copyfile(src.root / p, dst / p)\n"
        "index = json.loads((src.root / 'manifests/index.json').read_text())\n"
        "entry = dict(index['models']['default'], latest='1.4.0')\n"
        "entry['versions'] = {'1.4.0': index['models']['default']['versions']['1.4.0']}\n"
        "index['models'] = {'default': entry}\n"
        "(dst / 'manifests/index.json').write_text(json.dumps(index))\n"
        "m = published_model('default', registry=dst, backend='numpy')\n"
        "print(m.intensity(1.0, 3.0), m.backend)\n"
        "try:\n"
        "    published_model('default', registry=dst, backend='native').intensity(1.0, 3.0)\n"
        "except Exception as exc:\n"
        "    print(type(exc).__name__)\n"
    )
    run = subprocess.run([sys.executable, "-c", copy], capture_output=True, text=True, check=False)
    words = run.stdout.split()
    check(
        run.returncode == 0
        and abs(float(words[0]) - SEED[(1.0, 3.0)]) < 1e-6
        and words[-1] == "UntrustedCodeError",
        f"an unsigned folder is data-only: {run.stdout.strip() or run.stderr.strip()[-300:]}",
    )

    light = (
        "import sys\n"
        "from modelstore import published_model\n"
        "published_model('default', backend='native').intensity(1.0, 3.0)\n"
        "print(sorted(m for m in ('jax', 'sympy', 'tensorwaves') if m in sys.modules))\n"
    )
    run = subprocess.run([sys.executable, "-c", light], capture_output=True, text=True, check=False)
    check(
        run.returncode == 0 and run.stdout.strip() == "[]",
        f"native loads without jax or sympy: {run.stdout.strip()}",
    )

    for name in ("dask", "distributed", "matplotlib", "pandas", "pyarrow", "s3fs", "uproot"):
        check(importlib.util.find_spec(name) is None, f"{name} is not installed (an extra)")

    cli = str(Path(sys.executable).with_name("modelstore"))
    Path("events.csv").write_text("sigma1,sigma2\n1.0,3.0\n")
    commands = {
        "plot": ([cli, "plot", "default", "-o", "x.png"], "modelstore[plot]"),
        "plot: band": ([cli, "band", "default", "-o", "band.png"], "modelstore[plot]"),
        "events": (
            [
                cli,
                "eval",
                "default",
                "-i",
                "events.csv",
                "-o",
                "out.npz",
                "--sigma1-branch",
                "sigma1",
                "--sigma2-branch",
                "sigma2",
            ],
            "modelstore[events]",
        ),
        "s3": ([cli, "--registry", "s3://bucket/registry", "list"], "modelstore[s3]"),
    }
    for extra, (argv, wanted) in commands.items():
        run = subprocess.run(argv, capture_output=True, text=True, check=False)
        said = (run.stdout + run.stderr).strip()
        one_line = run.returncode != 0 and "Traceback" not in said and len(said.splitlines()) == 1
        check(one_line and f"pip install '{wanted}'" in said, f"without [{extra}]: {said[-300:]!r}")

    print(f"{len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
