"""Optional (heavy) imports: a missing one is one line naming the extra that installs it."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from modelstore.errors import MissingExtraError

if TYPE_CHECKING:
    from types import ModuleType

__all__ = ["EXTRAS", "require"]

# The extras of pyproject.toml, by the top-level module each one brings.
EXTRAS = {
    "uproot": "events",
    "awkward": "events",
    "pandas": "events",
    "pyarrow": "events",
    "matplotlib": "plot",
    "dask": "dask",
    "distributed": "dask",
    "s3fs": "s3",
    "fsspec_xrootd": "xrootd",
    "iminuit": "fit",
}


def require(module: str, purpose: str) -> ModuleType:
    """Import ``module`` (a dotted name), or say which extra installs it.

    Args:
        module: the module to import, e.g. ``"pyarrow.parquet"``.
        purpose: what needs it, for the message (e.g. ``"Parquet event files"``).

    Raises:
        MissingExtraError: the module is not installed (also an ``ImportError``).
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        top = module.split(".")[0]
        extra = EXTRAS.get(top, "all")
        msg = f"{purpose}: {top} is not installed; pip install 'modelstore[{extra}]'"
        raise MissingExtraError(msg) from exc
