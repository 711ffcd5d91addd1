"""Build and install the native ``ipydock`` command (``launcher.c``), the command server's
client without a Python start (about 12 ms of every command), and ``ipydock-pid1``
(``engine/runtime/pid1.c``, see :mod:`ipydock.engine.runtime.pid1`), the native pid 1 of
prepared containers.

``python -m ipydock.native_launcher install`` compiles it with the system's C compiler and
puts it in place of pip's ``ipydock`` script in this environment's scripts directory
(``scripts/setup.sh`` does this). It does what that script does (:mod:`ipydock.launcher`):
it hands the command line to the warm server, and wherever the script would run the command
in its own process (no server, a stale one, ``IPYDOCK_SERVER=0``, ``system server``) it
execs this interpreter to run the script's code, with the same arguments. Re-installing
the package (``pip install -e .``) brings pip's script back, which works the same, slower;
``install`` again brings the native one back.

What the binary must know is baked in at build time: the interpreter to fall back to and
the server's socket key as :func:`ipydock.launcher.socket_key` computes it there (so both
clients reach the same server). Moving the environment or the package means building again.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig

__all__ = ["SOURCE", "build", "build_pid1", "install", "main"]

SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "launcher.c")
FLAGS = ["-O2", "-Wall", "-Wextra"]


#: The key as the fallback computes it: ``python -c`` without the working directory first on
#: sys.path (as ``launcher.c`` runs it).
_PRINT_KEY = """import sys
if sys.path[:1] == ['']: del sys.path[0]
from ipydock.launcher import socket_key
print(socket_key())
"""


class BuildError(Exception):
    pass


def compiler() -> str | None:
    """``$CC`` (one word) or ``cc``/``gcc`` on PATH."""
    chosen = os.environ.get("CC")
    if chosen:
        return shutil.which(chosen)
    return shutil.which("cc") or shutil.which("gcc")


def c_string(value: str) -> str:
    """A C string literal of ``value``'s bytes (as the file system has them)."""
    out = []
    for byte in os.fsencode(value):
        char = chr(byte)
        out.append(char if 32 <= byte < 127 and char not in '"\\?' else f"\\{byte:03o}")
    return '"' + "".join(out) + '"'


def build(output: str, python: str = sys.executable, env: dict[str, str] | None = None) -> str:
    """Compile the client into ``output`` for the ``python`` (run with ``env``: the key
    depends on the package it imports); the compiler's warnings, if any."""
    cc = compiler()
    if cc is None:
        raise BuildError("no C compiler (cc): install gcc and libc6-dev (Debian) to build it")
    asked = subprocess.run([python, "-c", _PRINT_KEY], env=env, capture_output=True, text=True,
                           check=False)  # fmt: skip
    key = asked.stdout.strip()
    if asked.returncode != 0 or len(key) != 16:
        raise BuildError(f"{python} could not import ipydock: {asked.stderr.strip()[-500:]}")
    defines = [f"-DIPYDOCK_PYTHON={c_string(python)}", f'-DIPYDOCK_KEY="{key}"']
    compiled = subprocess.run([cc, "-std=c99", *FLAGS, *defines, "-o", output, SOURCE],
                              capture_output=True, text=True, check=False)  # fmt: skip
    if compiled.returncode != 0:
        raise BuildError(f"{cc} failed on {SOURCE}:\n{compiled.stderr.strip()}")
    return compiled.stderr


def build_pid1(output: str | None = None) -> str:
    """Compile ``ipydock-pid1`` (:mod:`ipydock.engine.runtime.pid1`) into ``output`` (its
    place beside its source by default), atomically; the compiler's warnings, if any."""
    from ipydock.engine.runtime import pid1

    cc = compiler()
    if cc is None:
        raise BuildError("no C compiler (cc): install gcc and libc6-dev (Debian) to build it")
    output = output or pid1.BINARY
    temp = f"{output}.build-{os.getpid()}"
    try:
        compiled = subprocess.run([cc, "-std=gnu11", *FLAGS, "-o", temp, pid1.SOURCE],
                                  capture_output=True, text=True, check=False)  # fmt: skip
        if compiled.returncode != 0:
            raise BuildError(f"{cc} failed on {pid1.SOURCE}:\n{compiled.stderr.strip()}")
        os.replace(temp, output)
    finally:
        if os.path.exists(temp):
            os.unlink(temp)
    return compiled.stderr


def install(scripts: str | None = None) -> str:
    """Build for this interpreter and put it in place of ``ipydock`` in ``scripts`` (this
    environment's scripts directory); the path. The old command stays if anything fails."""
    target = os.path.join(scripts or sysconfig.get_path("scripts"), "ipydock")
    temp = f"{target}.native-{os.getpid()}"
    try:
        build(temp)
        os.replace(temp, target)
    finally:
        if os.path.exists(temp):
            os.unlink(temp)
    return target


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv != ["install"]:
        print("usage: python -m ipydock.native_launcher install", file=sys.stderr)
        return 2
    from ipydock.engine.runtime import pid1

    code = 0
    try:
        build_pid1()
        print(f"built the native pid 1 of prepared containers: {pid1.BINARY}")
    except (BuildError, OSError) as exc:
        print(f"Error: ipydock-pid1 was not built (Python does its work): {exc}",
              file=sys.stderr)  # fmt: skip
        code = 1
    try:
        target = install()
    except (BuildError, OSError) as exc:
        print(f"Error: the native ipydock command was not built: {exc}", file=sys.stderr)
        return 1
    print(f"installed the native ipydock command: {target}")
    return code


if __name__ == "__main__":
    sys.exit(main())
