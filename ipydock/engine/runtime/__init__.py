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
"""

from ipydock.engine.runtime.cgroups import Cgroup
from ipydock.engine.runtime.errors import (
    CgroupError,
    CommandNotExecutable,
    CommandNotFound,
    HelperDied,
    InvalidSpec,
    ProcessNotPaused,
    RuntimeFailure,
    StartFailed,
    UnknownCapability,
)
from ipydock.engine.runtime.plan import Plan, build_plan
from ipydock.engine.runtime.process import ContainerProcess, ExitStatus, ForkServer
from ipydock.engine.runtime.runner import Running, Runtime
from ipydock.engine.runtime.spec import (
    EtcFiles,
    Mount,
    Network,
    Resources,
    Rootfs,
    Spec,
    Stdio,
    User,
    default_env,
    validate,
)

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
