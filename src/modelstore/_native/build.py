"""Build native evaluators through cffi into a per-user cache, and load them verified.

A build lives in ``<cache>/native/<key>/``, where the key is a digest of the C source digest,
compiler identity, flags, Python ABI, platform and cffi version. A build is made in a temporary
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
from modelstore.store.hashing import bytes_digest
from modelstore.store.private import make_private_folder, unsafe_reason

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["NativeBuild", "cache_root", "load_or_build"]

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
_ABI_RE = re.compile(r"native ABI ([0-9]+)\)")
RECORD = "build.json"


def cache_root() -> Path:
    """The cache folder shared with downloads (``$MODELSTORE_CACHE_DIR`` or the user's).

    Never raises.
    """
    from modelstore.store.cache import cache_dir

    return cache_dir()


def build_key(source_digest: str, compiler: str) -> str:
    import cffi

    parts = {
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
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True)
class NativeBuild:
    module: ModuleType
    library_path: Path
    status: str  # "built" or "cached"


def _module_name(key: str) -> str:
    return f"_modelstore_native_{key[:24]}"


def _compile(source: str, key: str, workdir: Path, cdef: str | None = None) -> Path:
    import cffi

    name = _module_name(key)
    if cdef is None:
        match = _ABI_RE.search(source[:400])
        abi = int(match.group(1)) if match else 0
        if abi not in CDEF_BY_ABI:
            msg = (
                f"the native source declares ABI {abi};"
                f" this modelstore builds ABIs {sorted(CDEF_BY_ABI)}"
            )
            raise BackendUnavailableError(msg)
        cdef = CDEF_BY_ABI[abi]
    ffi = cffi.FFI()
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


def _build_into(
    directory: Path,
    parent: Path,
    key: str,
    source_digest: str,
    compiler: str,
    read_source: Callable[[], str],
    cdef: str | None = None,
) -> None:
    """Compile into a fresh private folder under ``parent`` and rename it to ``directory``."""
    source = read_source()
    workdir = Path(tempfile.mkdtemp(prefix=f".build-{key[:12]}-", dir=parent))
    try:
        library = _compile(source, key, workdir, cdef)
        for leftover in workdir.iterdir():
            if leftover != library:
                leftover.unlink()
        record = {
            "library": library.name,
            "digest": bytes_digest(library.read_bytes()),
            "source_digest": source_digest,
            "compiler": compiler,
            "command": compiler_command(),
            "cflags": list(CFLAGS),
        }
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


def _build_privately(
    key: str,
    source_digest: str,
    compiler: str,
    read_source: Callable[[], str],
    reason: str,
    cdef: str | None = None,
) -> NativeBuild:
    warnings.warn(
        f"not using the native build cache: {reason}; building in a private temporary folder"
        " (make the cache folder yours and not group/world-writable, or set MODELSTORE_CACHE_DIR)",
        stacklevel=3,
    )
    parent = Path(tempfile.mkdtemp(prefix="modelstore-native-"))  # mode 0700, ours alone
    try:
        directory = parent / key
        _build_into(directory, parent, key, source_digest, compiler, read_source, cdef)
        module, library = _load_verified(directory, key)
    finally:
        shutil.rmtree(parent, ignore_errors=True)
    return NativeBuild(module, library, "built")


def load_or_build(
    source_digest: str, read_source: Callable[[], str], cdef: str | None = None
) -> NativeBuild:
    """Return the loaded native module for a C source, building it if the cache lacks it.

    ``read_source`` is called only when a build is needed; it returns the verified source text.
    ``cdef`` declares the library's functions; by default those of the native ABI the source
    declares (a model's evaluator). The digest must cover the cdef: a fixed source has one.
    A cache folder that another user could write is not used (see the module docstring).

    Raises:
        BackendUnavailableError: no working C compiler, a refused compiler flag, or a failed build.
        IntegrityError: a cached library does not match its record.
    """
    compiler = compiler_identity()
    if compiler is None:
        msg = f"no working C compiler ({' '.join(compiler_command())}); set MODELSTORE_CC or CC"
        raise BackendUnavailableError(msg)
    check_compiler_flags()
    key = build_key(source_digest, compiler)
    root, reason = _private_root(cache_root())
    if reason is not None:
        return _build_privately(key, source_digest, compiler, read_source, reason, cdef)
    directory = root / key
    if os.path.lexists(directory):
        try:
            module, library = _load_verified(directory, key)
            return NativeBuild(module, library, "cached")
        except IntegrityError as exc:
            # A tampered, corrupted or foreign cache entry is never loaded; move it aside and
            # rebuild.
            warnings.warn(f"rebuilding a broken native cache entry: {exc}", stacklevel=2)
            quarantine = root / f".bad-{key}-{os.getpid()}"
            with contextlib.suppress(OSError):
                os.rename(directory, quarantine)
                shutil.rmtree(quarantine, ignore_errors=True)
    from filelock import FileLock

    with FileLock(root / f"{key}.lock", timeout=600):
        if not os.path.lexists(directory):
            _build_into(directory, root, key, source_digest, compiler, read_source, cdef)
            status = "built"
        else:
            status = "cached"
    module, library = _load_verified(directory, key)
    return NativeBuild(module, library, status)
