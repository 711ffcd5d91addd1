"""Fork one container process and build its world: the raw syscalls of a start (not bpf).

Call :func:`spawn` from a **single-threaded** process (the fork-server helper, a
container's supervisor, a single-threaded CLI); never from a Jupyter kernel, whose threads may
hold locks the child would inherit. The forking process becomes the parent of the container's
pid 1 and must reap it.

::

    helper                         child (becomes pid 1 of a new pid namespace)
    ------                         -----------------------------------------------------------
    unshare(NEWPID)
    fork() ----------------------> unshare(NS|UTS|IPC|NET) / setns(netns)
    setns(own pidns)               make / rprivate; mount root (overlay or bind)
    pidfd_open(pid)                mount /proc /dev /dev/pts /sys(ro) /dev/mqueue /dev/shm, user
    read report pipe <-----+       mounts, /etc files; mknod devices; symlinks; sethostname
                           |       pivot_root(".", "."), detach old root
    console socket <-------+------ [terminal: /dev/ptmx of its devpts, master sent back,
                           |        setsid, TIOCSCTTY, slave on 0, 1, 2 (console.py)]
                           |       mask paths, read-only paths, read-only root
                           |       chdir(cwd); look the command up in the image's PATH
                           |       join cgroups; rlimits; drop bounding caps; setgroups/
                           |       setgid/setuid; capset; ambient; no_new_privs; seccomp
                           |       filter (before the caps go when no_new_privs is off);
                           |       pdeathsig; default signals
                           +------ [paused: write "ready", block on the go pipe]
      EOF = exec worked    <------ execve (report pipe is close-on-exec) or error line + _exit

Pid 1 is the user's command itself, as in ``docker run`` without ``--init``: it receives only
signals it handles (SIGKILL always), and orphans it does not reap stay zombies until it exits;
when it exits the kernel kills and reaps the rest of the namespace, so the parent only ever
reaps pid 1. The unshare/fork/setns dance gives the fork itself the new pid namespace, so one
fork of a warm helper is all a start costs.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno as errno_mod
import json
import os
import resource
import signal
import stat
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ipydock.engine.runtime import console, pid1, seccomp
from ipydock.engine.runtime.paths import ensure_target, secure_join
from ipydock.engine.runtime.plan import (
    CLONE_NEWNET,
    CLONE_NEWPID,
    CLONE_NEWUSER,
    FUSE_OVERLAYFS,
    MS_BIND,
    MS_NODEV,
    MS_NOEXEC,
    MS_NOSUID,
    MS_PRIVATE,
    MS_RDONLY,
    MS_REC,
    MS_REMOUNT,
    MountStep,
    Plan,
)

if TYPE_CHECKING:
    import socket

    from ipydock.engine.runtime.idranges import Ranges

__all__ = [
    "Child",
    "Prepared",
    "StepError",
    "default_signals",
    "enter_user_namespace",
    "mount",
    "read_report",
    "setns",
    "spawn",
    "umount2",
    "unshare",
]

_libc = ctypes.CDLL(None, use_errno=True)
_SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41}[os.uname().machine]
_SYS_CLOSE_RANGE = 436
#: clone(2) by architecture, for a fork whose child is our parent's (``CLONE_PARENT``).
_SYS_CLONE = {"x86_64": 56, "aarch64": 220}.get(os.uname().machine)
_CLONE_PARENT = 0x00008000
_CLOSE_RANGE_CLOEXEC = 4
MNT_DETACH = 2
PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_SET_KEEPCAPS = 8
PR_CAPBSET_DROP = 24
PR_SET_NO_NEW_PRIVS = 38
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_RAISE = 2
_CAP_VERSION_3 = 0x20080522
_SIGKILL = 9
_PRESERVED = MS_NOSUID | MS_NODEV | MS_NOEXEC
#: (pid, fd) of this process's own pid namespace, opened once per process: a fork (a spare
#: supervisor) inherits the number but may close the fd, so the pid says whose it is.
_own_pidns: tuple[int, int] | None = None


class StepError(Exception):
    """A setup step failed in the child; becomes a report line and the child's exit code."""

    def __init__(self, step: str, errno: int, detail: str, exit_code: int = 125) -> None:
        super().__init__(detail)
        self.step, self.errno, self.detail, self.exit_code = step, errno, detail, exit_code

    def to_dict(self) -> dict[str, object]:
        return {"step": self.step, "errno": self.errno, "detail": self.detail,
                "exit_code": self.exit_code}  # fmt: skip


