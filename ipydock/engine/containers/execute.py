"""``exec``: one more process in a running container, through the runtime's nsexec helper.

::

    record + state (pid 1, cgroup) --specconv--> the container's Spec, with the exec's
    command/env/cwd/user --build_plan--> Plan --argv--> python -m ipydock.engine.runtime.nsexec
                                                         (setns + fork + exec, our stdio)

A kernel cannot setns (it has threads), hence a fresh helper process per exec (~30 ms); a
single-threaded caller (the CLI) forks itself for it instead, which also needs no Python
executable it may run (a rootless user may not be allowed to run the installation's).
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable
from typing import IO, TYPE_CHECKING, Any

from ipydock.engine.containers import specconv
from ipydock.engine.containers.lifecycle import records_of, refresh
from ipydock.engine.containers.records import Record
from ipydock.engine.containers.state import Status
from ipydock.engine.containers.supervisor import PROOT_MARKER, rootfs_dirs
from ipydock.engine.containers.terminal import Terminal, TerminalSession, keep_draining
from ipydock.engine.runtime import console
from ipydock.engine.runtime.detach import python_env
from ipydock.engine.runtime.plan import Plan, build_plan
from ipydock.engine.runtime.spec import default_env
from ipydock.errors import ContainerNotRunning, NotSupported

if TYPE_CHECKING:
    from ipydock.engine.store import Store

__all__ = ["exec_in", "exec_terminal"]


def exec_in(
    store: Store, ref: str, command: list[str], *, env: tuple[str, ...] = (),
    workdir: str | None = None, user: str | None = None,
    stdin: IO[Any] | int | None = None, stdout: IO[Any] | int | None = None,
    stderr: IO[Any] | int | None = None,
) -> int:  # fmt: skip
    """Run ``command`` in the running container ``ref``; its exit code (126 if it could not
    start, a missing command too, as docker's exec)."""
    rec, pid, plan = _exec_plan(store, ref, command, env, workdir, user)
    if os.path.exists(rec.path(PROOT_MARKER)):  # another PRoot process on the container's root
        from ipydock.engine.runtime import proot

        with subprocess.Popen(proot.command(plan, proot.available()), stdin=stdin,
                              stdout=stdout, stderr=stderr, cwd=plan.root,
                              env=proot.environment(plan)) as running:  # fmt: skip
            try:
                return running.wait()
            finally:
                proot.forget(running.pid)
    if threading.active_count() == 1:
        return _exec_forked(pid, plan, (stdin, stdout, stderr))
    env_vars = python_env()
    argv = [sys.executable, "-m", "ipydock.engine.runtime.nsexec", str(pid),
            json.dumps(plan.to_dict())]  # fmt: skip
    proc = subprocess.run(argv, stdin=stdin, stdout=stdout, stderr=stderr, env=env_vars,
                          check=False)  # fmt: skip
    return proc.returncode


def exec_terminal(
    store: Store, ref: str, command: list[str], *, env: tuple[str, ...] = (),
    workdir: str | None = None, user: str | None = None, console_size: tuple[int, int] = (0, 0),
) -> TerminalSession:  # fmt: skip
    """``exec -t``: ``command`` in the running container ``ref`` with a terminal of the
    container's own (``TERM=xterm``, ``console_size`` rows and columns); this process holds
    the master. Errors before the command runs (126/127) are written to our stderr and are
    the session's exit code."""
    rec, pid, plan = _exec_plan(store, ref, command, env, workdir, user, tty=True)
    if os.path.exists(rec.path(PROOT_MARKER)):
        raise NotSupported("exec -t", "bundled engine in PRoot mode",
                           "run the command without -t")  # fmt: skip
    plan = dataclasses.replace(plan, terminal=True, console_size=console_size)
    mine, theirs = console.socketpair()
    try:
        if threading.active_count() == 1:
            wait = _start_forked(pid, plan, theirs.fileno())
        else:
            argv = [sys.executable, "-m", "ipydock.engine.runtime.nsexec", str(pid),
                    json.dumps(plan.to_dict()), str(theirs.fileno())]  # fmt: skip
            proc = subprocess.Popen(argv, env=python_env(), pass_fds=[theirs.fileno()])
            wait = proc.wait
    finally:
        theirs.close()
    with mine:
        try:
            master = console.recv_master(mine)
        except OSError:  # it failed before its terminal existed: the error is on stderr
            code = wait()
            return TerminalSession(rec.id, _Ended(), lambda: code)
    return TerminalSession(rec.id, Terminal(master), wait, lambda: keep_draining(master))


class _Ended(Terminal):
    """The terminal of an exec that never got one: at its end already."""

    def __init__(self) -> None:
        super().__init__(os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC))

    def read(self) -> bytes:
        return b""


