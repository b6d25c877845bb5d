"""Progress for long work, on a terminal only: one line for a long step, a tqdm bar for loops.

Quiet when stderr is not a terminal (pipes, CI logs, tests) or when ``MODELSTORE_PROGRESS=0``;
``MODELSTORE_PROGRESS=1`` forces it on (for a test, or a log that wants it). Three forms:
:func:`step` (a line before and after a long step), :func:`progress` (a bar over a loop) and
:func:`counter` (a bar fed by a ``report(done, total)`` callback, for library functions that
take one, such as ``evaluate_file``).
"""

from __future__ import annotations

import contextlib
import os
import sys
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator

__all__ = ["PROGRESS_ENV", "counter", "enabled", "note", "progress", "step"]

PROGRESS_ENV = "MODELSTORE_PROGRESS"
T = TypeVar("T")


def enabled() -> bool:
    """Whether progress is shown: ``$MODELSTORE_PROGRESS`` (0/1), else whether stderr is a TTY.

    Never raises.
    """
    forced = os.environ.get(PROGRESS_ENV, "").strip()
    if forced in {"0", "1"}:
        return forced == "1"
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):  # a closed or replaced stderr
        return False


def note(message: str) -> None:
    """Print one progress line on stderr when progress is shown (see :func:`enabled`).

    Never raises.
    """
    if enabled():
        with contextlib.suppress(OSError, ValueError):
            print(message, file=sys.stderr, flush=True)


@contextlib.contextmanager
def step(message: str) -> Iterator[None]:
    """One line before a long step (``message ...``) and ``done`` after it, on a terminal only.

    Never raises (exceptions of the step propagate unchanged).
    """
    note(f"{message} ...")
    yield
    note(f"{message}: done")


def progress(
    items: Iterable[T], *, total: int | None = None, desc: str = "", unit: str = "it"
) -> Iterable[T]:
    """``items`` wrapped in a tqdm bar on stderr when progress is shown, else ``items`` as is.

    Never raises.
    """
    if not enabled():
        return items
    from tqdm import tqdm

    bar: Any = tqdm(items, total=total, desc=desc, unit=unit, file=sys.stderr, leave=False)
    return bar


@contextlib.contextmanager
def counter(
    *, desc: str = "", unit: str = "it", show: bool | None = None
) -> Iterator[Callable[[int, int | None], None] | None]:
    """A ``report(done, total)`` callback drawing a tqdm bar on stderr, or None when not shown.

    ``show`` None follows :func:`enabled`; True or False (a command's ``--progress`` option)
    decides. The bar starts at the first report that leaves work to do (``done < total``, or
    an unknown total), so work done in one go draws none; it is closed on leaving the block.

    Never raises (exceptions of the block propagate unchanged).
    """
    if not (enabled() if show is None else show):
        yield None
        return
    from tqdm import tqdm

    bars: list[Any] = []

    def report(done: int, total: int | None) -> None:
        if not bars:
            if total is not None and done >= total:
                return
            bars.append(
                tqdm(
                    total=total, desc=desc, unit=unit, unit_scale=True, file=sys.stderr, leave=False
                )
            )
        bars[0].update(done - bars[0].n)

    try:
        yield report
    finally:
        for bar in bars:
            bar.close()
