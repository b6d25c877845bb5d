"""A published model as tensorwaves' ``ParametrizedFunction``: named parameters, any backend.

``ModelFunction(model)`` is what ``model.function(backend=...)`` returns. It plugs modelstore's
evaluators (native, jax or numpy) into the tensorwaves workflow unchanged:
``tensorwaves.estimator.UnbinnedNLL(function, data, phsp)`` with ``Minuit2`` or
``ScipyMinimizer``, without rebuilding or lambdifying the sympy expression.

The data sample is a dict of arrays with the keys ``"sigma1"`` (m²(K⁻π⁺) for the LHCb models;
in general the model's σ1) and ``"sigma2"``, in GeV²; other keys (``"weights"`` for instance)
are ignored. Parameters are keyed by the manifest's names (``model.parameter_names``);
:meth:`ModelFunction.update_parameters` also accepts the ASCII aliases (``m_K892``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from tensorwaves.interface import ParametrizedFunction

from modelstore.errors import InvalidInputError

if TYPE_CHECKING:
    from collections.abc import Mapping

    from modelstore.format.manifest import ParameterValue
    from modelstore.model import PublishedModel

__all__ = ["DATA_KEYS", "ModelFunction", "data_arrays"]

#: the keys of a data sample (σ1, σ2 in GeV²)
DATA_KEYS = ("sigma1", "sigma2")


def data_arrays(data: Any, what: str = "data") -> tuple[np.ndarray, np.ndarray]:
    """(σ1, σ2) as float64 1-D arrays from a dict with ``sigma1``/``sigma2`` or a pair.

    Raises:
        InvalidInputError: neither form, arrays of unequal or zero length, or non-real values.
    """
    try:
        pair = (data["sigma1"], data["sigma2"]) if hasattr(data, "keys") else tuple(data)
        s1, s2 = (np.ascontiguousarray(a, dtype=np.float64).reshape(-1) for a in pair)
    except (KeyError, TypeError, ValueError):
        msg = f"{what} must be a dict with arrays 'sigma1' and 'sigma2', or a pair (sigma1, sigma2)"
        raise InvalidInputError(msg) from None
    if s1.shape != s2.shape or s1.size == 0:
        msg = f"{what}: sigma1 and sigma2 must be non-empty arrays of equal length"
        raise InvalidInputError(msg)
    return s1, s2


class ModelFunction(ParametrizedFunction):
    """The intensity of a published model with its parameters held by name.

    ``function(data)`` evaluates ``model.intensity(data["sigma1"], data["sigma2"])`` at the
    current :attr:`parameters`; NaN marks points outside the Dalitz region.
    """

    def __init__(self, model: PublishedModel, backend: str | None = None) -> None:
        """Wrap ``model``; ``backend`` (``native``, ``jax``, ``numpy``) other than the model's
        loads the same verified version on that backend.

        Raises:
            InvalidNameError: an unknown backend name.
        """
        if backend is not None and backend != model.requested_backend:
            model = type(model)(model.registry, model.manifest, backend)
        self.model = model
        self._values: dict[str, ParameterValue] = model.parameters

    def __repr__(self) -> str:
        return f"<ModelFunction {self.model.ref} backend={self.model.requested_backend!r}>"

    @property
    def parameters(self) -> dict[str, ParameterValue]:
        """The current parameter values by manifest name (a fresh dict each time)."""
        return dict(self._values)

    def update_parameters(self, new_parameters: Mapping[str, Any]) -> None:
        """Set some parameters, keyed by manifest name or ASCII alias.

        Raises:
            InvalidInputError: an unknown name (with a did-you-mean), one given twice, or a
                value unfit for its parameter (a complex value for a real one, NaN, ...).
        """
        model = self.model
        by_name = model.parameter_overrides(new_parameters)
        spec = model._spec
        where = f"{model.ref}: parameter"
        checked = {name: spec[name].check_value(v, where) for name, v in by_name.items()}
        self._values.update(checked)

    def __call__(self, data: Mapping[str, Any]) -> np.ndarray:
        """The intensity at each event of ``data`` (keys ``sigma1``, ``sigma2``).

        Raises:
            InvalidInputError: ``data`` lacks ``sigma1`` or ``sigma2``, or they do not match.
            BackendUnavailableError: the backend cannot run here.
        """
        s1, s2 = data_arrays(data)
        return np.asarray(self.model.intensity(s1, s2, **self._values), dtype=np.float64)
