"""The array program in segments: functions of about a thousand operations each.

A published array program is one straight-line function of thousands of operations. XLA
compiles it quickly for values, but the reverse-mode gradient of one such function is a graph
twice as large whose compilation grows faster than its size (``default@1.4.0``: 492 s, issue
19). Cut into segments, each segment is compiled on its own, so the compile time grows with the
number of segments only.

The published text is not changed: :func:`split_array_program` checks it against the
allow-list first (:func:`modelstore.format.arraycheck.compile_array_program`), then rebuilds its
statements, in their order and unchanged, into functions ``segment(<inputs>, par, xp)`` of
about :data:`SEGMENT_NODES` expression nodes each that
return their outputs: the names later statements read (live-variable analysis over the
segments). Running the segments one after another computes exactly the program's values.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from modelstore.errors import InvalidInputError
from modelstore.format.arraycheck import FUNCTION_NAME, compile_array_program

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

__all__ = ["RESULT", "SEGMENT_NODES", "Segment", "run_segments", "split_array_program"]

SEGMENT_NODES = 1000
"""Expression nodes (operations, names, constants) per segment by default."""
RESULT = "ms_result"  # the intensity's name in the last segment (the program returns an expression)
_ALWAYS = ("par", "xp")  # passed to every segment


@dataclass(frozen=True)
class Segment:
    """Statements of the program as ``function(*inputs, par, xp) -> tuple of outputs``."""

    function: Callable[..., tuple[Any, ...]]
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    statements: int
    """How many of the program's statements the segment holds."""


def _reads(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)} - set(_ALWAYS)


def split_array_program(
    source: str,
    where: str = "array program",
    nodes: int = SEGMENT_NODES,
    function: str = FUNCTION_NAME,
) -> tuple[list[Segment], tuple[str, ...]]:
    """The segments of ``function`` in ``source``, and the names of its results in order.

    The intensity function's result is named :data:`RESULT`; the polarimetry function's are its
    four returned names. A segment ends after the statement that takes it to ``nodes``
    expression nodes.

    Raises:
        IntegrityError: the source is not a valid array program (the allow-list).
        InvalidInputError: ``nodes`` is not a positive number.
    """
    if nodes < 1:
        msg = f"segments of {nodes} expression nodes: expected at least 1"
        raise InvalidInputError(msg)
    compile_array_program(source, where, function)  # the allow-list, before anything else
    tree = ast.parse(source, filename=where)
    func = next(f for f in tree.body if isinstance(f, ast.FunctionDef) and f.name == function)
    body: list[ast.stmt] = [s for s in func.body[:-1] if isinstance(s, ast.Assign)]
    returned = func.body[-1]
    value = returned.value if isinstance(returned, ast.Return) else None  # checked above
    if isinstance(value, ast.Tuple):  # polarimetry: a tuple of assigned names
        results = tuple(e.id for e in value.elts if isinstance(e, ast.Name))
    else:
        assigned = ast.Assign(targets=[ast.Name(RESULT, ast.Store())], value=value)  # type: ignore[arg-type]
        body.append(assigned)
        results = (RESULT,)
    chunks: list[list[ast.stmt]] = [[]]
    size = 0
    for statement in body:
        if size >= nodes:
            chunks.append([])
            size = 0
        chunks[-1].append(statement)
        size += sum(1 for _ in ast.walk(statement))
    live = set(results)
    shapes: list[tuple[tuple[str, ...], tuple[str, ...]]] = []
    for chunk in reversed(chunks):
        defined: set[str] = set()
        reads: set[str] = set()
        for statement in chunk:
            reads |= _reads(statement.value) - defined  # type: ignore[attr-defined]
            defined.add(statement.targets[0].id)  # type: ignore[attr-defined]
        outputs = tuple(sorted(live & defined))
        live = (live - defined) | reads
        shapes.append((tuple(sorted(reads)), outputs))
    shapes.reverse()
    segments = [
        Segment(_compile(chunk, inputs, outputs, where), inputs, outputs, len(chunk))
        for chunk, (inputs, outputs) in zip(chunks, shapes, strict=True)
    ]
    return segments, results


def _compile(
    chunk: Sequence[ast.stmt], inputs: tuple[str, ...], outputs: tuple[str, ...], where: str
) -> Callable[..., tuple[Any, ...]]:
    """One segment as a function, compiled without builtins like the program itself."""
    result = ast.Return(ast.Tuple([ast.Name(name, ast.Load()) for name in outputs], ast.Load()))
    # the names are the program's own (checked identifiers), the statements its own, unchanged
    module = ast.parse(f"def segment({', '.join((*inputs, *_ALWAYS))}):\n    pass\n")
    func = module.body[0]
    func.body = [*chunk, result]  # type: ignore[attr-defined]
    module = ast.fix_missing_locations(module)
    namespace: dict[str, Any] = {"__builtins__": {}}
    exec(compile(module, where, "exec"), namespace)  # noqa: S102 (the checked statements)
    segment: Callable[..., tuple[Any, ...]] = namespace["segment"]
    return segment


def run_segments(
    segments: Sequence[Segment], results: Sequence[str], sigma1: Any, sigma2: Any, par: Any, xp: Any
) -> tuple[Any, ...]:
    """Run the segments one after another: the program's results, computed as it computes them.

    Never raises (errors of the array namespace pass through).
    """
    env: dict[str, Any] = {"sigma1": sigma1, "sigma2": sigma2}
    for segment in segments:
        values = segment.function(*(env[name] for name in segment.inputs), par, xp)
        env.update(zip(segment.outputs, values, strict=True))
    return tuple(env[name] for name in results)
