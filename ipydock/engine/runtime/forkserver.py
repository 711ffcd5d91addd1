"""The warm, single-threaded helper that forks containers for a multi-threaded caller.

Started once per :class:`~ipydock.engine.runtime.process.ForkServer` as
``python -m ipydock.engine.runtime.forkserver FD``, it imports little (so a fork copies little),
never starts a thread, and runs one ``selectors`` loop::

    control socket --spawn--> spawn.spawn() --> pid 1 of a new container
         |                          |
         |      report pipe: ready / error / EOF (= exec'd)   pidfd: readable = exited
         v                          v                                  v
    status socket per container <-- "ready"/"started"/"failed" --- "exited" (after waitpid)

It is the parent of every container it starts and reaps them. When the control socket closes
(the kernel exited or was killed), it SIGKILLs its containers, reaps them and exits; when it is
killed itself, the containers' parent-death signal kills them. A detached container must
therefore be owned by a longer-lived process: a per-container supervisor that calls
:func:`ipydock.engine.runtime.spawn.spawn` itself (it is single-threaded too). Those are forked
here ahead of need ("spare"): the caller holds the next one's socket and hands it a container
directly, without a round trip through this loop::

    control socket --spare--> fork, setsid, fork: a supervisor waiting on a socket
    reply socket   <-- "spare" + that socket (SCM_RIGHTS); the caller sends it args and fds
"""

from __future__ import annotations

import contextlib
import importlib
import os
import selectors
import signal
import socket
import sys
from dataclasses import dataclass, field
from typing import Any

from ipydock.engine.runtime import protocol
from ipydock.engine.runtime.detach import detach
from ipydock.engine.runtime.plan import Plan
from ipydock.engine.runtime.proctitle import set_title
from ipydock.engine.runtime.spawn import Child, read_report, spawn

__all__ = ["main", "serve"]


@dataclass
class _Container:
    child: Child
    status: socket.socket
    announced: bool = False
    failed: bool = False
    client_gone: bool = False
    watched: set[int] = field(default_factory=set)


class _Server:
    def __init__(self, control: socket.socket) -> None:
        self.control = control
        self.selector = selectors.DefaultSelector()
        self.containers: dict[int, _Container] = {}
        self.selector.register(control, selectors.EVENT_READ, self._on_request)

    def run(self) -> None:
        while True:
            for key, _ in self.selector.select():
                if key.fileobj is self.control and not self._on_request():
                    return
                if key.fileobj is not self.control:
                    key.data()

    # --- events ------------------------------------------------------------------------------

    def _on_request(self) -> bool:
        message, fds = protocol.recv(self.control)
        if message is None:
            return False
        if message.get("op") == "spare":  # fds: [reply socket]
            reply = socket.socket(fileno=fds[0])
            spare = _fork_spare(message["target"])
            _send(reply, {"event": "spare"}, [spare.fileno()])
            spare.close()
            reply.close()
            return True
        status = socket.socket(fileno=fds[0])
        slots = message["stdio"]
        stdio = (_slot(fds, slots[0]), _slot(fds, slots[1]), _slot(fds, slots[2]))
        try:
            child = _spawn(Plan.from_dict(message["plan"]), stdio, bool(message["paused"]))
        except Exception as exc:  # noqa: BLE001 - reported to the client, the loop goes on
            error = {"step": "fork", "errno": getattr(exc, "errno", 0) or 0,
                     "detail": str(exc), "exit_code": 125}  # fmt: skip
            _send(status, {"event": "failed", "error": error})
            _send(status, {"event": "exited", "status": 125 << 8})
            status.close()
            return True
        finally:
            for fd in fds[1:]:
                os.close(fd)
        entry = _Container(child, status)
        self.containers[child.pid] = entry
        self._watch(entry, child.report_fd, lambda: self._on_report(entry))
        self._watch(entry, child.pidfd, lambda: self._on_exit(entry))
        self._watch(entry, status.fileno(), lambda: self._on_status(entry))
        return True

    def _on_report(self, entry: _Container) -> None:
        report = read_report(entry.child.report_fd)
        if report is None:
            self._unwatch(entry, entry.child.report_fd)
            os.close(entry.child.report_fd)
            entry.child.report_fd = -1
            if entry.failed:
                return
            if entry.announced:
                _send(entry.status, {"event": "started", "pid": entry.child.pid})
            else:
                self._announce(entry, "started")
        elif report.get("ready"):
            self._announce(entry, "ready")
        else:
            entry.failed = True
            _send(entry.status, {"event": "failed", "error": report})

    def _on_exit(self, entry: _Container) -> None:
        if entry.child.report_fd >= 0:  # drain first: "failed" must precede "exited"
            self._on_report(entry)
            if entry.child.report_fd >= 0:
                self._on_report(entry)
        _pid, raw = os.waitpid(entry.child.pid, 0)
        if not entry.client_gone:
            _send(entry.status, {"event": "exited", "status": raw})
        self._forget(entry)

    def _on_status(self, entry: _Container) -> None:
        try:
            message, fds = protocol.recv(entry.status)
        except OSError:
            message, fds = None, []
        for fd in fds:
            os.close(fd)
        if message is None:
            entry.client_gone = True
            self._unwatch(entry, entry.status.fileno())
            _kill(entry.child)
        elif message.get("op") == "start" and entry.child.go_fd >= 0:
            os.write(entry.child.go_fd, b"g")
            os.close(entry.child.go_fd)
            entry.child.go_fd = -1

    # --- bookkeeping -------------------------------------------------------------------------

    def _announce(self, entry: _Container, event: str) -> None:
        entry.announced = True
        message = {"event": event, "pid": entry.child.pid}
        _send(entry.status, message, [entry.child.pidfd])

    def _watch(self, entry: _Container, fd: int, callback: Any) -> None:
        entry.watched.add(fd)
        self.selector.register(fd, selectors.EVENT_READ, callback)

    def _unwatch(self, entry: _Container, fd: int) -> None:
        if fd in entry.watched:
            entry.watched.discard(fd)
            self.selector.unregister(fd)

    def _forget(self, entry: _Container) -> None:
        for fd in list(entry.watched):
            self._unwatch(entry, fd)
        for fd in (entry.child.pidfd, entry.child.report_fd, entry.child.go_fd):
            if fd >= 0:
                os.close(fd)
        entry.status.close()
        del self.containers[entry.child.pid]

    def shutdown(self) -> None:
        """Kill and reap every container: nobody is left to wait for them."""
        for entry in list(self.containers.values()):
            _kill(entry.child)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(entry.child.pid, 0)
            entry.client_gone = True
            self._forget(entry)