@dataclass
class Child:
    """A forked container process, seen from its parent; the parent closes the fds."""

    pid: int
    pidfd: int
    report_fd: int
    go_fd: int = -1
    #: ``plan.terminal``: the parent's end of the console socket; the master arrives on it
    #: before exec (:func:`ipydock.engine.runtime.console.recv_master`).
    console: socket.socket | None = None
    #: PRoot mode (``runtime/proot.py``): the master of the host terminal it was given.
    master: int = -1


# --- thin syscall wrappers -------------------------------------------------------------------


def _check(ret: int, what: str) -> int:
    if ret < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")
    return ret


def _b(text: str | None) -> bytes | None:
    return None if text is None else text.encode()


def unshare(flags: int) -> None:
    _check(_libc.unshare(ctypes.c_int(flags)), "unshare")


def setns(fd: int, nstype: int) -> None:
    _check(_libc.setns(fd, nstype), "setns")


def mount(source: str | None, target: str, fstype: str | None, flags: int, data: str = "") -> None:
    ret = _libc.mount(_b(source), _b(target), _b(fstype), ctypes.c_ulong(flags), _b(data or None))
    _check(ret, f"mount {target}")


def umount2(target: str, flags: int = 0) -> None:
    _check(_libc.umount2(_b(target), flags), f"umount {target}")


def pivot_root(new_root: str, put_old: str) -> None:
    _check(_libc.syscall(_SYS_PIVOT_ROOT, _b(new_root), _b(put_old)), "pivot_root")


def prctl(option: int, arg2: int = 0, arg3: int = 0) -> None:
    args = (ctypes.c_ulong(arg2), ctypes.c_ulong(arg3), ctypes.c_ulong(0), ctypes.c_ulong(0))
    _check(_libc.prctl(option, *args), f"prctl {option}")


def sethostname(name: str) -> None:
    raw = name.encode()
    _check(_libc.sethostname(raw, len(raw)), "sethostname")


def capset(effective: int, permitted: int, inheritable: int) -> None:
    header = (ctypes.c_uint32 * 2)(_CAP_VERSION_3, 0)
    data = (ctypes.c_uint32 * 6)(
        effective & 0xFFFFFFFF, permitted & 0xFFFFFFFF, inheritable & 0xFFFFFFFF,
        effective >> 32, permitted >> 32, inheritable >> 32,
    )  # fmt: skip
    _check(_libc.capset(header, data), "capset")


def capget() -> tuple[int, int, int]:
    """(effective, permitted, inheritable) of the calling thread."""
    header = (ctypes.c_uint32 * 2)(_CAP_VERSION_3, 0)
    data = (ctypes.c_uint32 * 6)()
    _check(_libc.capget(header, data), "capget")
    return tuple(data[i] | (data[i + 3] << 32) for i in range(3))  # type: ignore[return-value]


def _last_cap() -> int:
    with open("/proc/sys/kernel/cap_last_cap") as f:
        return int(f.read())


_LAST_CAP = _last_cap()


def loopback_up() -> None:
    """``lo`` up in this thread's network namespace (a new one has it down), as docker: then
    127.0.0.1 answers inside ``--network none`` too. SIOCGIFFLAGS/SIOCSIFFLAGS on ``struct
    ifreq`` (16-byte name, short flags): no netlink library in the forked child."""
    import fcntl
    import socket
    import struct

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        req = struct.pack("16sh", b"lo", 0)
        flags = struct.unpack_from("16sh", fcntl.ioctl(sock, 0x8913, req + bytes(22)))[1]
        fcntl.ioctl(sock, 0x8914, struct.pack("16sh", b"lo", flags | 1) + bytes(22))  # IFF_UP


