"""The bundled engine's low-level runtime: one isolated process on copy-on-write layers.

::

    kernel thread                      fork-server helper (1 per Runtime, single-threaded)
    -------------                      ---------------------------------------------------
    Spec --validate/build_plan--> Plan --(unix socket, SCM_RIGHTS stdio)--> spawn.spawn()
    Runtime.run()  cgroups.create()                                          |  fork
       |                                              container pid 1: namespaces, overlay,
       v                                              pivot_root, masks, caps, exec
    Running: pid, wait() -> ExitStatus(exit_code, signal, oom_killed), kill(), cleanup()

Ownership: the process that forks pid 1 is its parent and reaper. From a kernel that is the
helper, and containers die with it (control socket closed, or parent-death signal). A detached
container (``run -d``) must outlive the kernel, so the container layer will start a per-container
supervisor (its own session, single-threaded) that calls :func:`spawn.spawn` directly, keeps the
exit status and logs on disk, and is found again through its pid file; :class:`Running` and
:class:`ContainerProcess` are the interface it re-creates.

The names below are loaded on first use, so that ``ipydock.engine.runtime.errors`` (which the CLI
needs) does not pull in ctypes, cgroups and the fork server.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "Cgroup",
    "CgroupError",
    "CommandNotExecutable",
    "CommandNotFound",
    "ContainerProcess",
    "EtcFiles",
    "ExitStatus",
    "ForkServer",
    "HelperDied",
    "InvalidSpec",
    "Mount",
    "Network",
    "Plan",
    "ProcessNotPaused",
    "Resources",
    "Rootfs",
    "Running",
    "Runtime",
    "RuntimeFailure",
    "Spec",
    "StartFailed",
    "Stdio",
    "UnknownCapability",
    "User",
    "build_plan",
    "default_env",
    "validate",
]

_LAZY = {
    "Cgroup": "cgroups",
    "CgroupError": "errors",
    "CommandNotExecutable": "errors",
    "CommandNotFound": "errors",
    "ContainerProcess": "process",
    "EtcFiles": "spec",
    "ExitStatus": "process",
    "ForkServer": "process",
    "HelperDied": "errors",
    "InvalidSpec": "errors",
    "Mount": "spec",
    "Network": "spec",
    "Plan": "plan",
    "ProcessNotPaused": "errors",
    "Resources": "spec",
    "Rootfs": "spec",
    "Running": "runner",
    "Runtime": "runner",
    "RuntimeFailure": "errors",
    "Spec": "spec",
    "StartFailed": "errors",
    "Stdio": "spec",
    "UnknownCapability": "errors",
    "User": "spec",
    "build_plan": "plan",
    "default_env": "spec",
    "validate": "spec",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(name)
