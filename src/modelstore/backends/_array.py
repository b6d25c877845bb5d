"""JAX and numpy evaluators that run a version's published array program (1.3.0 on).

Neither sympy nor the pickle is needed: the verified ``array-source`` file is checked against
the allow-list of :mod:`modelstore.format.arraycode`, compiled, and called with ``jax.numpy`` (under
``jax.jit``) or ``numpy``. Parameters travel as one packed array, so overrides never recompile.

JAX's compiled programs are kept in JAX's persistent compilation cache under the modelstore
cache folder (``<cache>/jax``), so a new process skips XLA compilation. A compiled program is
code, and JAX writes its entries with the process's umask (0666 under umask 000), so the folder
is used only when it is closed to everyone else: ``<cache>`` owned by this user and writable by
nobody else, ``<cache>/jax`` created with mode 0700 and refused, with one warning, unless it is
this user's and mode 0700 (``modelstore.store.private``; no entry is then reachable by anyone
else, whatever its mode). Set ``MODELSTORE_JAX_CACHE=off`` to never use it. A cache folder the
caller already configured for JAX is left as it is.

64-bit floats are switched on only around modelstore's own JAX calls (:func:`x64`, JAX's
thread-local ``jax.enable_x64`` context, which also keys JAX's compiled programs), so a caller's
own JAX code in the same process keeps its default dtype (float32 unless it chose otherwise).
"""

from __future__ import annotations

import contextlib
import os
import threading
import warnings
from typing import TYPE_CHECKING, Any

import numpy as np

from modelstore.backends.base import Evaluator, pack_parameters
from modelstore.errors import BackendUnavailableError

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

    from modelstore.model import PublishedModel

__all__ = ["JAX_CACHE_ENV", "ArrayProgramEvaluator", "jax_cache_folder", "x64"]

JAX_CACHE_ENV = "MODELSTORE_JAX_CACHE"


_JAX_CACHE_LOCK = threading.Lock()
_jax_cache_checked = False  # once per process: one warning at most
_x64_warned = False  # the fallback's warning, once per process


def x64(jax: Any) -> contextlib.AbstractContextManager[Any]:
    """A context with 64-bit JAX inside only (this thread), whatever the process's default.

    ``jax.enable_x64(True)`` (JAX 0.8 on) or ``jax.experimental.enable_x64()`` (older): both
    are thread-local and part of the key of JAX's compiled programs, so a program traced inside
    runs in float64 and the caller's code outside keeps its dtype. A JAX with neither (none
    known) gets the process-wide switch, with one warning saying so.

    Never raises.
    """
    global _x64_warned  # noqa: PLW0603 (one warning per process)
    scope = getattr(jax, "enable_x64", None)
    if callable(scope):
        return scope(True)
    try:
        from jax.experimental import enable_x64  # type: ignore[attr-defined]
    except ImportError:
        pass
    else:
        return enable_x64()
    if not jax.config.jax_enable_x64:
        jax.config.update("jax_enable_x64", True)
        if not _x64_warned:
            _x64_warned = True
            warnings.warn(
                f"modelstore switched JAX {jax.__version__} to 64-bit for the whole process"
                " (jax_enable_x64=True; this JAX cannot scope it): your own JAX arrays now"
                " default to float64",
                stacklevel=4,
            )
    return contextlib.nullcontext()


def jax_cache_folder() -> Path | None:
    """``<cache>/jax``, created closed (mode 0700), if JAX may keep compiled programs there.

    None, with a warning, if ``<cache>`` is not private or ``<cache>/jax`` is not closed
    (``modelstore.store.private``).

    Never raises.
    """
    from modelstore.store.cache import cache_dir
    from modelstore.store.private import make_private_folder

    folder = cache_dir() / "jax"
    reason = make_private_folder(folder.parent) or make_private_folder(folder, closed=True)
    if reason is None:
        return folder
    warnings.warn(
        f"not keeping JAX's compiled programs in {folder}: {reason}; remove that folder (its"
        " entries may have been changed) to let modelstore create it mode 700, or set"
        f" {JAX_CACHE_ENV}=off",
        stacklevel=2,
    )
    return None


