"""PRoot mode: run a container's command where no namespace can be made (no user namespaces).

Hosted notebooks (Binder, many JupyterHubs, a Docker container under its default seccomp
profile) refuse ``unshare(CLONE_NEWUSER)``. PRoot (Debian's ``proot``) emulates ``chroot``,
bind mounts and a root user with ``ptrace``, so a command of an image still runs, with limits
the docs list: no isolation (the host's processes, network and hostname are visible), no cgroup
limits, only the user's own ids on disk, and the image's root is a copy (the vfs driver)::

    caller (single-threaded)            child
    fork ---------------------------->  stdio; chdir to the root
    read report pipe (EOF: exec'd) <--  execve proot -0 -r ROOT -w CWD -b /dev -b /proc -b /sys
                                              -b SRC:DST (volumes, /etc files) -- CMD ARGS

:func:`spawn` keeps :func:`ipydock.engine.runtime.spawn.spawn`'s contract (a :class:`Child`,
a report line on failure, EOF once exec'd) so the callers only choose which one to call.
"""

from __future__ import annotations

import contextlib
import os
import shutil

from ipydock.engine.runtime import console
from ipydock.engine.runtime.plan import MS_BIND, Plan
from ipydock.engine.runtime.spawn import Child, StepError

__all__ = ["available", "command", "environment", "forget", "spawn"]

#: What PRoot binds from the host: the engine cannot make these without namespaces.
HOST_PATHS = ("/dev", "/proc", "/sys")


def available() -> str:
    """The PRoot to use: ``$IPYDOCK_PROOT`` (a path; empty: none), else ``proot`` on the
    PATH; ``""`` when there is none."""
    chosen = os.environ.get("IPYDOCK_PROOT")
    if chosen is not None:
        return chosen if chosen and os.access(chosen, os.X_OK) else ""
    return shutil.which("proot") or ""


def command(plan: Plan, proot: str) -> list[str]:
    """The ``proot`` argv that runs ``plan``'s command in ``plan.root`` (pure, for tests)."""
    argv = [proot, "-r", plan.root, "-w", plan.cwd]
    argv += ["-0"] if (plan.uid, plan.gid) == (0, 0) else ["-i", f"{plan.uid}:{plan.gid}"]
    for path in HOST_PATHS:
        argv += ["-b", path]
    for step in plan.mounts:
        if step.flags & MS_BIND and step.source and step.source not in HOST_PATHS:
            argv += ["-b", f"{step.source}:{step.target}"]
    return [*argv, *plan.args]


def spawn(plan: Plan, stdio: tuple[int, int, int]) -> Child:
    """Fork and exec PRoot for ``plan``; see :func:`ipydock.engine.runtime.spawn.read_report`.
    ``plan.terminal``: no devpts of its own here, so the terminal is one of the host's (PRoot
    binds the host's /dev), the controlling terminal of PRoot's session; its master is
    ``Child.master``."""
    proot = available()
    report_r, report_w = os.pipe2(os.O_CLOEXEC)
    master = -1
    if plan.terminal:
        master, slave = os.openpty()
        os.set_inheritable(master, False)
        if plan.console_size[0] > 0 and plan.console_size[1] > 0:
            console.set_size(slave, *plan.console_size)
        stdio = (slave, slave, slave)
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child execs or exits
        code = 125
        try:
            _child(plan, proot, stdio)
        except StepError as exc:
            code = exc.exit_code
            os.write(report_w, _line(exc.to_dict()))
        except BaseException as exc:  # noqa: BLE001 - never return into the caller's code
            os.write(report_w, _line({"step": "proot", "errno": 0, "detail": repr(exc),
                                      "exit_code": 125}))  # fmt: skip
        finally:
            os._exit(code)
    os.close(report_w)
    if master >= 0:
        os.close(stdio[0])
    return Child(pid, os.pidfd_open(pid), report_r, master=master)


def _child(plan: Plan, proot: str, stdio: tuple[int, int, int]) -> None:
    # PRoot and its tracees: one group, signalled together (no EXITKILL); with a terminal, a
    # session of their own (its group has the same id)
    if plan.terminal:
        os.setsid()
    else:
        os.setpgid(0, 0)
    high = [os.dup(fd) if fd >= 0 else os.open("/dev/null", os.O_RDWR) for fd in stdio]
    for target, fd in enumerate(high):
        os.dup2(fd, target)
        os.close(fd)
    if plan.terminal:
        import fcntl
        import termios

        fcntl.ioctl(0, termios.TIOCSCTTY, 0)
        from ipydock.engine.runtime.spawn import default_signals

        default_signals()
    if not proot:
        raise StepError("proot", 2, "proot is not installed (Debian package proot)", 125)
    os.chdir(plan.root)
    _lookup_inside(plan)
    os.execve(proot, command(plan, proot), environment(plan))


def environment(plan: Plan) -> dict[str, str]:
    """The command's environment for PRoot."""
    return dict(item.split("=", 1) for item in plan.env)


def forget(pid: int) -> None:
    """Remove what the PRoot process ``pid`` left in the temp dir: it unpacks its loader there
    (``prooted-PID-XXXXXX``) and deletes it at its exit, which a killed PRoot (stop, kill) never
    reaches. Only this user's files are touched."""
    import glob
    import tempfile

    for path in glob.glob(os.path.join(tempfile.gettempdir(), f"prooted-{pid}-*")):
        with contextlib.suppress(OSError):
            if os.lstat(path).st_uid == os.getuid():
                os.unlink(path)


def _lookup_inside(plan: Plan) -> None:
    """Docker's "executable file not found" (127) before PRoot starts, looked up in the root."""
    import errno
    import stat

    name = plan.args[0]
    if "/" in name:
        if not os.path.lexists(os.path.join(plan.root, name.lstrip("/"))):
            detail = f'exec: "{name}": stat {name}: no such file or directory'
            raise StepError("exec", errno.ENOENT, detail, 127)
        return
    path_var = next((e[5:] for e in reversed(plan.env) if e.startswith("PATH=")), "")
    for directory in path_var.split(":"):
        candidate = os.path.join(plan.root, (directory or "/").lstrip("/"), name)
        try:
            st = os.lstat(candidate)
        except OSError:
            continue
        # a symlink (busybox's applets) would resolve against the host here: PRoot follows it
        if stat.S_ISLNK(st.st_mode) or (stat.S_ISREG(st.st_mode) and st.st_mode & 0o111):
            return
    detail = f'exec: "{name}": executable file not found in $PATH'
    raise StepError("exec", errno.ENOENT, detail, 127)


def _line(message: dict[str, object]) -> bytes:
    import json

    return json.dumps(message).encode() + b"\n"
