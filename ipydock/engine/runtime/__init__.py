"""The bundled engine's low-level runtime: one isolated process on copy-on-write layers.

::

    kernel thread                      fork-server helper (1 per Runtime, single-threaded)
    -------------                      ---------------------------------------------------
    Spec --validate/build_plan--> Plan --(unix socket, SCM_RIGHTS stdio)--> spawn.spawn()
    Runtime.run()  cgroups.create()                                          |  fork
       |                                              container pid 1: namespaces, overlay,
       v                                              pivot_root, masks, caps, seccomp, exec
    Running: pid, wait() -> ExitStatus(exit_code, signal, oom_killed), kill(), cleanup()

Ownership: the process that forks pid 1 is its parent and reaper. From a kernel that is the
helper, and containers die with it (control socket closed, or parent-death signal). A detached
container (``run -d``) outlives the kernel: the container layer starts a per-container
supervisor (its own session, single-threaded) that calls :func:`spawn.spawn` directly, keeps the
exit status and logs on disk, and is found again through its state file.

The runtime's errors live in :mod:`ipydock.errors` with every other one. The names below are
loaded on first use, so that importing the package does not pull in ctypes, cgroups and the
fork server.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "Cgroup",
    "ContainerProcess",
    "EtcFiles",
    "ExitStatus",
    "ForkServer",
    "Mount",
    "Network",
    "Plan",
    "Resources",
    "Rootfs",
    "Running",
    "Runtime",
    "Spec",
    "Stdio",
    "User",
    "build_plan",
    "default_env",
    "validate",
]

_LAZY = {
    "Cgroup": "cgroups",
    "ContainerProcess": "process",
    "EtcFiles": "spec",
    "ExitStatus": "process",
    "ForkServer": "process",
    "Mount": "spec",
    "Network": "spec",
    "Plan": "plan",
    "Resources": "spec",
    "Rootfs": "spec",
    "Running": "runner",
    "Runtime": "runner",
    "Spec": "spec",
    "Stdio": "spec",
    "User": "spec",
    "build_plan": "plan",
    "default_env": "spec",
    "validate": "spec",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(name)
