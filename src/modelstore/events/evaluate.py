"""Evaluate a model's intensity for every event of a file, streaming, into a new file."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from modelstore.errors import InvalidInputError
from modelstore.events.formats import (
    DEFAULT_CHUNK_SIZE,
    DEFAULT_TREE,
    Columns,
    columns_for,
)
from modelstore.events.locations import (
    EventURL,
    Location,
    check_output,
    detect_location_format,
    parse_location,
    shown_location,
)
from modelstore.events.pipeline import Drain, Prefetch
from modelstore.events.readers import open_reader
from modelstore.events.selection import output_fields
from modelstore.events.writers import open_writer
from modelstore.suggest import did_you_mean

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from modelstore.format.manifest import ParameterValue
    from modelstore.model import PublishedModel

__all__ = [
    "QUANTITIES",
    "EvaluationResult",
    "check_quantities",
    "count_nan",
    "evaluate_file",
    "provenance",
    "resonance_overrides",
]

# What `evaluate_file` can write for each event: the intensity and the polarimeter vector α⃗'s
# components (versions from 1.4.0 on).
QUANTITIES = ("intensity", "alpha_x", "alpha_y", "alpha_z")


def count_nan(sigma1: np.ndarray, sigma2: np.ndarray, intensity: np.ndarray) -> tuple[int, int]:
    """``(invalid inputs, outside the Dalitz region)`` among events whose intensity is NaN.

    An input is invalid when σ1 or σ2 is NaN, infinite or negative (a squared mass cannot be);
    an event with valid inputs and a NaN intensity lies outside the Dalitz region.

    Never raises.
    """
    invalid = ~(np.isfinite(sigma1) & np.isfinite(sigma2)) | (sigma1 < 0) | (sigma2 < 0)
    n_invalid = int(np.count_nonzero(invalid))
    outside = int(np.count_nonzero(np.isnan(intensity) & ~invalid))
    return n_invalid, outside


@dataclass(frozen=True)
class EvaluationResult:
    """What `evaluate_file` did.

    Attributes:
        model: ``id@version`` of the model evaluated.
        backend: the evaluator backend that computed the intensities.
        input: the file read.
        output: the file written.
        events: the number of events.
        outside: how many events with valid inputs lie outside the Dalitz region (intensity
            NaN).
        seconds: wall-clock time.
        invalid: how many events have an invalid σ1 or σ2 (NaN, infinite or negative; their
            intensity is NaN too, and they are not counted in ``outside``).
        skipped: input columns not written because they cannot be carried (nested, strings,
            booleans...).
    """

    model: str
    backend: str
    input: Location
    output: Location
    events: int
    outside: int
    seconds: float
    invalid: int = 0
    skipped: tuple[str, ...] = ()

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else float("inf")


def check_overrides(
    model: PublishedModel, parameters: Mapping[str, ParameterValue] | None
) -> dict[str, ParameterValue]:
    """The parameter overrides as a dict by name (aliases resolved), each checked for its kind.

    Raises:
        InvalidInputError: a name the model does not have, or a value unfit for its parameter
            (not a number, not finite, complex for a real one, outside int64 for an int64 one).
    """
    by_name = model.parameter_overrides(dict(parameters or {}))
    checked = model.parameter_values(by_name)
    return {name: checked[name] for name in by_name}


def check_quantities(model: PublishedModel, quantities: Sequence[str]) -> tuple[str, ...]:
    """The quantities to evaluate, checked: known names, once each, α only with polarimetry.

    Raises:
        InvalidInputError: no quantity, an unknown or repeated one, or a component of α for a
            version without polarimetry (before 1.4.0).
    """
    asked = tuple(quantities)
    unknown = [q for q in asked if q not in QUANTITIES]
    if not asked or unknown:
        shown = ", ".join(repr(q) for q in unknown) or "none"
        hint = did_you_mean(unknown[0], QUANTITIES) if unknown else ""
        msg = f"unknown quantities {shown}{hint} (choose among {', '.join(QUANTITIES)})"
        raise InvalidInputError(msg)
    if len(set(asked)) != len(asked):
        msg = f"quantities {', '.join(asked)}: each may be asked once"
        raise InvalidInputError(msg)
    alphas = [q for q in asked if q.startswith("alpha_")]
    if alphas and not model.manifest.has_file("polarimetry-srepr"):
        msg = (
            f"{model.ref} has no polarimeter ({', '.join(alphas)}): α needs a version from 1.4.0"
            f" on (e.g. {model.ref.split('@')[0]}@1.4.0; `modelstore list` shows the versions)"
        )
        raise InvalidInputError(msg)
    return asked


def resonance_overrides(
    model: PublishedModel,
    overrides: Mapping[str, ParameterValue],
    resonance: str | None,
) -> dict[str, ParameterValue]:
    """``overrides`` with, for ``resonance``, every other resonance's couplings set to 0.

    The contribution of one resonance alone, as `modelstore.dalitz.rates.decay_rates` takes it
    (`modelstore.dalitz.rates.resonance_alone`); None leaves ``overrides`` as they are.

    Raises:
        InvalidInputError: the model has no such resonance (the message lists those it has).
    """
    if resonance is None:
        return dict(overrides)
    from modelstore.dalitz.rates import resonance_alone

    return {**overrides, **resonance_alone(model, resonance, overrides)}


def _evaluate(
    model: PublishedModel,
    sigma1: np.ndarray,
    sigma2: np.ndarray,
    quantities: tuple[str, ...],
    overrides: Mapping[str, ParameterValue],
) -> dict[str, np.ndarray]:
    """The asked quantities of one chunk; α by one `intensity_and_polarimeter` call."""
    if quantities == ("intensity",):
        return {"intensity": np.asarray(model.intensity(sigma1, sigma2, **overrides))}
    intensity, alpha = model.intensity_and_polarimeter(sigma1, sigma2, **overrides)
    values = {"intensity": np.asarray(intensity)}
    values.update({f"alpha_{axis}": alpha[..., i] for i, axis in enumerate("xyz")})
    return values


def provenance(
    model: PublishedModel,
    backend: str,
    input: Location,
    columns: Columns,
    parameters: Mapping[str, ParameterValue] | None = None,
    quantities: Sequence[str] = ("intensity",),
    resonance: str | None = None,
) -> dict[str, str]:
    """Strings recorded with an output (zarr attributes, parquet and ROOT metadata).

    ``parameters`` (the overrides of parameter defaults) are recorded as a JSON object of
    ``repr`` strings under ``parameters`` (``{}`` when there are none); ``quantities`` as a
    JSON list under ``quantities``; ``resonance`` (one resonance alone), when given, under
    ``resonance``.

    Never raises.
    """
    import json

    import modelstore

    overrides = {name: repr(value) for name, value in (parameters or {}).items()}
    extra = {} if resonance is None else {"resonance": resonance}
    return {
        **extra,
        "parameters": json.dumps(overrides, sort_keys=True, ensure_ascii=False),
        "model": model.ref,
        "manifest_digest": model.registry.resolve(model.ref)[2],
        "backend": backend,
        "input": shown_location(input),
        "sigma1": columns.sigma1,
        "sigma2": columns.sigma2,
        "quantities": json.dumps(list(quantities)),
        "modelstore_version": modelstore.__version__,
    }


def evaluate_file(
    model: PublishedModel,
    input: str | Path | EventURL,
    output: str | Path | EventURL,
    *,
    input_format: str | None = None,
    output_format: str | None = None,
    columns: Columns | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    parameters: Mapping[str, ParameterValue] | None = None,
    overwrite: bool = False,
    progress: Callable[[int, int | None], None] | None = None,
    keep_columns: Sequence[str] | None = None,
    drop_columns: Sequence[str] = (),
    quantities: Sequence[str] = ("intensity",),
    resonance: str | None = None,
) -> EvaluationResult:
    """Evaluate ``model`` for every event of ``input``; write columns and intensity to ``output``.

    Every column of the input that holds one integer or float per event goes to the output, in
    the input's order, followed by the ``quantities`` (an input column named like one is
    replaced); the intensity's column is named ``columns.intensity``.

    The input is read ``chunk_size`` events at a time, so memory does not grow with the file:
    one thread reads, the caller's thread evaluates and another thread writes, with at most a
    few chunks queued between them (see `modelstore.events.pipeline`).
    The output is written under a temporary name next to ``output`` and renamed when complete;
    on any error or interruption it is deleted and ``output`` is left untouched.

    Args:
        model: the model, from `modelstore.published_model`.
        input: ROOT, zarr, npz, npy, csv or parquet event file; or the URL of a zarr store
            (``s3://...``, any fsspec URL: see `modelstore.events.locations`).
        output: zarr, npz, csv, parquet or ROOT file to create, or the URL of a zarr store to
            create (a ROOT output's TTree is named
            like the input's tree when the input is ROOT, else ``events``).
        input_format: overrides the format told by the input's name.
        output_format: overrides the format told by the output's name.
        columns: ROOT tree and the names of the σ1 and σ2 branches or columns (default: the
            model's, `modelstore.events.columns_for`).
        chunk_size: events per chunk.
        parameters: parameter values overriding the model's defaults, by name.
        overwrite: replace ``output`` if it exists (otherwise that is an error).
        progress: called after each chunk with (events evaluated, total events or None), in
            the caller's thread; the writer may still be a few chunks behind.
        keep_columns: write only these input columns (σ1 and σ2 always), or all when None.
        drop_columns: input columns not to write.
        quantities: what to evaluate, among `QUANTITIES` (``alpha_x``, ``alpha_y``, ``alpha_z``
            need a version from 1.4.0 on); the intensity and α come from one pass.
        resonance: evaluate this resonance alone (``K(892)``, ``L(1405)``...): every other
            resonance's couplings set to 0, as `modelstore.dalitz.rates.decay_rates` does.

    Returns:
        The counts and timing of the run.

    Raises:
        EventFileError: the input is missing, unreadable or malformed, a column to keep or drop
            that the input does not have, or the output cannot be written.
        InvalidInputError: an unknown quantity, α for a version without polarimetry, or a
            resonance the model does not have.
        MissingExtraError: a URL's scheme needs an extra (``s3://``: ``modelstore[s3]``).

    Example:
        >>> from modelstore import published_model
        >>> from modelstore.events import evaluate_file
        >>> model = published_model("default", backend="numpy")
        >>> evaluate_file(model, "sample.root", "intensities.parquet")  # doctest: +SKIP
    """
    started = time.perf_counter()
    columns = columns_for(model.manifest) if columns is None else columns
    input, output = parse_location(input), parse_location(output)
    in_format = detect_location_format(input, input_format, "input")
    out_format = detect_location_format(output, output_format, "output")
    check_output(output, overwrite, inputs=(input,))
    overrides = check_overrides(model, parameters)
    asked = check_quantities(model, quantities)
    evaluated_with = resonance_overrides(model, overrides, resonance)
    results = {q: columns.intensity if q == "intensity" else q for q in asked}
    outside = invalid = 0
    with open_reader(input, in_format, columns) as reader:
        total = reader.n_events
        fields, carried, skipped = output_fields(
            reader, columns, tuple(results.values()), keep_columns, drop_columns
        )
        reader.carry(carried)
        names = [name for name, _ in fields]
        backend = model.backend  # builds the evaluator once the input is known to be good
        with open_writer(
            output,
            out_format,
            columns,
            n_events=total,
            chunk_size=chunk_size,
            metadata=provenance(model, backend, input, columns, overrides, asked, resonance),
            overwrite=overwrite,
            tree=columns.tree if in_format == "root" else DEFAULT_TREE,
            fields=fields,
        ) as writer:

            def write(arrays: tuple[np.ndarray, ...]) -> None:
                writer.write(*arrays)

            with (
                Prefetch(reader.chunks_with(chunk_size), name="modelstore-read") as chunks,
                Drain(write, name="modelstore-write") as drain,
            ):
                done = 0
                for sigma1, sigma2, extra in chunks:
                    evaluated = _evaluate(model, sigma1, sigma2, asked, evaluated_with)
                    values = dict(zip(carried, extra, strict=True))
                    values.update({columns.sigma1: sigma1, columns.sigma2: sigma2})
                    values.update({results[q]: evaluated[q] for q in asked})
                    drain.put(tuple(values[name] for name in names))
                    bad, out = count_nan(sigma1, sigma2, evaluated["intensity"])
                    invalid += bad
                    outside += out
                    done += len(sigma1)
                    if progress is not None:
                        progress(done, total)
                drain.finish()
            events = writer.written
            writer.add_metadata({"invalid_inputs": str(invalid), "outside_dalitz": str(outside)})
    return EvaluationResult(
        model=model.ref,
        backend=backend,
        input=input,
        output=output,
        events=events,
        outside=outside,
        seconds=time.perf_counter() - started,
        invalid=invalid,
        skipped=tuple(skipped),
    )
