"""Shared fixtures of the fit tests: the model and toy events (made in tests/fit_toys.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from fit_toys import generate_toy

from modelstore import PublishedModel, published_model

if TYPE_CHECKING:
    from collections.abc import Callable


@pytest.fixture(scope="session")
def model() -> PublishedModel:
    return published_model("default", backend="native")


@pytest.fixture(scope="session")
def toy(model: PublishedModel) -> Callable[..., tuple]:
    return lambda n, seed=0, **overrides: generate_toy(model, n, seed, **overrides)


@pytest.fixture(scope="session")
def events(toy: Callable[..., tuple]) -> tuple:
    """2000 toy events of the default parameters (seed 1)."""
    return toy(2000, seed=1)
