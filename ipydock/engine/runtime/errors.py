"""Errors of the container runtime (to be moved into ``ipydock/errors.py`` by the lead).

They hang under the tree of :mod:`ipydock.errors`::

    IPyDockError
     +-- InvalidSpec(field, why)            a Spec that cannot be run, found before any fork
     |    +-- UnknownCapability(name)
     +-- RuntimeFailure                      the runtime could not do what was asked
     |    +-- StartFailed(step, errno, detail, exit_code)   the container died during setup
     |    |    +-- CommandNotFound(command, exit_code=127)   Docker's "executable file not found"
     |    |    +-- CommandNotExecutable(command, exit_code=126)
     |    +-- HelperDied(returncode)        the fork-server helper went away
     |    +-- CgroupError(path, why)        a cgroup could not be made, written or removed
     +-- Conflict
          +-- ProcessNotPaused(pid)         start() on a process that is not waiting to start

``StartFailed.exit_code`` is the code Docker's CLI exits with for the same failure (125 setup,
126 not executable, 127 not found), so a ``run`` can report it as the container's exit code.
"""

from __future__ import annotations

from ipydock.errors import Conflict, IPyDockError

__all__ = [
    "CgroupError",
    "CommandNotExecutable",
    "CommandNotFound",
    "HelperDied",
    "InvalidSpec",
    "ProcessNotPaused",
    "RuntimeFailure",
    "StartFailed",
    "UnknownCapability",
]


class InvalidSpec(IPyDockError):
    """A field of a :class:`~ipydock.engine.runtime.spec.Spec` is wrong; nothing was started."""

    def __init__(self, field: str, why: str) -> None:
        self.field = field
        self.why = why
        super().__init__(f"invalid container spec: {field}: {why}")


class UnknownCapability(InvalidSpec):
    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__("capabilities", f"unknown capability {name!r} (e.g. NET_ADMIN, SYS_TIME)")


class RuntimeFailure(IPyDockError):
    """The runtime itself failed (helper process, kernel call, cgroup)."""


class StartFailed(RuntimeFailure):
    """The container process died before its command ran; ``step`` names the setup step."""

    def __init__(self, step: str, errno: int, detail: str, exit_code: int = 125) -> None:
        self.step = step
        self.errno = errno
        self.detail = detail
        self.exit_code = exit_code
        super().__init__(self._text())

    def _text(self) -> str:
        return f"container setup failed at {self.step}: {self.detail}"


class CommandNotFound(StartFailed):
    """The command is not in the image; ``str()`` is Docker's message, ``exit_code`` 127."""

    def __init__(self, command: str, detail: str) -> None:
        self.command = command
        super().__init__("exec", 2, detail, exit_code=127)

    def _text(self) -> str:
        return self.detail


class CommandNotExecutable(StartFailed):
    """The command exists but cannot be executed (permission, format); ``exit_code`` 126."""

    def __init__(self, command: str, errno: int, detail: str) -> None:
        self.command = command
        super().__init__("exec", errno, detail, exit_code=126)

    def _text(self) -> str:
        return self.detail


class HelperDied(RuntimeFailure):
    def __init__(self, returncode: int | None) -> None:
        self.returncode = returncode
        super().__init__(
            f"the container helper process exited (status {returncode}); containers it started "
            "were killed with it (start a new Runtime)"
        )


class CgroupError(RuntimeFailure):
    def __init__(self, path: str, why: str) -> None:
        self.path = path
        self.why = why
        super().__init__(f"cgroup {path}: {why}")


class ProcessNotPaused(Conflict):
    def __init__(self, pid: int) -> None:
        self.pid = pid
        super().__init__(f"process {pid} is not waiting to be started (spawn it with paused=True)")
