"""Build native evaluators through cffi into a per-user cache, and load them verified.

A build lives in ``<cache>/native/<key>/``, where the key is a digest of the C source digest,
compiler identity, flags, Python ABI, platform and cffi version, and, for a build of one *unit*
of the source (one entry point at one instruction set, cut by :mod:`modelstore._native.units`),
of what the unit holds and the format of the cut. A build is made in a temporary
folder and renamed into place whole, so a reader sees a complete build or none, and concurrent
builders of the same key agree (the first rename wins; a lock only saves duplicate work). The
library's digest is recorded at build time and checked again on the bytes that are loaded.

The record proves nothing to someone who can write the cache folder (they can rewrite both the
library and its record), so the cache is used only when the cache folder, ``native/`` and the
entry are owned by the current user and writable by nobody else (as ssh's StrictModes and pip
treat such folders). Otherwise the library is built in a fresh private temporary folder, loaded
from there and not kept, with a warning that names the unsafe folder.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.machinery
import importlib.util
import io
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

from modelstore._native.compiler import (
    CFLAGS,
    LDFLAGS,
    check_compiler_flags,
    compiler_command,
    compiler_identity,
)
from modelstore.errors import BackendUnavailableError, IntegrityError
from modelstore.progress import step
from modelstore.store.hashing import bytes_digest
from modelstore.store.leftovers import BUILD_PREFIX, DISCARD_PREFIX
from modelstore.store.private import make_private_folder, unsafe_reason

if TYPE_CHECKING:
    from collections.abc import Callable

    from modelstore._native.units import Unit

__all__ = ["NativeBuild", "cache_root", "load_cached", "load_or_build"]

CDEF = """
int ms_abi(void);
int ms_n_parameters(void);
int ms_n_slots(void);
const char *ms_parameter_name(int k);
const char *ms_signature(void);
void ms_evaluate(const double *s1, const double *s2, double *out, size_t n,
                 const double *par, int n_threads);
"""
CDEF_BY_ABI = {2: CDEF, 3: CDEF + "int ms_isa(void);\nvoid ms_set_isa_limit(int level);\n"}
CDEF_BY_ABI[4] = (
    CDEF_BY_ABI[3]
    + """void ms_evaluate_polarimetry(const double *s1, const double *s2, double *out_i,
                             double *out_x, double *out_y, double *out_z, size_t n,
                             const double *par, int n_threads);
"""
)
# A unit's library declares its own entry point: intensity units are built from ABI 3 and 4
# files, polarimetry units from ABI 4 ones (ms_evaluate left out).
CDEF_BY_UNIT = {
    "intensity": CDEF_BY_ABI[3],
    "polarimetry": CDEF_BY_ABI[4].replace(
        """void ms_evaluate(const double *s1, const double *s2, double *out, size_t n,
                 const double *par, int n_threads);
