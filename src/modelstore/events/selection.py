"""Which columns an output gets: the input's columns, in order, then the evaluated quantities."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from modelstore.errors import EventFileError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from modelstore.events.formats import Columns
    from modelstore.events.reader_base import EventReader

__all__ = ["output_fields"]


def _names(names: Sequence[str]) -> str:
    return ", ".join(repr(n) for n in names)


def output_fields(
    reader: EventReader,
    columns: Columns,
    results: Sequence[str],
    keep: Sequence[str] | None = None,
    drop: Sequence[str] = (),
) -> tuple[list[tuple[str, np.dtype]], list[str], list[str]]:
    """The output's fields, the input columns to carry, and the input columns left out.

    By default every column the input can carry (see `EventReader.carryable`) goes to the
    output, in the input's order; ``keep`` keeps only those named (σ1 and σ2 always stay, so
    that the output is a valid input), ``drop`` leaves those named out. σ1 and σ2 are written
    as float64; an input column named like a result is replaced by the result, appended last.

    Returns:
        ``(fields, carried, skipped)``: the ``(name, dtype)`` pairs of the output in order;
        the names to pass to `EventReader.carry`; the input's columns that cannot be carried
        and were not asked for (nested, strings, booleans...).

    Raises:
        EventFileError: both ``keep`` and ``drop``, a name the input does not have, a kept
            column that cannot be carried, or σ1 or σ2 dropped.
    """
    sigmas = (columns.sigma1, columns.sigma2)
    dtypes = dict(reader.carryable)
    order = [name for name, _ in reader.carryable]
    order[:0] = [s for s in sigmas if s not in dtypes]  # a plain (N, 2) .npy array
    if keep is not None and drop:
        msg = "choose the columns to keep or the columns to drop, not both"
        raise EventFileError(msg)
    known = set(order) | set(reader.others)
    unknown = [n for n in dict.fromkeys([*(keep or ()), *drop]) if n not in known]
    if unknown:
        available = _names(order + reader.others)
        msg = f"{reader.path}: no column {_names(unknown)} (available: {available})"
        raise EventFileError(msg)
    if keep is not None:
        nested = [n for n in keep if n in reader.others]
        if nested:
            msg = (
                f"{reader.path}: cannot write {_names(nested)}: only flat columns of"
                " integers or floats are carried to an output"
            )
            raise EventFileError(msg)
        chosen = [n for n in order if n in keep or n in sigmas]
        skipped: list[str] = []
    else:
        kept_sigmas = [n for n in drop if n in sigmas]
        if kept_sigmas:
            msg = f"{_names(kept_sigmas)}: σ1 and σ2 are always written (they are the events)"
            raise EventFileError(msg)
        chosen = [n for n in order if n not in drop]
        skipped = [n for n in reader.others if n not in drop]
    chosen = [n for n in chosen if n not in results]
    fields = [(n, np.dtype(np.float64) if n in sigmas else dtypes[n]) for n in chosen]
    fields += [(name, np.dtype(np.float64)) for name in results]
    return fields, [n for n in chosen if n not in sigmas], skipped