def enter_user_namespace() -> None:
    """Rootless: move this (single-threaded) process into a new user namespace where uid and
    gid 0 are the caller's own ids and, when the user has subordinate ranges, 1..65536 its
    range (written by newuidmap/newgidmap, see :mod:`ipydock.engine.runtime.idranges`); else 0
    alone, the one mapping an unprivileged process may write itself. It then holds every
    capability over the namespaces it creates next, so :func:`spawn` works as for root; files
    it makes on the host still belong to the caller. Call once, before the first spawn (a
    supervisor or the fork-server helper; never a kernel)."""
    from ipydock.engine.runtime import idranges

    uid, gid = os.geteuid(), os.getegid()
    # A process that changed its ids (su, setpriv) is not dumpable: its /proc files belong to
    # root and it could not write its own maps. It is the user's own process: make it so.
    prctl(PR_SET_DUMPABLE, 1)
    ranges = idranges.find(uid, gid)
    if ranges.usable:
        _unshare_with_ranges(ranges)
        return
    unshare(CLONE_NEWUSER)
    for name, text in (("uid_map", f"0 {uid} 1\n"), ("setgroups", "deny"),
                       ("gid_map", f"0 {gid} 1\n")):  # fmt: skip
        with open(f"/proc/self/{name}", "w") as f:
            f.write(text)


def _unshare_with_ranges(ranges: Ranges) -> None:
    """unshare(CLONE_NEWUSER), and have a child still outside write the maps with the setuid
    helpers (a process inside cannot: its setuid exec gains nothing there)."""
    from ipydock.engine.runtime import idranges

    me = os.getpid()
    go_r, go_w = os.pipe()
    err_r, err_w = os.pipe()
    helper = os.fork()
    if helper == 0:
        code = 1
        try:
            os.close(go_w)
            os.close(err_r)
            if os.read(go_r, 1) == b"u":
                idranges.write_maps(me, ranges)
                code = 0
        except BaseException as exc:  # noqa: BLE001 - reported through the pipe
            os.write(err_w, str(exc).encode())
        finally:
            os._exit(code)
    os.close(go_r)
    os.close(err_w)
    try:
        unshare(CLONE_NEWUSER)
        os.write(go_w, b"u")
    finally:
        os.close(go_w)
        with os.fdopen(err_r, "rb") as f:
            why = f.read().decode(errors="replace")
        _, raw = os.waitpid(helper, 0)
    if raw != 0:
        raise OSError(errno_mod.EPERM, why or "newuidmap/newgidmap failed")


# --- parent side -----------------------------------------------------------------------------


def spawn(
    plan: Plan, stdio: tuple[int, int, int], paused: bool = False, *, sibling: bool = False
) -> Child:
    """Fork pid 1 of a new container; returns at once (before exec), see :func:`read_report`.

    ``stdio`` are the fds for the container's 0, 1, 2; the caller keeps and closes its copies.
    With ``paused`` the child stops just before exec and writes ``ready`` until ``go_fd`` gets a
    byte; that is the moment to wire its network namespace (``/proc/PID/ns/net``).
    ``sibling`` (see :data:`CAN_SPAWN_SIBLING`): pid 1 becomes the child of *our* parent
    (``CLONE_PARENT``), which reaps it and whose death kills it; we only set it up. The
    child then runs without Python's after-fork bookkeeping (see ``detach.raw_fork``).
    """
    if threading.active_count() != 1:
        raise RuntimeError("spawn() forks: call it from a single-threaded helper process")
    report_r, report_w = os.pipe2(os.O_CLOEXEC)
    go_r, go_w = os.pipe2(os.O_CLOEXEC) if paused else (-1, -1)
    mine, theirs = console.socketpair() if plan.terminal else (None, None)
    native = pid1.path() if pid1.fits(plan) else None
    carrier = _carrier() if native is not None else None
    if plan.new_pid:
        unshare(CLONE_NEWPID)
    try:
        pid = _clone_sibling() if sibling else os.fork()
        if pid == 0:
            if native is not None and carrier is not None:
                _exec_native(native, carrier[1])  # returns if it could not: Python does it
            _child_main(plan, stdio, report_w, go_r, theirs.fileno() if theirs else -1)
    finally:
        # Give the pid namespace back for the next fork. An unprivileged spawner (rootless)
        # may join only one its user namespace owns: the rootless fork server's (it runs in
        # a pid namespace of its own); a supervisor's runner cannot: it is single-use.
        if plan.new_pid:
            try:
                setns(_own_pidns_fd(), CLONE_NEWPID)
            except OSError:
                if not plan.rootless:
                    raise
    if carrier is not None:
        _send_plan(carrier, plan, [report_w, *stdio, go_r, theirs.fileno() if theirs else -1])
    os.close(report_w)
    if go_r >= 0:
        os.close(go_r)
    if theirs is not None:
        theirs.close()
    return Child(pid, os.pidfd_open(pid), report_r, go_w, mine)


