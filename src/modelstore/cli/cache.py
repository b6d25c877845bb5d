"""``modelstore cache list|verify|clean|leftovers|fetch``: the local cache of remote registries."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from modelstore.cli._common import get_registry, library_errors
from modelstore.redaction import redact

if TYPE_CHECKING:
    from modelstore.store.cache import Cache


def _cache(ctx: click.Context) -> Cache:
    from modelstore.store.cache import Cache

    return Cache()


@click.group()
def cache() -> None:
    """The verified local cache of remote registries ($MODELSTORE_CACHE_DIR)."""


@cache.command("list")
@click.pass_context
@library_errors
def list_cache(ctx: click.Context) -> None:
    """Cached registries, their versions and how many files of each are cached."""
    store = _cache(ctx)
    entries = store.blobs.entries()
    total = sum(e.size for e in entries)
    click.echo(f"cache {store.root}: {len(entries)} blobs, {total} bytes")
    for record in store.registries.records():
        shown = redact(record.location)  # records of earlier releases may hold a password
        click.echo(f"{shown}  index_version {record.index_version}  fetched {record.fetched}")
        versions = store.versions(record)
        for version in versions:
            if version.manifest:
                click.echo(
                    f"  {version.ref:<32} {version.files_cached}/{version.files_total} files"
                )
        uncached = sum(not v.manifest for v in versions)
        if uncached:
            click.echo(f"  ({uncached} other versions not cached)")


@cache.command("verify")
@click.option(
    "--remove-bad",
    is_flag=True,
    help="Delete entries that fail (they are fetched again when needed).",
)
@click.pass_context
@library_errors
def verify_cache(ctx: click.Context, remove_bad: bool) -> None:
    """Re-hash every cached blob against its name. Exit status 1 if any is corrupt."""
    store = _cache(ctx)
    results = store.blobs.verify()
    bad = [(entry, problem) for entry, problem in results if problem]
    for entry, problem in bad:
        click.echo(f"BAD      {entry.path}: {problem}", err=True)
        if remove_bad:
            entry.path.unlink(missing_ok=True)
    click.echo(f"{len(results) - len(bad)} verified, {len(bad)} failed ({store.blobs.root})")
    sys.exit(1 if bad else 0)


@cache.command("clean")
@click.option(
    "--forget-trust",
    is_flag=True,
    help="Also forget the index versions and published digests seen (rollback protection).",
)
@click.pass_context
@library_errors
def clean_cache(ctx: click.Context, forget_trust: bool) -> None:
    """Delete cached blobs and index records (compiled evaluators are kept)."""
    store = _cache(ctx)
    files, size = store.clean(forget_trust=forget_trust)
    click.echo(f"removed {files} files ({size} bytes) from {store.root}")


@cache.command("leftovers")
@click.option(
    "--remove", "--yes", "remove", is_flag=True, help="Delete them; otherwise they are only listed."
)
@click.pass_context
@library_errors
def cache_leftovers(ctx: click.Context, remove: bool) -> None:
    """List what killed downloads and builds left in the cache (temporaries, half builds).

    Nothing else is ever listed or removed; what a process may still be writing is kept.
    """
    from modelstore.cli.leftovers import report

    store = _cache(ctx)
    found = store.leftovers()
    report(found, store.remove_leftovers() if remove else None, str(store.root))


@cache.command("fetch")
@click.argument("refs", nargs=-1)
@click.pass_context
@library_errors
def fetch_cache(ctx: click.Context, refs: tuple[str, ...]) -> None:
    """Download and verify REFS (default: every version) into the cache, for offline use."""
    registry = get_registry(ctx)
    for ref, fetched, cached in registry.fetch(list(refs) or None):
        click.echo(f"{ref:<32} {fetched} fetched, {cached} already cached")
