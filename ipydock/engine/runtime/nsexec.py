"""Run one more process inside a running container (``exec``): setns, fork, drop, exec.

Started as ``python -m ipydock.engine.runtime.nsexec PID PLAN_JSON`` (a fresh single-threaded
process: a kernel may not setns its threads), with the caller's stdio::

    open the container's cgroup.procs (host paths, before the mount namespace changes)
    setns(pidfd of PID, mnt|uts|ipc|net|pid)     root and cwd become the container's
    fork ---------------------------------------> child: join cgroup, [-t: terminal from the
    waitpid; exit with its code (128+N: signal)          container's /dev/ptmx, master sent
                                                         back], chdir, look up the command,
                                                         drop caps/uid, execve

The plan is the container's own (capabilities, user, no_new_privs) with the exec's command,
env, cwd and user; lookup errors are Docker's texts with exit codes 126/127.
"""

from __future__ import annotations

import json
import os
import sys

from ipydock.engine.runtime import console
from ipydock.engine.runtime.plan import (
    CLONE_NEWIPC,
    CLONE_NEWNET,
    CLONE_NEWNS,
    CLONE_NEWPID,
    CLONE_NEWUSER,
    CLONE_NEWUTS,
    Plan,
)
from ipydock.engine.runtime.spawn import (
    StepError,
    _lookup,
    _set_credentials,
    default_signals,
    setns,
)

__all__ = ["main"]

_NAMESPACES = CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWNET | CLONE_NEWPID


def _child(plan: Plan, cgroup_fds: list[int], console_fd: int) -> None:
    code = 126
    try:
        for fd in cgroup_fds:
            os.write(fd, b"0")
            os.close(fd)
        if console_fd >= 0:  # exec -t: a terminal of the container's devpts (runtime/console)
            try:
                console.setup_in_child(console_fd, plan.console_size, plan.uid, console=False)
            except OSError as exc:
                raise StepError("terminal", exc.errno or 0, f"open a terminal: {exc}") from exc
        try:
            os.chdir(plan.cwd)
        except OSError as exc:
            raise StepError("chdir", exc.errno or 0, f"chdir to cwd ({plan.cwd!r}) set in "
                            f"config.json failed: {exc.strerror}", 126) from exc  # fmt: skip
        path = _lookup(plan.args[0], plan.env)
        _set_credentials(plan)
        default_signals()
        os.execve(path, list(plan.args), dict(e.split("=", 1) for e in plan.env))
    except StepError as exc:
        # docker's exec exits 126 for any command it could not start, a missing one too
        # (127 is for a run's pid 1)
        os.write(2, f"OCI runtime exec failed: {exc.detail}: unknown\n".encode())
    except BaseException as exc:  # noqa: BLE001 - never return into the parent's code
        os.write(2, f"exec failed: {exc}\n".encode())
    finally:
        os._exit(code)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    console_fd = int(argv[2]) if len(argv) > 2 else -1
    return run(int(argv[0]), Plan.from_dict(json.loads(argv[1])), console_fd)


def run(pid: int, plan: Plan, console_fd: int = -1) -> int:
    """Join pid's namespaces, fork, exec ``plan`` there; its exit code. Single-threaded only:
    this process is changed for good (a fresh helper, or a fork made for the purpose).
    ``console_fd``: the child's end of a console socket (``plan.terminal``); the command gets
    a terminal of the container and the master goes back over it."""
    if console_fd >= 0:  # the child sends the master with it, past setns: import it now,
        import socket  # noqa: F401 - while our own files are still in reach

    cgroup_fds = [os.open(p, os.O_WRONLY | os.O_CLOEXEC) for p in plan.cgroup_procs]
    pidfd = os.pidfd_open(pid)
    flags = _NAMESPACES if plan.clone_flags & CLONE_NEWNET else _NAMESPACES & ~CLONE_NEWNET
    setns(pidfd, flags | (CLONE_NEWUSER if plan.rootless else 0))  # the user's first
    os.close(pidfd)
    child = os.fork()
    if child == 0:
        _child(plan, cgroup_fds, console_fd)
    for fd in cgroup_fds:
        os.close(fd)
    if console_fd >= 0:
        os.close(console_fd)
    _, raw = os.waitpid(child, 0)
    return os.WEXITSTATUS(raw) if os.WIFEXITED(raw) else 128 + os.WTERMSIG(raw)


if __name__ == "__main__":
    sys.exit(main())
