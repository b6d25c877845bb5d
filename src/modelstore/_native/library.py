"""The native library of one version: built whole, or unit by unit as it is used.

A cold start compiles only what the first value needs: the intensity entry point for the
instruction set this processor runs (:mod:`modelstore._native.units`). The polarimetry unit is
built on the first α⃗, another instruction set's unit when a lower limit asks for it
(``MODELSTORE_NATIVE_ISA``, :meth:`NativeEvaluator.limit_isa`). Every unit holds the file's
``ms_isa``, and a unit is only ever run when its own ``ms_isa()`` names the instruction set it
was built for; the first guess comes from the processor's flags and is checked that way.

The whole file is built (as before units) when the processor's instruction set cannot be told
ahead, when the source is not of the structure :func:`~modelstore._native.units.parse`
recognises, when a unit fails to compile, or when the whole build is already in the cache.
"""

from __future__ import annotations

import functools
import platform
import threading
from typing import TYPE_CHECKING, Any

from modelstore._native.build import NativeBuild, load_cached, load_or_build
from modelstore._native.units import ISAS, Unit, compose, parse
from modelstore.errors import BackendUnavailableError

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from modelstore._native.units import SourceParts

__all__ = ["SplitLibrary", "WholeLibrary", "cpu_level", "open_library"]