def _carrier() -> tuple[socket.socket, socket.socket]:
    """A socket pair that carries the plan and its fds to ``ipydock-pid1`` (the second end is
    the child's)."""
    import socket

    return socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)


def _exec_native(native: str, carrier: socket.socket) -> None:
    """In the forked child: become ``ipydock-pid1``, which reads the plan from ``carrier``
    (no network namespace made ahead: ``-1``); returns only if the exec failed."""
    with contextlib.suppress(OSError):
        os.set_inheritable(carrier.fileno(), True)
        os.execv(native, [native, str(carrier.fileno()), "-1"])


def _send_plan(carrier: tuple[socket.socket, socket.socket], plan: Plan, fds: list[int]) -> None:
    """Send ``plan`` and its fds (report pipe, stdin, stdout, stderr, go pipe, console
    socket; -1 for none) to the child; a child that went on in Python ignores them."""
    import socket

    mine, theirs = carrier
    theirs.close()
    passed, slots = _slots(fds)
    with mine, contextlib.suppress(OSError):  # a child that failed reports on its pipe
        socket.send_fds(mine, [pid1.encode(plan, slots)], passed)


def _slots(fds: list[int]) -> tuple[list[int], list[int]]:
    """The fds to send (those >= 0) and, for each of ``fds``, its index among them or -1."""
    passed = [fd for fd in fds if fd >= 0]
    return passed, [passed.index(fd) if fd >= 0 else -1 for fd in fds]