def _exec_plan(
    store: Store, ref: str, command: list[str], env: tuple[str, ...], workdir: str | None,
    user: str | None, tty: bool = False,
) -> tuple[Record, int, Plan]:  # fmt: skip
    """The running container's record, its pid 1, and the plan of the exec's process."""
    records = records_of(store)
    rec = records.find(ref)
    state = refresh(records, rec)
    if state.status != Status.RUNNING or not state.pid:
        raise ContainerNotRunning(rec.id)
    config = json.loads(json.dumps(rec.config))
    cfg = config["Config"]
    if user is not None:
        cfg["User"] = user
    if workdir:
        cfg["WorkingDir"] = workdir
    cfg["Tty"] = False  # the container's terminal is not the exec's
    config["Path"], config["Args"] = command[0], command[1:]
    config["HostConfig"]["Init"] = None  # the init is pid 1's; an exec runs the command itself
    lower = rec.config["GraphDriver"]["Data"]["LowerDirs"]
    spec = specconv.build_spec(config, lower, rootfs_dirs(rec), rootless=os.geteuid() != 0)
    merged_env = list(spec.env) + list(env)
    spec = dataclasses.replace(
        spec, env=specconv.terminal_env(default_env(tuple(merged_env), cfg["Hostname"]), tty)
    )
    procs = tuple(os.path.join(d, "cgroup.procs") for d in state.cgroup)
    return rec, state.pid, build_plan(spec, procs)


def _start_forked(pid: int, plan: Plan, console_fd: int) -> Callable[[], int]:
    """Fork the nsexec helper (single-threaded callers); the returned call waits for it."""
    from ipydock.engine.runtime import nsexec

    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    child = os.fork()
    if child == 0:
        code = 126
        try:
            code = nsexec.run(pid, plan, console_fd)
        except BaseException:  # noqa: BLE001 - never return into the caller's code
            import traceback

            traceback.print_exc()
        finally:
            os._exit(code)

    def wait() -> int:
        _, raw = os.waitpid(child, 0)
        return os.waitstatus_to_exitcode(raw) if os.WIFEXITED(raw) else 128 + os.WTERMSIG(raw)

    return wait


def _fileno(stream: IO[Any] | int | None) -> int | None:
    """The fd a stdio argument names (as ``subprocess`` takes them); None: inherit ours."""
    if stream is None:
        return None
    if stream == subprocess.DEVNULL:
        return os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
    return stream if isinstance(stream, int) else stream.fileno()


def _exec_forked(pid: int, plan: Any, stdio: tuple[Any, Any, Any]) -> int:
    from ipydock.engine.runtime import nsexec

    fds = [_fileno(s) for s in stdio]
    for stream in (sys.stdout, sys.stderr):  # nothing buffered may be written twice
        stream.flush()
    child = os.fork()
    if child == 0:
        code = 126
        try:
            for target, fd in enumerate(fds):
                if fd is not None and fd != target:
                    os.dup2(fd, target)
            code = nsexec.run(pid, plan)
        except BaseException:  # noqa: BLE001 - never return into the caller's code
            import traceback

            traceback.print_exc()
        finally:
            os._exit(code)
    for fd, given in zip(fds, stdio, strict=True):
        if given == subprocess.DEVNULL and fd is not None:
            os.close(fd)
    _, raw = os.waitpid(child, 0)
    return os.waitstatus_to_exitcode(raw) if os.WIFEXITED(raw) else 128 + os.WTERMSIG(raw)
