"""Fitting: likelihoods and fits of published models.

``fit(model, (σ1, σ2), free=[...])`` is the three-line route (docs/fit.md); ``ModelFunction``
(``model.function()``) plugs a model into tensorwaves' estimators and optimizers;
``UnbinnedNLL`` is the likelihood with its exact gradient; ``CouplingCache`` the cached
amplitudes of a coupling-only fit.
"""

from modelstore.fit.couplings import CouplingCache
from modelstore.fit.function import ModelFunction
from modelstore.fit.likelihood import NormalizationWarning, UnbinnedNLL, normalization_size
from modelstore.fit.minimize import FitResult, fit

__all__ = [
    "CouplingCache",
    "FitResult",
    "ModelFunction",
    "NormalizationWarning",
    "UnbinnedNLL",
    "fit",
    "normalization_size",
]
