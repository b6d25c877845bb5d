"""The amplitude basis of a coupling-only fit: what multiplies each free coupling, per event.

A 1.4.0 version's polarimetry forms (:mod:`modelstore.format.polarimetry_forms`) hold the
intensity as ``Σ_λ |X_λ|²`` with ``X_λ = Σ_j F_λj(ζ) A_j`` (the aligned amplitudes) and each
amplitude ``A_j`` an expression of σ1, σ2 and the parameters. Where the free couplings ``c_k``
enter the amplitudes linearly, ``A_j = E_j0 + Σ_k c_k E_jk``: ``E_jk`` is ``A_j`` with ``c_k``
set to 1 and every other free coupling to 0, ``E_j0`` (the fixed couplings' part) with all of
them 0. Only the non-zero ``E_jk`` and ``F_λj`` are kept; they are lowered together (one
``sp.cse``, the same emitter as the C source and the array program) to a straight-line
function over numpy arrays that returns each as (re, im).

Linearity is not assumed: :mod:`modelstore.fit.couplings` checks the basis against the model's
own intensity at random coupling values and refuses the cache where they differ.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from modelstore.errors import InvalidInputError

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from modelstore.model import PublishedModel

__all__ = ["AmplitudeBasis", "lower_basis"]

FUNCTION = "basis"


@dataclass
class AmplitudeBasis:
    """The lowered basis of one model and one list of free couplings.

    ``e_pairs`` are ``(j, k)``: amplitude ``j``, coupling ``k`` (0: the fixed part, ``k ≥ 1``:
    free coupling ``k - 1``); ``f_pairs`` are ``(λ, j)``. :meth:`evaluate` returns their values
    at events as complex arrays of shape ``(n, len(e_pairs))`` and ``(n, len(f_pairs))``.
    """

    free: list[str]
    n_amplitudes: int
    n_helicities: int
    e_pairs: list[tuple[int, int]]
    f_pairs: list[tuple[int, int]]
    function: Callable[..., Any]
    par: np.ndarray

    def evaluate(self, sigma1: np.ndarray, sigma2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``E`` and ``F`` at the events (σ1, σ2), 1-D float64 arrays of equal length.

        Never raises for 1-D float arrays of equal length.
        """
        with np.errstate(all="ignore"):
            parts = self.function(sigma1, sigma2, self.par, np)
        n = sigma1.size
        values = np.empty((n, len(parts) // 2), dtype=np.complex128)
        for column in range(values.shape[1]):
            values[:, column].real = parts[2 * column]
            values[:, column].imag = parts[2 * column + 1]
        n_e = len(self.e_pairs)
        return values[:, :n_e], values[:, n_e:]


def _structured_terms(intensity: Any, where: str) -> list[Any]:
    """The ``X_λ`` of an intensity ``Σ_λ |X_λ|²``; InvalidInputError for any other shape."""
    import sympy as sp

    terms = []
    for term in sp.Add.make_args(intensity):
        if not (term.is_Pow and term.exp == 2 and isinstance(term.base, sp.Abs)):
            msg = f"{where}: the structured intensity is not a sum of |aligned amplitude|²"
            raise InvalidInputError(msg)
        terms.append(term.base.args[0])
    return terms


def _linear_parts(expr: Any, symbols: Sequence[Any]) -> dict[int, Any]:
    """``{0: expr at all symbols 0, k+1: coefficient of symbols[k]}`` (non-zero parts only).

    The coefficient is ``expr`` with that symbol 1 and the others 0, less the constant part:
    exact for an expression linear in the symbols (checked numerically later).
    """
    present = [s for s in symbols if s in expr.free_symbols]
    zero = dict.fromkeys(present, 0)
    constant = expr.xreplace(zero)
    parts = {0: constant} if constant != 0 else {}
    for symbol in present:
        part = expr.xreplace({**zero, symbol: 1}) - constant
        if part != 0:
            parts[symbols.index(symbol) + 1] = part
    return parts


def lower_basis(
    model: PublishedModel, free: Sequence[str], values: Mapping[str, Any]
) -> AmplitudeBasis:
    """Lower ``E_jk`` and ``F_λj`` of ``model`` for the ``free`` couplings (see the module).

    ``values`` holds every parameter's value; the free couplings' values are not used.

    Raises:
        InvalidInputError: the version has no polarimetry forms (before 1.4.0, or a model
            without amplitude structure), or its intensity is not ``Σ |X_λ|²``.
        ModelstoreError: an expression has no translation.
    """
    import sympy as sp

    from modelstore._native.emitter import _Emitter, _Real, _Value
    from modelstore._native.lowering import _rewrite_angles, emit_angles, emit_parameters
    from modelstore.backends.base import pack_parameters
    from modelstore.format.arraycode import _function_source

    if not model.manifest.has_file("polarimetry-srepr"):
        msg = (
            f"{model.ref} has no amplitude forms (the amplitudes and the intensity as Σ|X_λ|²;"
            " LHCb's models carry them from 1.4.0 on); a coupling cache needs the amplitudes,"
            " not only the intensity (modelstore.fit.fit then evaluates the model each iteration)"
        )
        raise InvalidInputError(msg)
    forms = model.load_forms("srepr")
    where = model.ref
    by_name = {str(symbol): symbol for symbol in forms["parameter_defaults"]}
    symbols = [by_name[name] for name in free]
    amplitudes = forms["amplitudes"]
    names = list(amplitudes)
    terms = _structured_terms(forms["polarimetry"]["intensity"], where)
    e_exprs: dict[tuple[int, int], Any] = {}
    for j, name in enumerate(names):
        for k, part in _linear_parts(amplitudes[name], symbols).items():
            e_exprs[j, k] = part
    f_exprs: dict[tuple[int, int], Any] = {}
    for lam, term in enumerate(terms):
        parts = _linear_parts(sp.sympify(term), names)
        if 0 in parts:
            msg = f"{where}: an aligned amplitude has a part without amplitudes"
            raise InvalidInputError(msg)
        for j, part in parts.items():
            f_exprs[lam, j - 1] = part

    emitter = _Emitter()
    parameter_names = [p.name for p in model.manifest.parameters]
    parameters, _ = emit_parameters(emitter, forms, parameter_names)
    s1, s2 = sp.symbols("sigma1 sigma2", nonnegative=True)
    emitter.symbols[s1] = _Value(_Real("sigma1"), None, False)
    emitter.symbols[s2] = _Value(_Real("sigma2"), None, False)
    ((s3, s3_expr),) = forms["sigma3"].items()
    emitter.symbols[s3] = emitter.materialize(emitter.value(s3_expr))
    everything = sp.Tuple(*e_exprs.values(), *f_exprs.values())
    rewritten, angles, remaining = _rewrite_angles(everything, forms["variables"])
    emit_angles(emitter, angles, remaining)
    replacements, reduced = sp.cse(
        list(rewritten.args),
        order="none",
        list=True,
        symbols=sp.numbered_symbols("ms_b", cls=sp.Dummy),
    )
    for symbol, expr in replacements:
        emitter.bind(symbol, expr)
    outputs = []
    for k, expr in enumerate(reduced):
        value = emitter.value(expr)
        for part, code in (("re", value.re), ("im", value.im)):
            outputs.append((f"out{k}_{part}", "0.0" if code is None else code.code))
    # broadcast constants to arrays: every output is ``sigma1 * 0.0 + (code)``
    outputs = [(name, f"sigma1 * 0.0 + ({code})") for name, code in outputs]
    returns = "(" + ", ".join(name for name, _ in outputs) + ",)"
    source = _function_source(FUNCTION, parameters, emitter.temps, outputs, returns)
    namespace: dict[str, Any] = {"__builtins__": {}}
    exec(compile(source, f"{where} coupling basis", "exec"), namespace)  # noqa: S102 (generated here)
    return AmplitudeBasis(
        free=list(free),
        n_amplitudes=len(names),
        n_helicities=len(terms),
        e_pairs=list(e_exprs),
        f_pairs=list(f_exprs),
        function=namespace[FUNCTION],
        par=pack_parameters(model.manifest.parameters, values),
    )