def cpu_level(cpuinfo: str = "/proc/cpuinfo") -> int | None:
    """The level ``ms_isa()`` picks without a limit (2 AVX-512, 1 AVX2, 0 portable), or None.

    From the processor's flags as Linux reports them (it leaves out what the system does not
    enable); 0 off x86-64, where the generated code has portable code only; None where it
    cannot be told (x86-64 without ``/proc/cpuinfo``).

    Never raises.
    """
    if platform.machine().lower() not in {"x86_64", "amd64"}:
        return 0
    try:
        with open(cpuinfo, encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = set(line.partition(":")[2].split())
                    return 2 if "avx512f" in flags else 1 if "avx2" in flags else 0
    except OSError:
        return None
    return None


def _isa_for(level: int, limit: int) -> int:
    """What ``ms_isa()`` returns at a processor level and a limit (the C code's rule)."""
    return level if level < limit else (0 if limit < 0 else limit)


class WholeLibrary:
    """One build of the whole C file: every entry point and instruction set."""

    def __init__(self, module: Any, library_path: Path, build_status: str) -> None:
        self._module, self._lib = module, module.lib
        self.library_path = library_path
        self.build_status = build_status

    def module(self, entry: str) -> Any:
        """The cffi module (``.ffi``, ``.lib``) holding ``entry``. Never raises."""
        return self._module

    def set_isa_limit(self, level: int) -> None:
        """``ms_set_isa_limit``. Never raises."""
        self._lib.ms_set_isa_limit(level)

    def isa(self) -> int:
        """``ms_isa()``. Never raises."""
        return int(self._lib.ms_isa())


class SplitLibrary:
    """Units of one C file, each built (or loaded from the cache) on first use."""

    def __init__(
        self,
        source_digest: str,
        read_source: Callable[[], str],
        label: str,
        first: tuple[Unit, NativeBuild],
        parts: SourceParts | None,
        limit: int,
    ) -> None:
        self._digest, self._read_source, self._label = source_digest, read_source, label
        self._parts = parts
        self._limit = limit
        self._units: dict[tuple[str, str], NativeBuild] = {}
        self._whole: WholeLibrary | None = None
        self._lock = threading.Lock()
        unit, build = first
        self.library_path, self.build_status = build.library_path, build.status
        self._level = unit.isa
        self._probe = build.module.lib  # the last unit loaded: its ms_isa() answers
        self._accept(unit, build)

    @property
    def units(self) -> dict[tuple[str, str], NativeBuild]:
        """The units loaded so far, by (entry point, instruction set). Never raises."""
        return dict(self._units)

    def _accept(self, unit: Unit, build: NativeBuild) -> bool:
        """Keep a loaded unit; True if its ``ms_isa()`` names the level it was built for."""
        lib = self._probe = build.module.lib
        lib.ms_set_isa_limit(self._limit)
        actual = ISAS[lib.ms_isa()]
        if actual != unit.isa:
            self._level = actual  # the processor's answer, not the guess
            return False
        self._units[unit.entry, unit.isa] = build
        if unit.entry == "intensity":  # the library in use, as the evaluator reports it
            self.library_path, self.build_status = build.library_path, build.status
        return True

    def _source_parts(self) -> SourceParts | None:
        if self._parts is None:
            self._parts = parse(self._read_source())
        return self._parts

    def _load(self, entry: str) -> Any:
        with self._lock:
            for _ in range(3):
                if self._whole is not None:
                    return self._whole.module(entry)
                found = self._units.get((entry, self._level))
                if found is not None:
                    return found.module
                unit = Unit(entry, self._level)
                build = load_cached(self._digest, unit)
                if build is None:
                    parts = self._source_parts()
                    if parts is None:  # cannot happen for a digest a unit was cut from
                        self._whole = _whole(self._digest, self._read_source, self._label)
                        self._whole.set_isa_limit(self._limit)
                        continue
                    read_unit = functools.partial(compose, parts, unit)
                    build = load_or_build(self._digest, read_unit, unit, self._label)
                if self._accept(unit, build):
                    return build.module
        msg = f"the native units of {self._label or self._digest} disagree on the instruction set"
        raise BackendUnavailableError(msg)

    def module(self, entry: str) -> Any:
        """The cffi module holding ``entry`` at the current level, built if need be.

        Raises:
            BackendUnavailableError: the unit cannot be built.
            IntegrityError: a cached unit fails verification.
        """
        if self._whole is None:
            found = self._units.get((entry, self._level))
            if found is not None:
                return found.module
        return self._load(entry)

    def set_isa_limit(self, level: int) -> None:
        """Set the limit in every loaded unit; the next call runs (or builds) that level.

        Never raises.
        """
        with self._lock:
            self._limit = level
            if self._whole is not None:
                self._whole.set_isa_limit(level)
            for build in self._units.values():
                build.module.lib.ms_set_isa_limit(level)
            # every unit holds the same ms_isa: any loaded one answers for the processor
            self._probe.ms_set_isa_limit(level)
            self._level = ISAS[self._probe.ms_isa()]

    def isa(self) -> int:
        """``ms_isa()`` at the current limit. Never raises."""
        return self._whole.isa() if self._whole is not None else ISAS.index(self._level)


def _whole(source_digest: str, read_source: Callable[[], str], label: str) -> WholeLibrary:
    build = load_or_build(source_digest, read_source, label=label)
    return WholeLibrary(build.module, build.library_path, build.status)


def open_library(
    source_digest: str, read_source: Callable[[], str], label: str = "", limit: int = 2
) -> WholeLibrary | SplitLibrary:
    """The library of a C source, with its intensity entry point loaded (built if need be).

    Order: the intensity unit of this processor's level from the cache, else the whole file from
    the cache, else the unit built from the verified source, else (a source that is not cut into
    units, a unit that does not compile) the whole file built.

    Raises:
        BackendUnavailableError: no working C compiler, a refused flag, or a failed build.
        IntegrityError: the source or a cached library fails verification.
    """
    level = cpu_level()
    if level is None:
        return _whole(source_digest, read_source, label)
    unit = Unit("intensity", ISAS[_isa_for(level, limit)])
    build = load_cached(source_digest, unit)
    parts = None
    if build is None:
        whole = load_cached(source_digest)
        if whole is not None:
            return WholeLibrary(whole.module, whole.library_path, whole.status)
        source = read_source()
        parts = parse(source)
        if parts is None:
            return _whole(source_digest, lambda: source, label)
        text = compose(parts, unit)
        try:
            build = load_or_build(source_digest, lambda: text, unit, label)
        except BackendUnavailableError:  # e.g. a compiler without GCC's target attributes
            return _whole(source_digest, lambda: source, label)
    library = SplitLibrary(source_digest, read_source, label, (unit, build), parts, limit)
    library.module("intensity")  # the guess checked: rebuilt for the level ms_isa() names
    return library
