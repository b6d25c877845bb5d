"""The C compiler used for native builds, its identity and the fixed flags.

Flags are part of the build cache key. Speed comes from the math, not from unsafe flags:
no -ffast-math, nothing that reassociates or changes a computed value. ``-fno-math-errno``
only stops libm from setting errno (so ``sqrt`` becomes one instruction);
``-fno-trapping-math`` only stops the compiler from preserving floating-point exception
*flags*, which lets it turn the generated selects into vector blends. ``-ffp-contract=off``
forbids fused multiply-add, so results do not depend on the processor. The generated code does
its complex arithmetic on real and imaginary parts itself (see codegen.py).
"""

from __future__ import annotations

import functools
import os
import shlex
import shutil
import subprocess
import sysconfig

__all__ = [
    "CFLAGS",
    "LDFLAGS",
    "check_compiler_flags",
    "compiler_available",
    "compiler_command",
    "compiler_identity",
]

CFLAGS = (
    "-O2", "-g0", "-std=gnu99", "-fPIC", "-fopenmp", "-fno-math-errno",
    "-fno-trapping-math", "-ffp-contract=off", "-fno-strict-aliasing",
)  # fmt: skip
LDFLAGS = ("-shared", "-fopenmp", "-lm")
COMPILER_ENV = "MODELSTORE_CC"
# Words in $MODELSTORE_CC / $CC that would change what the generated code computes: value-changing
# floating-point optimisations and anything that redefines names in the source (-Dsqrt=cbrt).
UNSAFE_FLAGS = frozenset({
    "-ffast-math", "-Ofast", "-funsafe-math-optimizations", "-ffinite-math-only",
    "-fassociative-math", "-freciprocal-math", "-fno-signed-zeros", "-fcx-limited-range",
    "-fcx-fortran-rules", "-ffp-contract=fast", "-ffp-contract=on",
    "-include", "-imacros", "-undef", "-fsingle-precision-constant", "-fexcess-precision=fast",
})  # fmt: skip
UNSAFE_PREFIXES = ("-D", "-U", "--define-macro", "--undefine-macro", "-include", "-imacros",
                   "-Wp,", "-Xpreprocessor", "-ffp-model", "-mrecip", "-mdaz-ftz",
                   "-fno-honor-")  # fmt: skip


def compiler_command() -> list[str]:
    """The compiler: ``$MODELSTORE_CC``, else ``$CC``, else Python's own, else ``cc``.

    Never raises.
    """
    text = (
        os.environ.get(COMPILER_ENV)
        or os.environ.get("CC")
        or sysconfig.get_config_var("CC")
        or "cc"
    )
    return shlex.split(text)


def _compiler_variable() -> str:
    return COMPILER_ENV if os.environ.get(COMPILER_ENV) else "CC"


def check_compiler_flags(command: list[str] | None = None) -> None:
    """Refuse extra words in the compiler command that change floating-point results.

    Raises BackendUnavailableError naming the word and the variable it came from.

    Raises:
        BackendUnavailableError: the command holds a flag that changes numerics.
    """
    from modelstore.errors import BackendUnavailableError

    words = compiler_command() if command is None else command
    for word in words[1:]:
        if word in UNSAFE_FLAGS or word.startswith(UNSAFE_PREFIXES):
            msg = (
                f"${_compiler_variable()} contains {word!r}, which changes what the generated code"
                " computes; native builds refuse it (remove it from the compiler command)"
            )
            raise BackendUnavailableError(msg)


@functools.cache
def _identity(command: tuple[str, ...]) -> str | None:
    if not command or shutil.which(command[0]) is None:
        return None
    try:
        proc = subprocess.run(
            [*command, "--version"], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if proc.returncode != 0 or not proc.stdout:
        return None
    # Every word of the command is part of the identity (and so of the build key): a build made
    # with extra flags is never served to a plain compiler, or the other way round.
    extra = " ".join(command[1:])
    return f"{shutil.which(command[0])}: {proc.stdout.splitlines()[0].strip()}" + (
        f" [{extra}]" if extra else ""
    )


def compiler_identity() -> str | None:
    """Path and version line of the compiler, or None when there is no working compiler.

    Never raises.
    """
    return _identity(tuple(compiler_command()))


def compiler_available() -> bool:
    """True if a C compiler answers (cached per process).

    Never raises.
    """
    return compiler_identity() is not None