def _configure_jax() -> Any:
    global _jax_cache_checked  # noqa: PLW0603 (one check per process)
    try:
        import jax
    except ImportError:
        msg = (
            "the 'jax' backend needs the jax package, which is not installed here: pip install jax"
        )
        raise BackendUnavailableError(msg) from None
    if os.environ.get(JAX_CACHE_ENV, "").lower() in ("off", "0", "no", "false"):
        return jax
    with _JAX_CACHE_LOCK:
        configured = jax.config.jax_compilation_cache_dir  # type: ignore[attr-defined]
        if _jax_cache_checked or configured is not None:
            return jax
        _jax_cache_checked = True
        folder = jax_cache_folder()
        if folder is not None:
            jax.config.update("jax_compilation_cache_dir", str(folder))
            jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    return jax


class ArrayProgramEvaluator(Evaluator):
    """Runs the verified array program with ``numpy`` or ``jax.numpy``."""

    def __init__(self, model: PublishedModel, backend: str) -> None:
        from modelstore.format.arraycode import compile_array_program

        self.name = backend
        self._parameters = model.manifest.parameters
        source = model.registry.read_file(model.manifest, "array-source").decode("utf-8")
        program = compile_array_program(source, f"{model.ref} array program")
        polarimetry = None
        self._polarimetry: Any = None
        if model.manifest.has_file("polarimetry-srepr"):  # 1.4.0 on: a second function
            polarimetry = compile_array_program(
                source, f"{model.ref} array program", function="polarimetry"
            )
        self._scope: Any = contextlib.nullcontext
        if backend == "jax":
            jax = _configure_jax()
            import jax.numpy as jnp

            self._scope = lambda: x64(jax)

            self._function = jax.jit(lambda s1, s2, par: program(s1, s2, par, jnp))
            if polarimetry is not None:
                # a tuple out of the jit: stacking inside it (a concatenate fusion) runs ~50x slower
                function = jax.jit(lambda s1, s2, par: polarimetry(s1, s2, par, jnp))
                self._polarimetry = lambda s1, s2, par: np.stack(
                    [np.broadcast_to(np.asarray(v), np.shape(s1)) for v in function(s1, s2, par)]
                )
            # one compiled program per input length: pad the last chunk instead
            self.pad_chunks = True
            self.chunk_size = 1 << 18
        else:
            self._function = lambda s1, s2, par: program(s1, s2, par, np)
            if polarimetry is not None:
                self._polarimetry = lambda s1, s2, par: np.stack(
                    [np.broadcast_to(v, np.shape(s1)) for v in polarimetry(s1, s2, par, np)]
                )
            self.chunk_size = 1 << 15  # a few thousand temporaries live at once per chunk

    def __call__(
        self,
        sigma1: np.ndarray,
        sigma2: np.ndarray,
        parameters: Mapping[str, Any],
        out: np.ndarray | None = None,
    ) -> np.ndarray:
        """Evaluate the array program on one chunk.

        Raises:
            InvalidInputError: an unknown parameter or a value of the wrong kind.
        """
        packed = pack_parameters(self._parameters, parameters)
        with np.errstate(all="ignore"), self._scope():
            values = np.asarray(self._function(sigma1, sigma2, packed), dtype=np.float64)
        values = np.broadcast_to(values, np.shape(sigma1))
        if out is None:
            return np.array(values, dtype=np.float64)
        out[...] = values
        return out

    def polarimetry(
        self,
        sigma1: np.ndarray,
        sigma2: np.ndarray,
        parameters: Mapping[str, Any],
        out: np.ndarray | None = None,
    ) -> np.ndarray:
        """Rows ``(I, αx, αy, αz)`` from the array program's ``polarimetry`` function.

        Raises:
            BackendUnavailableError: the version's array program has no polarimetry (before 1.4.0).
            InvalidInputError: a real parameter is given a complex value.
        """
        if self._polarimetry is None:
            return super().polarimetry(sigma1, sigma2, parameters, out)
        packed = pack_parameters(self._parameters, parameters)
        with np.errstate(all="ignore"), self._scope():
            values = np.asarray(self._polarimetry(sigma1, sigma2, packed), dtype=np.float64)
        if out is None:
            return np.array(values, dtype=np.float64)
        out[...] = values
        return out
