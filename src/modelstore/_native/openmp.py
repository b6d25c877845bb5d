"""The OpenMP runtime's wait policy for the native evaluator's threads."""

from __future__ import annotations

import os

__all__ = ["WAIT_POLICY_ENV", "prefer_sleeping_threads"]

WAIT_POLICY_ENV = "OMP_WAIT_POLICY"


def prefer_sleeping_threads() -> None:
    """Let OpenMP threads sleep between native calls instead of spinning; keep a user's choice.

    By default an OpenMP thread that finishes its share keeps a core busy for a while, waiting
    for the next parallel region. Between two chunks of ``modelstore eval`` the next region is
    milliseconds away, and the reading and writing threads need those cores: with two cores,
    2·10⁷ events zarr→zarr ran at 0.33× the in-memory throughput spinning and 0.36–0.38×
    sleeping (``benchmarks/bench_eval_stream.py``), the in-memory figure unchanged.

    The runtime reads ``OMP_WAIT_POLICY`` once, when it loads with the first native model, so
    this must run before that; it sets ``PASSIVE`` only where the variable is unset. The
    ``modelstore`` command calls it; a Python program may call it itself, or set the variable.

    Never raises.
    """
    os.environ.setdefault(WAIT_POLICY_ENV, "PASSIVE")