""",
        "",
    ),
}
_ABI_RE = re.compile(r"native ABI ([0-9]+)\)")
RECORD = "build.json"


def cache_root() -> Path:
    """The cache folder shared with downloads (``$MODELSTORE_CACHE_DIR`` or the user's).

    Never raises.
    """
    from modelstore.store.cache import cache_dir

    return cache_dir()


def build_key(
    source_digest: str, compiler: str, unit: Unit | None = None, cdef: str | None = None
) -> str:
    import cffi

    parts: dict[str, object] = {
        "source": source_digest,
        "compiler": compiler,
        "command": compiler_command(),
        "cflags": list(CFLAGS),
        "ldflags": list(LDFLAGS),
        "python": sys.implementation.cache_tag,
        "ext_suffix": sysconfig.get_config_var("EXT_SUFFIX"),
        "platform": sysconfig.get_platform(),
        "cffi": cffi.__version__,
    }
    if unit is not None:  # the whole file keeps the key it always had
        parts["unit"] = unit.describe()
        parts["cdef"] = CDEF_BY_UNIT[unit.entry]  # the cffi wrapper compiled with the unit
    if cdef is not None:  # a unit with its own declarations (the gradient unit)
        parts["cdef"] = hashlib.sha256(cdef.encode()).hexdigest()
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True)
class NativeBuild:
    module: ModuleType
    library_path: Path
    status: str  # "built" or "cached"


def _module_name(key: str) -> str:
    return f"_modelstore_native_{key[:24]}"


def _compile(
    source: str, key: str, workdir: Path, unit: Unit | None = None, cdef: str | None = None
) -> Path:
    import cffi

    name = _module_name(key)
    match = _ABI_RE.search(source[:400])
    abi = int(match.group(1)) if match else 0
    if cdef is None and abi not in CDEF_BY_ABI:
        msg = (
            f"the native source declares ABI {abi};"
            f" this modelstore builds ABIs {sorted(CDEF_BY_ABI)}"
        )
        raise BackendUnavailableError(msg)
    ffi = cffi.FFI()
    if cdef is None:
        cdef = CDEF_BY_ABI[abi] if unit is None else CDEF_BY_UNIT[unit.entry]
    ffi.cdef(cdef)
    ffi.set_source(name, source)
    c_file = workdir / f"{name}.c"
    with contextlib.redirect_stdout(io.StringIO()):  # cffi announces "generating ..." on stdout
        ffi.emit_c_code(str(c_file))
    library = workdir / f"{name}{sysconfig.get_config_var('EXT_SUFFIX')}"
    include = sysconfig.get_paths()["include"]
    command = [
        *compiler_command(),
        *CFLAGS,
        f"-I{include}",
        str(c_file),
        "-o",
        str(library),
        *LDFLAGS,
    ]
    proc = subprocess.run(command, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.strip().splitlines()[-5:])
        msg = f"compiling the native evaluator failed ({command[0]} exit {proc.returncode}): {tail}"
        raise BackendUnavailableError(msg)
    return library


def _check_private(path: Path, what: str) -> None:
    reason = unsafe_reason(path, what)
    if reason is not None:
        raise IntegrityError(f"untrusted build cache entry: {reason}")


def _read_record(directory: Path) -> dict:
    """The build record of an entry; IntegrityError if it is unreadable or malformed."""
    path = directory / RECORD
    _check_private(directory, "folder")
    _check_private(path, "file")
    try:
        record = json.loads(path.read_bytes().decode("utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        msg = f"{path}: unreadable build record ({type(exc).__name__}: {exc})"
        raise IntegrityError(msg) from None
    if not isinstance(record, dict) or not all(
        isinstance(record.get(k), str) for k in ("library", "digest")
    ):
        msg = f"{path}: malformed build record (expected 'library' and 'digest' strings)"
        raise IntegrityError(msg)
    return record


def _load_verified(directory: Path, key: str) -> tuple[ModuleType, Path]:
    """Load the library of a finished build after checking it against the build record."""
    record = _read_record(directory)
    library = directory / record["library"]
    if Path(record["library"]).name != record["library"]:
        msg = f"{directory / RECORD}: malformed library name {record['library']!r}"
        raise IntegrityError(msg)
    _check_private(library, "file")
    try:
        data = library.read_bytes()
    except OSError as exc:
        msg = f"{library}: cannot read the cached library ({exc.strerror or exc})"
        raise IntegrityError(msg) from None
    actual = bytes_digest(data)
    if actual != record["digest"]:
        msg = (
            f"{library}: digest mismatch: the build recorded {record['digest']}, the file has"
            f" {actual} (the cached library was replaced after it was built)"
        )
        raise IntegrityError(msg)
    # Load the very bytes that were hashed: a private copy, not the shared cache file.
    name = _module_name(key)
    if name in sys.modules:
        return sys.modules[name], library
    fd, private = tempfile.mkstemp(prefix=f"{name}-", suffix=library.suffix)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        loader = importlib.machinery.ExtensionFileLoader(name, private)
        spec = importlib.util.spec_from_file_location(name, private, loader=loader)
        if spec is None:
            msg = f"cannot load {library}"
            raise BackendUnavailableError(msg)
        module = importlib.util.module_from_spec(spec)
        loader.exec_module(module)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(private)
    sys.modules[name] = module
    return module, library


def _private_root(cache: Path) -> tuple[Path, str | None]:
    """``<cache>/native``, created private; with the reason it cannot be trusted, if any."""
    root = cache / "native"
    return root, make_private_folder(cache) or make_private_folder(root)


@dataclass(frozen=True)
class _Job:
    """One build: its key, what it compiles, and how to name it in the progress line."""

    key: str
    source_digest: str
    compiler: str
    read_source: Callable[[], str]
    unit: Unit | None
    label: str
    cdef: str | None = None

    @property
    def what(self) -> str:
        of = f" of {self.label}" if self.label else ""
        if self.unit is None:
            return f"compiling the native evaluator{of} (all entry points and instruction sets)"
        return f"compiling the native evaluator{of} ({self.unit.entry}, {self.unit.isa} code)"


def _build_into(directory: Path, parent: Path, job: _Job) -> None:
    """Compile into a fresh private folder under ``parent`` and rename it to ``directory``."""
    source = job.read_source()
    key = job.key
    workdir = Path(tempfile.mkdtemp(prefix=f"{BUILD_PREFIX}{key[:12]}-", dir=parent))
    try:
        with step(job.what):
            library = _compile(source, key, workdir, job.unit, job.cdef)
        for leftover in workdir.iterdir():
            if leftover != library:
                leftover.unlink()
        record: dict[str, object] = {
            "library": library.name,
            "digest": bytes_digest(library.read_bytes()),
            "source_digest": job.source_digest,
            "compiler": job.compiler,
            "command": compiler_command(),
            "cflags": list(CFLAGS),
        }
        if job.unit is not None:
            record["unit"] = {**job.unit.describe(), "c_digest": bytes_digest(source.encode())}
        (workdir / RECORD).write_text(json.dumps(record, indent=1) + "\n")
        # writable by the owner alone whatever the umask, or the next load would refuse them
        library.chmod(0o755)
        (workdir / RECORD).chmod(0o644)
        try:
            os.rename(workdir, directory)
        except OSError:
            if not (directory / RECORD).is_file():
                raise
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _build_privately(job: _Job, reason: str) -> NativeBuild:
    warnings.warn(
        f"not using the native build cache: {reason}; building in a private temporary folder"
        " (make the cache folder yours and not group/world-writable, or set MODELSTORE_CACHE_DIR)",
        stacklevel=3,
    )
    parent = Path(tempfile.mkdtemp(prefix="modelstore-native-"))  # mode 0700, ours alone
    try:
        directory = parent / job.key
        _build_into(directory, parent, job)
        module, library = _load_verified(directory, job.key)
    finally:
        shutil.rmtree(parent, ignore_errors=True)
    return NativeBuild(module, library, "built")


def _key(source_digest: str, unit: Unit | None, cdef: str | None = None) -> tuple[str, str]:
    """The compiler's identity and the build key; refuses a missing compiler or unsafe flags."""
    compiler = compiler_identity()
    if compiler is None:
        msg = f"no working C compiler ({' '.join(compiler_command())}); set MODELSTORE_CC or CC"
        raise BackendUnavailableError(msg)
    check_compiler_flags()
    return compiler, build_key(source_digest, compiler, unit, cdef)


def _load_entry(root: Path, key: str) -> NativeBuild | None:
    """The verified build of ``key`` in the cache; None if there is none (or it was broken)."""
    directory = root / key
    if not os.path.lexists(directory):
        return None
    try:
        module, library = _load_verified(directory, key)
        return NativeBuild(module, library, "cached")
    except IntegrityError as exc:
        # A tampered, corrupted or foreign cache entry is never loaded; move it aside and
        # rebuild.
        warnings.warn(f"rebuilding a broken native cache entry: {exc}", stacklevel=3)
        quarantine = root / f"{DISCARD_PREFIX}{key}-{os.getpid()}"
        with contextlib.suppress(OSError):
            os.rename(directory, quarantine)
            shutil.rmtree(quarantine, ignore_errors=True)
    return None


def load_cached(source_digest: str, unit: Unit | None = None) -> NativeBuild | None:
    """The cached build of a C source (or of one unit of it), or None; never builds.

    None too when the cache folder cannot be trusted (see the module docstring).

    Raises:
        BackendUnavailableError: no working C compiler, or a refused compiler flag.
    """
    _, key = _key(source_digest, unit)
    root, reason = _private_root(cache_root())
    return None if reason is not None else _load_entry(root, key)


def load_or_build(
    source_digest: str,
    read_source: Callable[[], str],
    unit: Unit | None = None,
    label: str = "",
    cdef: str | None = None,
) -> NativeBuild:
    """Return the loaded native module for a C source, building it if the cache lacks it.

    ``read_source`` is called only when a build is needed; it returns the verified source text,
    or, with ``unit``, the text of that unit cut from it (:func:`modelstore._native.units.compose`).
    ``cdef`` declares the unit's functions when they are not a published ABI's (the gradient
    unit); it is then part of the build key.
    A cache folder that another user could write is not used (see the module docstring). A
    build prints one progress line naming ``label`` on a terminal (:mod:`modelstore.progress`).

    Raises:
        BackendUnavailableError: no working C compiler, a refused compiler flag, or a failed build.
        IntegrityError: a cached library does not match its record.
    """
    compiler, key = _key(source_digest, unit, cdef)
    job = _Job(key, source_digest, compiler, read_source, unit, label, cdef)
    root, reason = _private_root(cache_root())
    if reason is not None:
        return _build_privately(job, reason)
    found = _load_entry(root, key)
    if found is not None:
        return found
    directory = root / key
    from filelock import FileLock

    with FileLock(root / f"{key}.lock", timeout=600):
        if not os.path.lexists(directory):
            _build_into(directory, root, job)
            status = "built"
        else:
            status = "cached"
    module, library = _load_verified(directory, key)
    return NativeBuild(module, library, status)
