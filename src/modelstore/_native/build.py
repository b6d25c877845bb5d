"""Build native evaluators through cffi into a per-user cache, and load them verified.

A build lives in ``<cache>/native/<key>/``, where the key is a digest of the C source digest,
compiler identity, flags, Python ABI, platform and cffi version. A build is made in a temporary
folder and renamed into place whole, so a reader sees a complete build or none, and concurrent
builders of the same key agree (the first rename wins; a lock only saves duplicate work). The
library's digest is recorded at build time and checked again on the bytes that are loaded.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.machinery
import io
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from modelstore._native.compiler import CFLAGS, LDFLAGS, compiler_command, compiler_identity
from modelstore.errors import BackendUnavailableError, IntegrityError
from modelstore.hashing import bytes_digest

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
_ABI_RE = re.compile(r"native ABI ([0-9]+)\)")
RECORD = "build.json"


def cache_root() -> Path:
    """The cache folder shared with downloads (``$MODELSTORE_CACHE_DIR`` or the user's)."""
    from modelstore.cache import cache_dir

    return cache_dir()


def build_key(source_digest: str, compiler: str) -> str:
    import cffi

    parts = {
        "source": source_digest,
        "compiler": compiler,
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


def _compile(source: str, key: str, workdir: Path) -> Path:
    import cffi

    name = _module_name(key)
    match = _ABI_RE.search(source[:400])
    abi = int(match.group(1)) if match else 0
    if abi not in CDEF_BY_ABI:
        msg = f"the native source declares ABI {abi}; this modelstore builds ABIs {sorted(CDEF_BY_ABI)}"
        raise BackendUnavailableError(msg)
    ffi = cffi.FFI()
    ffi.cdef(CDEF_BY_ABI[abi])
    ffi.set_source(name, source)
    c_file = workdir / f"{name}.c"
    with contextlib.redirect_stdout(io.StringIO()):  # cffi announces "generating ..." on stdout
        ffi.emit_c_code(str(c_file))
    library = workdir / f"{name}{sysconfig.get_config_var('EXT_SUFFIX')}"
    include = sysconfig.get_paths()["include"]
    command = [*compiler_command(), *CFLAGS, f"-I{include}", str(c_file), "-o", str(library), *LDFLAGS]
    proc = subprocess.run(command, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.strip().splitlines()[-5:])
        msg = f"compiling the native evaluator failed ({command[0]} exit {proc.returncode}): {tail}"
        raise BackendUnavailableError(msg)
    return library


def _load_verified(directory: Path, key: str) -> tuple[ModuleType, Path]:
    """Load the library of a finished build after checking it against the build record."""
    record = json.loads((directory / RECORD).read_text())
    library = directory / record["library"]
    if Path(record["library"]).name != record["library"]:
        msg = f"{directory / RECORD}: malformed library name {record['library']!r}"
        raise IntegrityError(msg)
    data = library.read_bytes()
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


def load_or_build(source_digest: str, read_source: callable) -> NativeBuild:
    """Return the loaded native module for a C source, building it if the cache lacks it.

    ``read_source`` is called only when a build is needed; it returns the verified source text.
    """
    compiler = compiler_identity()
    if compiler is None:
        msg = f"no working C compiler ({' '.join(compiler_command())}); set MODELSTORE_CC or CC"
        raise BackendUnavailableError(msg)
    key = build_key(source_digest, compiler)
    root = cache_root() / "native"
    directory = root / key
    if (directory / RECORD).is_file():
        try:
            module, library = _load_verified(directory, key)
            return NativeBuild(module, library, "cached")
        except IntegrityError:
            # A tampered or corrupted cache entry is never loaded; move it aside and rebuild.
            quarantine = root / f".bad-{key}-{os.getpid()}"
            with contextlib.suppress(OSError):
                os.rename(directory, quarantine)
                shutil.rmtree(quarantine, ignore_errors=True)
    root.mkdir(parents=True, exist_ok=True)
    from filelock import FileLock

    with FileLock(root / f"{key}.lock", timeout=600):
        if not (directory / RECORD).is_file():
            source = read_source()
            workdir = Path(tempfile.mkdtemp(prefix=f".build-{key[:12]}-", dir=root))
            try:
                library = _compile(source, key, workdir)
                for leftover in workdir.iterdir():
                    if leftover != library:
                        leftover.unlink()
                record = {
                    "library": library.name,
                    "digest": bytes_digest(library.read_bytes()),
                    "source_digest": source_digest,
                    "compiler": compiler,
                    "cflags": list(CFLAGS),
                }
                (workdir / RECORD).write_text(json.dumps(record, indent=1) + "\n")
                try:
                    os.rename(workdir, directory)
                except OSError:
                    if not (directory / RECORD).is_file():
                        raise
            finally:
                shutil.rmtree(workdir, ignore_errors=True)
            status = "built"
        else:
            status = "cached"
    module, library = _load_verified(directory, key)
    return NativeBuild(module, library, status)
