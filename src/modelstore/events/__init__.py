"""Event files in, event files out: evaluate a model's intensity over samples of any size.

Inputs are ROOT (uproot), zarr, npz, npy, csv and parquet; outputs are zarr, npz, csv and
parquet. `evaluate_file` streams in chunks on this machine; `evaluate_distributed` spreads a
zarr store over a dask.distributed cluster. See docs/eval.md.
"""

from __future__ import annotations

from modelstore.events.distributed import evaluate_distributed
from modelstore.events.evaluate import EvaluationResult, evaluate_file
from modelstore.events.formats import (
    DEFAULT_CHUNK_SIZE,
    DEFAULT_COLUMNS,
    GENERIC_COLUMNS,
    INPUT_FORMATS,
    LHCB_COLUMNS,
    OUTPUT_FORMATS,
    Columns,
    columns_for,
    detect_format,
)
from modelstore.events.readers import EventReader, open_reader
from modelstore.events.writers import EventWriter, open_writer

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "DEFAULT_COLUMNS",
    "GENERIC_COLUMNS",
    "INPUT_FORMATS",
    "LHCB_COLUMNS",
    "OUTPUT_FORMATS",
    "Columns",
    "EvaluationResult",
    "EventReader",
    "EventWriter",
    "columns_for",
    "detect_format",
    "evaluate_distributed",
    "evaluate_file",
    "open_reader",
    "open_writer",
]