class Prepared:
    """A pid 1 forked ahead of need: already in a new pid namespace and in its cgroup, with a
    network namespace of its own whose ``lo`` is up, it waits for a plan (:meth:`start`).
    Joining a cgroup costs the writer a full RCU grace period when none ran lately (4-11 ms
    here, one per start when starts are tens of ms apart), a Python fork costs a few more, and
    a new network namespace with ``lo`` up 1-3 ms: a spare supervisor pays them all before it
    has a container.

    ::

        prepare(procs files)   unshare(NEWPID); fork -----> candidate: parent-death signal,
                               setns(own pidns)             close every other fd, join the
                                                            cgroup, unshare(NEWNET), lo up;
                                                            wait on its socket
        start(plan, stdio) ---- plan + fds ---------------> _child_main: as a spawn() child,
                                                            in that network namespace if the
                                                            plan wants a new one, else back
                                                            in the one it came from

    Where ``ipydock-pid1`` is built (:mod:`~ipydock.engine.runtime.pid1`), the candidate execs
    it before it waits, and it does _child_main's steps for the plans it :meth:`fits`: the
    start then runs no Python in pid 1 (no page copies of a fresh fork, no teardown of a
    Python image at the command's exec). :meth:`discard` (or our exit: parent-death signal)
    ends an unused one.
    """

    def __init__(self, cgroup_procs: tuple[str, ...]) -> None:
        import socket

        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        #: ``ipydock-pid1``, which the candidate execs while it waits (see :mod:`pid1`)
        self.native = pid1.path()
        # not _own_pidns_fd(): a spare closes every fd but ours when its container comes
        own = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
        # opened here: the cgroup may be renamed (adopted) before the candidate joins
        procs = [os.open(p, os.O_WRONLY | os.O_CLOEXEC) for p in cgroup_procs]
        unshare(CLONE_NEWPID)
        try:
            pid = os.fork()
            if pid == 0:
                mine.close()
                _candidate_main(theirs.fileno(), procs, self.native)
        finally:
            setns(own, CLONE_NEWPID)
            for fd in (own, *procs):
                os.close(fd)
        theirs.close()
        self.pid, self.pidfd, self._sock = pid, os.pidfd_open(pid), mine

    def start(self, plan: Plan, stdio: tuple[int, int, int], paused: bool = False) -> Child:
        """Hand the candidate ``plan`` (without ``cgroup_procs``: it has joined) and its stdio;
        then as :func:`spawn`. Raises OSError if the candidate is gone (the caller spawns)."""
        import pickle
        import socket

        report_r, report_w = os.pipe2(os.O_CLOEXEC)
        go_r, go_w = os.pipe2(os.O_CLOEXEC) if paused else (-1, -1)
        mine, theirs = console.socketpair() if plan.terminal else (None, None)
        fds = [report_w, *stdio, go_r, theirs.fileno() if theirs is not None else -1]
        passed, slots = _slots(fds)
        if self.native is not None:  # ipydock-pid1: its own encoding
            message = pid1.encode(plan, slots)
        else:  # pickled: parent to child of one program (JSON + asdict cost 10x more here)
            message = pickle.dumps((plan, slots))
        try:
            socket.send_fds(self._sock, [message], passed)
        except OSError:
            for fd in (report_r, go_w):
                if fd >= 0:
                    os.close(fd)
            if mine is not None:
                mine.close()
            raise
        finally:
            os.close(report_w)
            if go_r >= 0:
                os.close(go_r)
            if theirs is not None:
                theirs.close()
            self._sock.close()
        return Child(self.pid, self.pidfd, report_r, go_w, mine)

    def fits(self, plan: Plan) -> bool:
        """Whether this candidate can start ``plan`` (:meth:`start`); else :meth:`discard` it
        and :func:`spawn`."""
        return plan.new_pid and (self.native is None or pid1.fits(plan))

    def fds(self) -> tuple[int, int]:
        """The fds this object holds (a process that closes the rest keeps these)."""
        return self._sock.fileno(), self.pidfd

    def discard(self) -> None:
        """Kill and reap an unused candidate."""
        self._sock.close()
        with contextlib.suppress(ProcessLookupError):
            signal.pidfd_send_signal(self.pidfd, _SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(self.pid, 0)
        os.close(self.pidfd)


def _candidate_main(sock_fd: int, procs: list[int], native: str | None) -> None:
    """Body of a :class:`Prepared` candidate; never returns. With ``native``, it execs
    ``ipydock-pid1`` to wait (the socket and the network namespace it came from kept)."""
    import pickle
    import socket

    try:
        prctl(PR_SET_PDEATHSIG, _SIGKILL)
        os.dup2(sock_fd, 3)
        for i, fd in enumerate(procs):
            os.dup2(fd, 4 + i)
        _libc.syscall(_SYS_CLOSE_RANGE, 4 + len(procs), ctypes.c_uint(0xFFFFFFFF), 0)
        for i in range(len(procs)):  # opened by the parent (see Prepared), moved to 4...
            os.write(4 + i, b"0")
            os.close(4 + i)
        _make_network_ahead()
        if native is not None:
            if _came_from_netns >= 0:
                os.set_inheritable(_came_from_netns, True)
            # it holds nothing of its starter's while it waits: not the working directory,
            # not stdio (the plan brings the container's)
            os.chdir("/")
            null = os.open(os.devnull, os.O_RDWR)
            for target in (0, 1, 2):
                os.dup2(null, target)
            os.close(null)
            os.execv(native, [native, "3", str(_came_from_netns)])
        sock = socket.socket(fileno=3)
        data, fds, _flags, _addr = socket.recv_fds(sock, 1 << 20, 8, socket.MSG_CMSG_CLOEXEC)
        sock.close()
        if data:
            plan, indexes = pickle.loads(data)
            slots = [fds[i] if i >= 0 else -1 for i in indexes]
            _child_main(plan, (slots[1], slots[2], slots[3]), slots[0], slots[4], slots[5])
    except BaseException:  # noqa: BLE001 - the starter sees a closed socket and spawns anew
        os._exit(125)
    os._exit(0)


#: A candidate's own network namespace, made while it waited: the fd of the one it came from
#: (to go back to when the plan wants no new one), or -1.
_came_from_netns = -1


def _make_network_ahead() -> None:
    """A new network namespace with ``lo`` up, for the plan to come (see :class:`Prepared`);
    nothing if the kernel refuses (the plan's own unshare then does it)."""
    global _came_from_netns
    came_from = os.open("/proc/self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        unshare(CLONE_NEWNET)
    except OSError:
        os.close(came_from)
        return
    _came_from_netns = came_from
    try:
        loopback_up()
    except OSError:
        _leave_network_made_ahead()


def _leave_network_made_ahead() -> None:
    setns(_came_from_netns, CLONE_NEWNET)
    _forget_where_network_came_from()


def _forget_where_network_came_from() -> None:
    global _came_from_netns
    os.close(_came_from_netns)
    _came_from_netns = -1


#: :func:`spawn` may make pid 1 its caller's parent's child (an architecture it knows).
CAN_SPAWN_SIBLING = _SYS_CLONE is not None


def _clone_sibling() -> int:
    if _SYS_CLONE is None:
        raise OSError(errno_mod.ENOSYS, "clone(CLONE_PARENT) on this architecture")
    flags = ctypes.c_ulong(_CLONE_PARENT | signal.SIGCHLD)
    pid = int(_libc.syscall(_SYS_CLONE, flags, 0, 0, 0, 0))
    if pid < 0:
        raise OSError(ctypes.get_errno(), "clone failed")
    return pid


def read_report(fd: int) -> dict[str, object] | None:
    """Read one report line: ``{"ready": True}``, a StepError dict, or ``None`` (EOF: exec'd)."""
    buf = b""
    while not buf.endswith(b"\n"):
        chunk = os.read(fd, 4096)
        if not chunk:
            return None
        buf += chunk
    return json.loads(buf)


def _own_pidns_fd() -> int:
    global _own_pidns
    pid = os.getpid()
    if _own_pidns is None or _own_pidns[0] != pid:
        _own_pidns = (pid, os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC))
    return _own_pidns[1]


# --- child side: runs once, then execs or _exits ---------------------------------------------


def _child_main(
    plan: Plan, stdio: tuple[int, int, int], report_fd: int, go_fd: int, console_fd: int
) -> None:
    code = 125
    try:
        _setup_stdio(stdio)
        path, cgroup_fds = _build(plan, console_fd)
        _finish(plan, path, cgroup_fds, report_fd, go_fd)
    except StepError as exc:
        code = exc.exit_code
        _report(report_fd, exc.to_dict())
    except BaseException as exc:  # noqa: BLE001 - the child must never return to the helper
        _report(report_fd, {"step": "setup", "errno": 0, "detail": repr(exc), "exit_code": 125})
    finally:
        os._exit(code)


@contextlib.contextmanager
def _step(name: str) -> Iterator[None]:
    try:
        yield
    except OSError as exc:
        raise StepError(name, exc.errno or 0, f"{name}: {exc.strerror or exc}") from exc


def _report(fd: int, message: dict[str, object]) -> None:
    with contextlib.suppress(OSError):
        os.write(fd, json.dumps(message).encode() + b"\n")


def _setup_stdio(stdio: tuple[int, int, int]) -> None:
    """dup the three fds to 0, 1, 2 (via high copies, in case they overlap)."""
    with _step("stdio"):
        high = [os.dup(fd) if fd >= 0 else os.open("/dev/null", os.O_RDWR) for fd in stdio]
        for target, fd in enumerate(high):
            os.dup2(fd, target)
            os.close(fd)


def _build(plan: Plan, console_fd: int = -1) -> tuple[str, list[int]]:
    """Namespaces, mounts, pivot_root, masks; returns the command's path and cgroup fds."""
    if plan.die_with_parent:
        prctl(PR_SET_PDEATHSIG, _SIGKILL)
    flags = plan.clone_flags
    with _step("namespaces"):
        if _came_from_netns >= 0:  # a Prepared candidate's network namespace, lo up
            if flags & CLONE_NEWNET and not flags & CLONE_NEWUSER and not plan.netns_path:
                flags &= ~CLONE_NEWNET  # it is the new one the plan wants
                _forget_where_network_came_from()
            else:  # host, joined or one owned by the new user namespace: not this one
                _leave_network_made_ahead()
        if plan.netns_path:
            fd = os.open(plan.netns_path, os.O_RDONLY | os.O_CLOEXEC)
            setns(fd, CLONE_NEWNET)
            os.close(fd)
        unshare(flags)
    if flags & CLONE_NEWNET:
        with _step("loopback"):
            loopback_up()
    with _step("cgroup"):
        cgroup_fds = [os.open(p, os.O_WRONLY | os.O_CLOEXEC) for p in plan.cgroup_procs]
    with _step("rootfs"):
        mount(None, "/", None, MS_REC | MS_PRIVATE)
        if plan.root_mount.fstype == FUSE_OVERLAYFS:
            _mount_fuse_overlay(plan.root_mount)
        else:
            _mount_step(plan.root, plan.root_mount, plan.root_mount.target)
    for step in plan.mounts:
        with _step(f"mount {step.target}"):
            _mount_in_root(plan.root, step)
    with _step("devices"):
        _make_devices(plan)
    if plan.hostname:
        with _step("hostname"):
            sethostname(plan.hostname)
    with _step("cwd"):
        ensure_target(plan.root, plan.cwd, "dir")
    with _step("pivot_root"):
        os.chdir(plan.root)
        pivot_root(".", ".")
        umount2(".", MNT_DETACH)
        os.chdir("/")
    if console_fd >= 0:
        with _step("terminal"):
            console.setup_in_child(console_fd, plan.console_size, plan.uid, console=True)
    _harden_paths(plan)
    with _step("chdir"):
        os.chdir(plan.cwd)
    return _lookup(plan.args[0], plan.env), cgroup_fds


def _mount_fuse_overlay(step: MountStep) -> None:
    """Run ``fuse-overlayfs`` on the root: it mounts, then stays as the mount's daemon, a
    process of the container's pid namespace (``ps`` inside shows it), so it ends with the
    container and the mount with its namespace; nothing is left on the host."""
    import shutil
    import subprocess

    program = shutil.which(FUSE_OVERLAYFS)
    if program is None:
        raise OSError(errno_mod.ENOENT, "fuse-overlayfs is not installed (Debian package "
                      "fuse-overlayfs)")  # fmt: skip
    argv = [program, "-o", step.data, step.target]
    proc = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, check=False)  # fmt: skip
    if proc.returncode != 0:
        lines = proc.stderr.decode(errors="replace").strip().splitlines()
        why = lines[-1] if lines else f"exit code {proc.returncode}"
        raise OSError(errno_mod.EIO, f"fuse-overlayfs failed: {why}")


