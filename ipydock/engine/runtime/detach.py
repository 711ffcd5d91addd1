"""The one way ipydock starts a process that must outlive its starter: double fork + setsid.

::

    caller ──fork──> middle ──setsid, fork──> detached: run(), then _exit
       │               └── _exit(0) at once
       └── waitpid(middle): nothing left to reap later

The detached process is in a session of its own and is nobody's child here (init adopts it),
so a kernel, a CLI command or a fork-server helper can exit and it goes on: a container's
supervisor, a spare supervisor forked ahead of need, the command server. Callers flush their
Python streams first (nothing buffered may be written twice); ``run`` must not return normally
into the caller's code, so whatever it does, the process ends with ``_exit``.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable
from pathlib import Path

__all__ = ["detach", "python_env", "raw_fork"]

#: The directory that holds the ``ipydock`` package, for ``python -m ipydock…`` children.
PACKAGE_ROOT = str(Path(__file__).absolute().parents[3])


def raw_fork() -> int:
    """``fork(2)`` without Python's bookkeeping for threads, locks and ``register_at_fork``
    hooks (``threading``, ``random``, ``logging`` reinitialise their state in the child),
    which writes to about 700 KB of the memory the child shares with us: for a process that
    lives long and should stay small (a detached supervisor). Only from a single-threaded
    process that holds no lock (no other thread could have held one either)."""
    import ctypes

    pid = int(ctypes.CDLL(None, use_errno=True).fork())
    if pid < 0:
        raise OSError(ctypes.get_errno(), "fork failed")
    return pid


def detach(run: Callable[[], object], *, raw: bool = False) -> None:
    """Run ``run()`` in a detached grandchild; returns in the caller once it is on its way.
    ``raw``: forked with :func:`raw_fork` (the caller is single-threaded)."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    fork = raw_fork if raw else os.fork
    pid = fork()
    if pid:
        os.waitpid(pid, 0)
        return
    code = 0
    try:
        os.setsid()
        if fork() == 0:
            try:
                run()
            except BaseException:  # noqa: BLE001 - a detached process has no one to tell
                code = 1
            finally:
                os._exit(code)
    finally:
        os._exit(0)


def python_env(env: dict[str, str] | None = None) -> dict[str, str]:
    """``env`` (default: ours) for a ``python -m ipydock…`` child: this ipydock first on its
    path, whether it is installed or run from a checkout."""
    env = dict(os.environ if env is None else env)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [PACKAGE_ROOT, env.get("PYTHONPATH")]))
    return env
