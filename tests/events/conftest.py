"""Fixtures for the event-file tests: a model that starts quickly, and a sample of events."""

from __future__ import annotations

import numpy as np
import pytest
from event_samples import REF, SEED_SIGMA1, SEED_SIGMA2, fast_backend

from modelstore import PublishedModel, published_model


@pytest.fixture(scope="session")
def model() -> PublishedModel:
    return published_model(REF, backend=fast_backend())


@pytest.fixture(scope="session")
def sample() -> tuple[np.ndarray, np.ndarray]:
    """1000 events over the Dalitz bounding box (about 60% inside), the seed's eight first."""
    rng = np.random.default_rng(20240611)
    sigma1 = rng.uniform(0.40, 1.82, 1000)
    sigma2 = rng.uniform(2.05, 4.60, 1000)
    sigma1[:8], sigma2[:8] = SEED_SIGMA1, SEED_SIGMA2
    return sigma1, sigma2