def _mount_step(root: str, step: MountStep, target: str) -> None:
    flags = step.flags | (MS_RDONLY if step.readonly and not step.flags & MS_BIND else 0)
    mount(step.source, target, step.fstype or None, flags, step.data)
    if step.readonly and step.flags & MS_BIND:
        preserved = os.statvfs(target).f_flag & _PRESERVED
        mount(None, target, None, MS_REMOUNT | MS_BIND | MS_RDONLY | preserved)


def _mount_in_root(root: str, step: MountStep) -> None:
    kind = step.kind
    if kind == "auto":
        kind = "dir" if os.path.isdir(step.source) else "file"
    _mount_step(root, step, ensure_target(root, step.target, kind))


def _make_devices(plan: Plan) -> None:
    """mknod the devices; in a user namespace (no mknod there) bind the host's nodes instead."""
    for dev in plan.devices:
        path = secure_join(plan.root, dev.path)
        parent = os.path.dirname(path)
        if not os.path.isdir(parent):  # /dev/net/tun, /dev/dri/card0
            os.makedirs(parent, 0o755)
        if plan.rootless:
            if not os.path.lexists(path):
                os.close(os.open(path, os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, 0o644))
            mount(dev.source or dev.path, path, None, MS_BIND)
            continue
        if not os.path.lexists(path):
            kind = stat.S_IFBLK if dev.type == "b" else stat.S_IFCHR
            os.mknod(path, kind | dev.mode, os.makedev(dev.major, dev.minor))
        os.chmod(path, dev.mode)
        if (dev.uid, dev.gid) != (0, 0):
            os.chown(path, dev.uid, dev.gid)
    for source, link in plan.symlinks:
        path = secure_join(plan.root, link)
        if not os.path.lexists(path):
            os.symlink(source, path)