#: How a container is forked: namespaces (``spawn``), or PRoot with ``--proot``.
_spawn: Any = spawn


def _fork_spare(target: str) -> socket.socket:
    """A detached process forked ahead of need that will run ``target`` (``module:function``,
    e.g. the container layer's supervisor); returns the socket on which it waits for its
    arguments and fds. A fork of a Python process costs 1-2 ms here and a detached one needs
    two (:func:`~ipydock.engine.runtime.detach.detach`): the caller holds the next spare
    before it needs it. ``target``'s module (and what its ``warm_up()`` imports) is imported
    here, in the helper, once: every spare is forked warm, and the runtime itself imports
    nothing above it. The module's ``prepare()``, if any, runs in the spare while it waits
    (off everyone's clock) and returns what undoes it. When that socket closes unused, the
    spare reads EOF, undoes what it prepared and exits."""
    module_name, _, name = target.partition(":")
    module = importlib.import_module(module_name)
    run = getattr(module, name)
    warm_up = getattr(module, "warm_up", None)
    if warm_up is not None:  # its imports, made here once: every spare forked after has them
        warm_up()
    prepare = getattr(module, "prepare", None)
    mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)

    def wait_for_work() -> None:
        os.dup2(theirs.fileno(), 3)
        os.closerange(4, 1 << 16)  # our control socket, pidfds, other spares
        # what the target makes ahead of its work (the supervisor: pid 1 in its cgroup), with
        # what undoes it if no work comes
        discard = prepare() if prepare is not None else None
        work = socket.socket(fileno=3)
        message, fds = protocol.recv(work)
        work.close()  # fd 3 is the notify pipe's in run_detached
        if message is not None:
            run(*message["args"], *fds)
        elif discard is not None:
            discard()

    detach(wait_for_work)
    theirs.close()
    return mine


def _slot(fds: list[int], index: int) -> int:
    """The fd a stdio slot points at, or -1 for /dev/null."""
    return fds[index] if index > 0 else -1


def _kill(child: Child) -> None:
    with contextlib.suppress(ProcessLookupError):
        signal.pidfd_send_signal(child.pidfd, signal.SIGKILL)


def _send(sock: socket.socket, message: dict[str, Any], fds: list[int] | None = None) -> None:
    with contextlib.suppress(OSError):  # the client may be gone; the container is then killed
        protocol.send(sock, message, fds or ())


def serve(control: socket.socket) -> None:
    """Serve spawn requests on ``control`` until it closes; then kill what is left."""
    server = _Server(control)
    try:
        server.run()
    finally:
        server.shutdown()


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    set_title("ipydock-forkserver")
    if "--userns" in argv[1:]:
        _serve_in_user_namespace(int(argv[0]))
    if "--proot" in argv[1:]:
        global _spawn
        from ipydock.engine.runtime import proot

        _spawn = lambda plan, stdio, _paused: proot.spawn(plan, stdio)  # noqa: E731
    serve(socket.socket(fileno=int(argv[0])))


def _serve_in_user_namespace(control_fd: int) -> None:
    """Rootless: serve from a user namespace of our own (uid 0 = the user), as pid 1 of a pid
    namespace it owns. A spawner gives its pid namespace back after each fork (``setns``), and
    may do so only into one its user namespace owns: the host's is not, this one is. Our
    process stays outside and only waits; the server dies with it (parent-death signal), and
    every container with the server (its pid namespace ends)."""
    from ipydock.engine.runtime.plan import CLONE_NEWPID
    from ipydock.engine.runtime.spawn import PR_SET_PDEATHSIG, enter_user_namespace, prctl, unshare

    enter_user_namespace()
    unshare(CLONE_NEWPID)
    pid = os.fork()
    if pid == 0:
        prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        return
    os.close(control_fd)
    _pid, raw = os.waitpid(pid, 0)
    os._exit(os.waitstatus_to_exitcode(raw) & 0xFF)


if __name__ == "__main__":
    main()
