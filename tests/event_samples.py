"""Helpers for the event-file tests: the seed's events, and writers of every input format.

Files are written with each format's own library (uproot, zarr, numpy, pandas, pyarrow), not
with modelstore, so that reading them tests modelstore against the formats as others write them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from modelstore import published_model
from modelstore.backends import available_backends

REF = "default@1.1.0"

# The eight events the seed prints, with the seed's (upstream) intensities. The inputs carry
# 7 significant digits, so intensities agree to about 1e-5 relative (steep resonances).
SEED_SIGMA1 = np.array(
    [1.303328, 0.424415, 1.694020, 1.260368, 1.171106, 1.556747, 1.615608, 0.649837]
)
SEED_SIGMA2 = np.array(
    [3.505217, 4.382733, 2.827971, 3.106184, 3.424632, 3.210350, 2.484730, 3.523832]
)
SEED_INTENSITY = np.array(
    [2158.16752493, 5447.08091414, 6232.40502307, 681.74714874,
     902.7663634, 5626.31808739, 7225.75775956, 2247.93599152]
)  # fmt: skip
SEED_RTOL = 1e-4


def fast_backend() -> str:
    """The quickest backend to start here: native where a compiler exists, else numpy."""
    return "native" if "native" in available_backends(published_model(REF)) else "numpy"


def write_root(
    path: Path,
    sigma1: np.ndarray,
    sigma2: np.ndarray,
    tree: str = "Lc2ppiK",
    names: tuple[str, str] = ("msq_piK", "msq_Kp"),
) -> Path:
    """A ROOT file with one TTree of σ1 and σ2, via uproot; by default the seed's layout (tree
    Lc2ppiK, branches msq_piK, msq_Kp)."""
    import uproot

    with uproot.recreate(path) as file:
        file.mktree(tree, dict.fromkeys(names, np.float64))
        file[tree].extend(dict(zip(names, (sigma1, sigma2), strict=True)))
    return path


def write_input(directory: Path, fmt: str, sigma1: np.ndarray, sigma2: np.ndarray) -> Path:
    """The events in ``fmt``, written with that format's own library (not with modelstore)."""
    columns = {"msq_piK": sigma1, "msq_Kp": sigma2}
    if fmt == "root":
        return write_root(directory / "events.root", sigma1, sigma2)
    if fmt == "zarr":
        import zarr

        path = directory / "events.zarr"
        group = zarr.open_group(str(path), mode="w")
        for name, values in columns.items():
            group.create_array(name, data=values, chunks=(max(1, len(values) // 3),))
        return path
    if fmt == "npz":
        path = directory / "events.npz"
        np.savez(path, **columns)
        return path
    if fmt == "npy":
        path = directory / "events.npy"
        np.save(path, np.column_stack([sigma1, sigma2]))
        return path
    if fmt == "csv":
        import pandas as pd

        path = directory / "events.csv"
        pd.DataFrame(columns).to_csv(path, index=False)
        return path
    if fmt == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        path = directory / "events.parquet"
        pq.write_table(pa.table(columns), path, row_group_size=max(1, len(sigma1) // 3))
        return path
    raise AssertionError(fmt)


def read_table(path: Path, fmt: str, tree: str = "events") -> dict[str, np.ndarray]:
    """Every column of an output, in the file's order, read with the format's own library."""
    if fmt == "zarr":
        import zarr

        group = zarr.open_group(str(path), mode="r")
        return {name: array[:] for name, array in group.arrays()}
    if fmt == "npz":
        with np.load(path) as archive:
            return {name: archive[name] for name in archive.files}
    if fmt == "csv":
        import pandas as pd

        frame = pd.read_csv(path)
        return {name: frame[name].to_numpy() for name in frame.columns}
    if fmt == "parquet":
        import pyarrow.parquet as pq

        table = pq.read_table(path)
        return {name: table[name].to_numpy() for name in table.column_names}
    import uproot

    with uproot.open(path) as file:
        return file[tree].arrays(library="np")