def _harden_paths(plan: Plan) -> None:
    """After pivot_root: Docker's masked paths, read-only paths, and a read-only root."""
    for path in plan.masked_paths:
        with _step(f"mask {path}"):
            if os.path.isdir(path):
                mount("tmpfs", path, "tmpfs", MS_RDONLY)
            elif os.path.exists(path):
                mount("/dev/null", path, None, MS_BIND)
    for path in plan.readonly_paths:
        if os.path.exists(path):
            with _step(f"readonly {path}"):
                _mount_step("/", MountStep(path, "", path, MS_BIND | MS_REC, readonly=True), path)
    if plan.readonly_rootfs:
        with _step("readonly rootfs"):
            mount(None, "/", None, MS_REMOUNT | MS_BIND | MS_RDONLY)


def _lookup(command: str, env: tuple[str, ...]) -> str:
    """Find the command as Go's exec.LookPath does in runc, with Docker's error texts."""
    if "/" in command:
        if not os.path.exists(command):
            detail = f'exec: "{command}": stat {command}: no such file or directory'
            raise StepError("exec", errno_mod.ENOENT, detail, 127)
        return command
    path_var = next((e[5:] for e in reversed(env) if e.startswith("PATH=")), "")
    for directory in path_var.split(":"):
        candidate = os.path.join(directory or ".", command)
        with contextlib.suppress(OSError):
            st = os.stat(candidate)
            if stat.S_ISREG(st.st_mode) and st.st_mode & 0o111:
                return candidate
    detail = f'exec: "{command}": executable file not found in $PATH'
    raise StepError("exec", errno_mod.ENOENT, detail, 127)


