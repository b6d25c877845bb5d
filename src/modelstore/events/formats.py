"""Event-file formats: which exist, how one is recognised from a file name, and column names."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelstore.errors import EventFileError

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "DEFAULT_COLUMNS",
    "DEFAULT_TREE",
    "GENERIC_COLUMNS",
    "INPUT_FORMATS",
    "LHCB_COLUMNS",
    "OUTPUT_FORMATS",
    "Columns",
    "columns_for",
    "detect_format",
]

# 2**18 events: 6 MiB of σ1, σ2 and intensity per chunk. A whole run then peaks at about
# 90 MiB with the native backend and 0.6-0.8 GiB with JAX or numpy (their intermediate arrays),
# however large the file (benchmarks/bench_eval_stream.py).
DEFAULT_CHUNK_SIZE = 1 << 18

INPUT_FORMATS = ("root", "zarr", "npz", "npy", "csv", "parquet")
OUTPUT_FORMATS = ("zarr", "npz", "csv", "parquet", "root")
# the TTree of a ROOT output whose input is not a ROOT file (else the input's tree name)
DEFAULT_TREE = "events"

# Longest suffixes first, so that ``.csv.gz`` is not mistaken for something else.
_SUFFIXES: tuple[tuple[str, str], ...] = (
    (".csv.gz", "csv"),
    (".csv.bz2", "csv"),
    (".csv.xz", "csv"),
    (".parquet", "parquet"),
    (".root", "root"),
    (".zarr", "zarr"),
    (".npz", "npz"),
    (".npy", "npy"),
    (".csv", "csv"),
    (".pq", "parquet"),
)


@dataclass(frozen=True)
class Columns:
    """Where σ1 and σ2 are found in an input, and what the output columns are called.

    The defaults are the names of the LHCb phase-space sample: tree ``Lc2ppiK`` with branches
    ``msq_piK`` (σ1 = m²(K⁻π⁺)) and ``msq_Kp`` (σ2 = m²(pK⁻)); :func:`columns_for` gives a
    model's own defaults (these for the LHCb catalog, ``sigma1``, ``sigma2`` and tree
    ``events`` for any other model). The same names are used for columns of zarr, npz, csv and
    parquet files, and an output repeats them next to ``intensity``, so an output can be read
    back as an input with the same options.

    Attributes:
        sigma1: branch or column holding σ1 = m²(23) in GeV² (m²(K⁻π⁺) for the LHCb models).
        sigma2: branch or column holding σ2 = m²(31) in GeV² (m²(pK⁻) for the LHCb models).
        tree: the TTree of a ROOT file (ignored by other formats).
        intensity: name of the output column with the intensity.
    """

    sigma1: str = "msq_piK"
    sigma2: str = "msq_Kp"
    tree: str = "Lc2ppiK"
    intensity: str = "intensity"

    def __post_init__(self) -> None:
        names = (self.sigma1, self.sigma2, self.intensity)
        if len(set(names)) != len(names) or not all(names) or not self.tree:
            msg = f"column names must be distinct and non-empty, got {names} (tree {self.tree!r})"
            raise EventFileError(msg)

    @property
    def outputs(self) -> tuple[str, str, str]:
        """Names of the output columns: σ1, σ2, intensity."""
        return (self.sigma1, self.sigma2, self.intensity)


LHCB_COLUMNS = Columns()
DEFAULT_COLUMNS = LHCB_COLUMNS  # the name before models of other decays
GENERIC_COLUMNS = Columns(sigma1="sigma1", sigma2="sigma2", tree="events")


def columns_for(manifest: Any) -> Columns:
    """A model's default event columns: the LHCb sample's names for a model of the LHCb catalog
    (its manifest names an ``upstream_index``), ``sigma1``/``sigma2`` in tree ``events`` for any
    other, since nothing in another decay is called ``msq_piK``.

    Never raises.
    """
    return (
        LHCB_COLUMNS if getattr(manifest, "upstream_index", None) is not None else GENERIC_COLUMNS
    )


def detect_format(path: str | Path, given: str | None = None, role: str = "input") -> str:
    """The format of ``path``: ``given`` if not None, else from the file name.

    A folder holding ``zarr.json`` or ``.zgroup`` is zarr whatever its name.

    Args:
        path: the event file (or zarr folder).
        given: a format name that overrides the file name, or None.
        role: ``"input"`` or ``"output"``: which formats are allowed.

    Raises:
        EventFileError: the format is unknown, not allowed for ``role``, or not recognisable.
    """
    allowed = INPUT_FORMATS if role == "input" else OUTPUT_FORMATS
    fmt: str | None
    if given is not None:
        fmt = given.lower()
        if fmt not in allowed:
            msg = f"{path}: {given!r} is not an {role} format (choose one of {', '.join(allowed)})"
            raise EventFileError(msg)
        return fmt
    path = Path(path)
    name = path.name.lower()
    fmt = next((f for suffix, f in _SUFFIXES if name.endswith(suffix)), None)
    if (
        fmt is None
        and path.is_dir()
        and ((path / "zarr.json").is_file() or (path / ".zgroup").is_file())
    ):
        fmt = "zarr"
    if fmt is None:
        msg = (
            f"{path}: cannot tell the {role} format from the file name"
            f" (use a suffix such as .{' .'.join(allowed)}, or name the format explicitly)"
        )
        raise EventFileError(msg)
    if fmt not in allowed:
        choices = ", ".join(allowed)
        msg = f"{path}: {fmt} is not supported as an {role} format (choose one of {choices})"
        raise EventFileError(msg)
    return fmt
