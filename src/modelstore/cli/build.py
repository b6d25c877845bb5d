"""``modelstore build [REF...]``: compile native evaluators ahead of time."""

from __future__ import annotations

import time

import click

from modelstore.cli._common import get_registry, library_errors


@click.command()
@click.argument("refs", nargs=-1)
@click.pass_context
@library_errors
def build(ctx: click.Context, refs: tuple[str, ...]) -> None:
    """Build (or find in the cache) the native library of REFS (default: latest of every model)."""
    from modelstore._native.evaluator import NativeEvaluator
    from modelstore.model import PublishedModel

    registry = get_registry(ctx)
    targets = list(refs) or list(registry.existing_index().models)
    for ref in targets:
        manifest = registry.manifest(ref)
        model = PublishedModel(registry, manifest, backend="native")
        if not manifest.has_file("native-source"):
            click.echo(f"skipped  {model.ref}: no native source in this version")
            continue
        start = time.perf_counter()
        evaluator = NativeEvaluator.for_model(model)
        status = evaluator.build_entry_points()
        click.echo(
            f"{status:<8} {model.ref}  {time.perf_counter() - start:5.1f} s"
            f"  {evaluator.library_path}"
        )