def _finish(plan: Plan, path: str, cgroup_fds: list[int], report_fd: int, go_fd: int) -> None:
    """Join cgroups, drop privileges, optionally wait for go, exec. Never returns on success."""
    with _step("cgroup join"):
        for fd in cgroup_fds:
            os.write(fd, b"0")
            os.close(fd)
    with _step("credentials"):
        _set_credentials(plan)
    if go_fd >= 0:
        _report(report_fd, {"ready": True})
        if os.read(go_fd, 1) != b"g":
            raise StepError("start", 0, "start was cancelled", 137)
    _libc.syscall(_SYS_CLOSE_RANGE, 3, ctypes.c_uint(0xFFFFFFFF), _CLOSE_RANGE_CLOEXEC)
    default_signals()
    env = dict(item.split("=", 1) for item in plan.env)
    try:
        os.execve(path, list(plan.args), env)
    except OSError as exc:
        command = plan.args[0]
        if exc.errno == errno_mod.EACCES:
            raise StepError(
                "exec", exc.errno, f'exec: "{command}": permission denied', 126
            ) from exc
        code = 127 if exc.errno == errno_mod.ENOENT else 126
        raise StepError("exec", exc.errno or 0, f'exec: "{command}": {exc.strerror}', code) from exc


def default_signals() -> None:
    """Every signal back to its default action and unblocked, as a container's process starts
    under docker: an ignored disposition would survive exec (Python ignores SIGPIPE, a
    supervisor SIGINT), and a shell keeps what it found ignored for its children, so Ctrl-C
    would not stop a command in ``run -it``."""
    for signum in range(1, signal.NSIG):
        if signum in (signal.SIGKILL, signal.SIGSTOP):
            continue
        with contextlib.suppress(OSError, ValueError):
            signal.signal(signum, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_SETMASK, ())


def _set_credentials(plan: Plan) -> None:
    """Resource limits, bounding set, groups, gid, uid (keeping caps across it), the cap
    sets, no_new_privs, then the seccomp filter, as late as it can be (runc's order): after
    no_new_privs, or, without it, while CAP_SYS_ADMIN is still held (loading needs one of the
    two)."""
    for number, soft, hard in plan.rlimits:
        resource.setrlimit(number, (_rlim(soft), _rlim(hard)))
    early_filter = plan.seccomp and not plan.no_new_privs
    if early_filter:
        _load_seccomp(plan)
    for cap in range(_LAST_CAP + 1):
        if not plan.cap_bounding >> cap & 1:
            prctl(PR_CAPBSET_DROP, cap)
    try:
        os.setgroups(list(plan.groups))
    except PermissionError:
        if not plan.rootless:  # a user namespace of one mapped id denies setgroups
            raise
    os.setresgid(plan.gid, plan.gid, plan.gid)
    prctl(PR_SET_KEEPCAPS, 1)
    os.setresuid(plan.uid, plan.uid, plan.uid)
    prctl(PR_SET_KEEPCAPS, 0)
    _, permitted, _ = capget()
    capset(
        plan.cap_effective & permitted,
        plan.cap_permitted & permitted,
        plan.cap_inheritable & permitted,
    )
    for cap in range(_LAST_CAP + 1):
        if plan.cap_ambient >> cap & 1:
            prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap)
    if plan.no_new_privs:
        prctl(PR_SET_NO_NEW_PRIVS, 1)
    if plan.seccomp and not early_filter:
        _load_seccomp(plan)
    if plan.die_with_parent:  # setuid cleared it
        prctl(PR_SET_PDEATHSIG, _SIGKILL)


def _rlim(value: int) -> int:
    return resource.RLIM_INFINITY if value < 0 else value


def _load_seccomp(plan: Plan) -> None:
    try:
        seccomp.load(plan.seccomp, plan.seccomp_flags)
    except OSError as exc:
        raise StepError("seccomp", exc.errno or 0, f"loading the seccomp filter: {exc.strerror}"
                        ) from exc  # fmt: skip
