"""Run one container process with its cgroup: the layer the container records build on.

::

    Runtime.run(spec) --> cgroups.create(ipydock/<id>, limits, device rules)
                      --> build_plan(spec, cgroup procs files)       (pure, may raise InvalidSpec)
                      --> ForkServer.spawn(plan) --> ContainerProcess (pid, wait, kill)
    Running.wait()    --> ExitStatus(exit_code, signal, oom_killed)
    Running.cleanup() --> kill if alive, reap, remove the cgroup      (idempotent)

The overlay mount and the namespaces need no cleanup: they live in the container's own mount
namespace and vanish with its last process. What a caller must clean up is the cgroup, hence
:meth:`Running.cleanup` (or ``with runtime.run(...) as running:``).
"""

from __future__ import annotations

import os
import secrets
import signal

from ipydock.engine.runtime import cgroups
from ipydock.engine.runtime.plan import build_plan
from ipydock.engine.runtime.process import ContainerProcess, ExitStatus, ForkServer
from ipydock.engine.runtime.spec import Spec, Stdio, cgroup_resources, validate

__all__ = ["Running", "Runtime"]


class Running:
    """A started (or paused) container process and its cgroup."""

    def __init__(self, id: str, process: ContainerProcess, cgroup: cgroups.Cgroup) -> None:
        self.id = id
        self.process = process
        self.cgroup = cgroup
        self._status: ExitStatus | None = None
        self._cleaned = False

    @property
    def pid(self) -> int:
        return self.process.pid

    def start(self) -> None:
        """Exec the command of a container run with ``paused=True``."""
        self.process.start()

    def kill(self, sig: int = signal.SIGKILL) -> None:
        self.process.kill(sig)

    def wait(self, timeout: float | None = None) -> ExitStatus | None:
        """The exit status, with ``oom_killed`` read from the cgroup; ``None`` on timeout."""
        if self._status is None:
            status = self.process.wait(timeout)
            if status is None:
                return None
            oom = self.cgroup.oom_killed()
            self._status = ExitStatus(status.exit_code, status.signal, oom)
        return self._status

    def cleanup(self) -> ExitStatus:
        """Kill if still running, reap, remove the cgroup; safe to call twice."""
        if self._status is None:
            self.kill()
        status = self.wait()
        assert status is not None
        if not self._cleaned:
            self.process.close()
            self.cgroup.remove()
            self._cleaned = True
        return status

    def __enter__(self) -> Running:
        return self

    def __exit__(self, *exc: object) -> None:
        self.cleanup()


class Runtime:
    """Starts containers through one warm fork-server helper; thread-safe."""

    def __init__(self, forkserver: ForkServer | None = None, cgroup_parent: str = "ipydock"):
        self.forkserver = forkserver or _default_forkserver()
        self.cgroup_parent = cgroup_parent

    def run(
        self, spec: Spec, stdio: Stdio | None = None, *, id: str | None = None, paused: bool = False
    ) -> Running:
        """Start ``spec``; raises InvalidSpec before, StartFailed after the cgroup is made."""
        validate(spec)
        id = id or secrets.token_hex(32)
        name = f"{self.cgroup_parent}/{id}"
        # Rootless: the user owns no cgroup (a delegated v2 subtree is not used yet): an empty
        # one, no directories (read as v1: no memory dir, never OOM-killed).
        cgroup = (cgroups.Cgroup(name, "v1", ()) if spec.rootless
                  else cgroups.create(name, cgroup_resources(spec)))  # fmt: skip
        try:
            plan = build_plan(spec, cgroup.procs_files())
            process = self.forkserver.spawn(plan, stdio, paused)
        except BaseException:
            cgroup.remove()
            raise
        return Running(id, process, cgroup)

    def close(self) -> None:
        """Stop the helper; containers still running are killed (their cgroups stay: call
        :meth:`Running.cleanup` first)."""
        self.forkserver.close()

    def __enter__(self) -> Runtime:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _default_forkserver() -> ForkServer:
    """Root: namespaces here; a user: its own user namespace, or PRoot where none can be made."""
    if os.geteuid() == 0:
        return ForkServer()
    from ipydock.engine.runtime.rootless import runtime_mode

    if runtime_mode()[0] == "proot":
        return ForkServer(proot=True)
    return ForkServer(user_namespace=True)
