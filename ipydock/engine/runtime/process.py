"""The caller's side: a warm fork-server helper and a handle per container process.

Safe to use from any thread of a Jupyter kernel: the kernel never forks; it sends a plan to the
helper (:mod:`ipydock.engine.runtime.forkserver`) and gets back a :class:`ContainerProcess`,
which talks to the helper over its own socket, so handles never share a reply queue.

The helper is started lazily on the first spawn (one Python start-up, ~30 ms, once) and stopped
by :meth:`ForkServer.close`; closing it, or the caller dying, kills every container it started.
Containers that must outlive their starter belong to a supervisor process instead (see the
package docstring).
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import socket
import subprocess
import sys
import threading
from dataclasses import dataclass

from ipydock.engine.runtime import protocol
from ipydock.engine.runtime.detach import python_env
from ipydock.engine.runtime.plan import Plan
from ipydock.engine.runtime.spec import Stdio
from ipydock.errors import (
    CommandNotExecutable,
    CommandNotFound,
    HelperDied,
    ProcessNotPaused,
    StartFailed,
)

__all__ = ["ContainerProcess", "ExitStatus", "ForkServer"]


@dataclass(frozen=True)
class ExitStatus:
    """How pid 1 ended: ``exit_code`` as Docker reports it (128+N when killed by signal N)."""

    exit_code: int
    signal: int | None = None
    oom_killed: bool = False

    @classmethod
    def from_wait_status(cls, raw: int) -> ExitStatus:
        if os.WIFSIGNALED(raw):
            sig = os.WTERMSIG(raw)
            return cls(128 + sig, sig)
        return cls(os.WEXITSTATUS(raw))


class ContainerProcess:
    """Pid 1 of one container, as seen by the process that asked for it."""

    def __init__(
        self, sock: socket.socket, pid: int, pidfd: int, paused: bool, command: str
    ) -> None:
        self.pid = pid
        self._command = command
        self._sock = sock
        self._pidfd = pidfd
        self._paused = paused
        self._status: ExitStatus | None = None
        self._lock = threading.Lock()

    def start(self) -> None:
        """Let a process spawned with ``paused=True`` exec its command."""
        if not self._paused:
            raise ProcessNotPaused(self.pid)
        self._paused = False
        protocol.send(self._sock, {"op": "start"})
        message = _expect(self._sock)
        if message["event"] == "failed":
            exited = _expect(self._sock)
            self._status = ExitStatus.from_wait_status(exited["status"])
            raise start_error(message["error"], self._command)

    def wait(self, timeout: float | None = None) -> ExitStatus | None:
        """Block until pid 1 exits (or ``timeout`` seconds pass: then ``None``)."""
        with self._lock:
            if self._status is None:
                ready, _, _ = select.select([self._sock], [], [], timeout)
                if not ready:
                    return None
                message = _expect(self._sock)
                if message.get("event") == "failed":
                    message = _expect(self._sock)
                self._status = ExitStatus.from_wait_status(message["status"])
                self._release()
            return self._status

    def poll(self) -> ExitStatus | None:
        return self.wait(timeout=0)

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Signal pid 1 (race-free via its pidfd); a no-op once it has exited."""
        if self._pidfd >= 0 and self._status is None:
            with contextlib.suppress(ProcessLookupError):
                signal.pidfd_send_signal(self._pidfd, sig)

    def close(self) -> None:
        """Forget the process; if it still runs, the helper kills and reaps it."""
        self._release()

    def _release(self) -> None:
        if self._pidfd >= 0:
            os.close(self._pidfd)
            self._pidfd = -1
        self._sock.close()

    def __enter__(self) -> ContainerProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._status is None:
            self.kill()
            self.wait()
        self.close()


class ForkServer:
    """A lazily started helper process that forks containers for this (threaded) process."""

    def __init__(self, *, user_namespace: bool = False, proot: bool = False) -> None:
        #: Rootless: the helper serves from a user namespace of its own (see forkserver);
        #: ``proot``: it runs commands through PRoot (no namespaces at all).
        self.user_namespace = user_namespace
        self.proot = proot
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._control: socket.socket | None = None
        self._spare: socket.socket | None = None  # the reply that will carry the next spare
        self._spare_target = ""  # what that spare will run

    def start(self) -> None:
        with self._lock:
            self._start_locked()

    def _start_locked(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            return
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        env = python_env()
        self._proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "ipydock.engine.runtime.forkserver",
                str(theirs.fileno()),
                *(["--userns"] if self.user_namespace else []),
                *(["--proot"] if self.proot else []),
            ],  # fmt: skip
            pass_fds=[theirs.fileno()],
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env=env,
        )
        theirs.close()
        self._control = mine

    def spawn(
        self, plan: Plan, stdio: Stdio | None = None, paused: bool = False
    ) -> ContainerProcess:
        """Fork pid 1 for ``plan``; returns once it exec'd (or, ``paused``, is ready to).

        Raises :class:`CommandNotFound` (exit code 127) and the other :class:`StartFailed`
        kinds after the failed child has been reaped, so nothing is left behind.
        """
        stdio = stdio or Stdio()
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        fds = [theirs.fileno()]
        slots = []
        for fd in (stdio.stdin, stdio.stdout, stdio.stderr):
            slots.append(len(fds) if fd is not None else -1)
            if fd is not None:
                fds.append(fd)
        request = {"op": "spawn", "plan": plan.to_dict(), "paused": paused, "stdio": slots}
        with self._lock:
            self._start_locked()
            assert self._control is not None
            try:
                protocol.send(self._control, request, fds)
            except OSError as exc:
                mine.close()
                raise HelperDied(self._proc.poll() if self._proc else None) from exc
            finally:
                theirs.close()
        return self._await_start(mine, paused, plan.args[0])

    def detached(self, target: str, args: list[object], fds: list[int]) -> None:
        """Run ``target`` (``module:function``) with ``*args, *fds`` in a detached process the
        helper forked ahead of need (a warm fork instead of a Python start, and off this call's
        clock); the container layer starts its supervisors so. The fds are passed, not kept.
        The next spare (for the same target) is ordered at once."""
        with self._lock:
            spare = self._take_spare_locked(target)
            try:
                protocol.send(spare, {"args": args}, fds)
            except OSError as exc:
                raise HelperDied(self._proc.poll() if self._proc else None) from exc
            finally:
                spare.close()
            self._order_spare_locked(target)

    def take_spare(self, target: str) -> socket.socket:
        """A spare for ``target`` to hand to another process (the command server gives one to
        a worker whose command starts a container); it sends ``{"args": [...]}`` and fds on
        it, as :meth:`detached` does, or closes it unused. The next spare is ordered."""
        with self._lock:
            spare = self._take_spare_locked(target)
            self._order_spare_locked(target)
            return spare

    def order_spare(self, target: str) -> None:
        """Have a spare for ``target`` forked now, before the first :meth:`take_spare`."""
        with self._lock:
            if self._spare is None:
                self._order_spare_locked(target)

    def _order_spare_locked(self, target: str) -> None:
        self._start_locked()
        assert self._control is not None
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            protocol.send(self._control, {"op": "spare", "target": target}, [theirs.fileno()])
        except OSError as exc:
            mine.close()
            raise HelperDied(self._proc.poll() if self._proc else None) from exc
        finally:
            theirs.close()
        self._spare = mine
        self._spare_target = target

    def _take_spare_locked(self, target: str) -> socket.socket:
        """A spare's socket for ``target`` (ordered before; waited for if not there yet)."""
        if self._spare is not None and self._spare_target != target:
            self._spare.close()  # a spare for another target reads EOF and exits
            self._spare = None
        for _attempt in range(2):  # a helper that died meanwhile is started again once
            if self._spare is None:
                self._order_spare_locked(target)
            assert self._spare is not None
            with self._spare:
                message, fds = protocol.recv(self._spare)
            self._spare = None
            if message is not None and fds:
                return socket.socket(fileno=fds[0])
            for fd in fds:
                os.close(fd)
        raise HelperDied(self._proc.poll() if self._proc else None)

    def _retire_spare_locked(self) -> None:
        """Let the ordered spare go and wait until it has: it reads EOF, undoes what it
        prepared (a cgroup, a waiting pid 1) and exits, which closes its socket."""
        assert self._spare is not None
        with self._spare:
            _message, fds = protocol.recv(self._spare)
        self._spare = None
        for fd in fds[1:]:
            os.close(fd)
        if fds:
            with socket.socket(fileno=fds[0]) as spare:
                spare.shutdown(socket.SHUT_WR)
                spare.recv(1)

    def _await_start(self, sock: socket.socket, paused: bool, command: str) -> ContainerProcess:
        try:
            message, fds = protocol.recv(sock)
            if message is None:
                raise HelperDied(self._proc.poll() if self._proc else None)
            if message["event"] == "failed":
                _expect(sock)  # "exited": the helper has reaped it
                raise start_error(message["error"], command)
        except BaseException:
            sock.close()
            raise
        pid = _host_pid(fds[0]) if self.user_namespace else message["pid"]
        return ContainerProcess(sock, pid, fds[0], paused, command)

    def close(self) -> None:
        """Stop the helper; it kills and reaps the containers it still owns."""
        with self._lock:
            if self._spare is not None:
                self._retire_spare_locked()
            if self._control is not None:
                self._control.close()
                self._control = None
            if self._proc is not None:
                self._proc.wait()
                self._proc = None

    def __enter__(self) -> ForkServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _host_pid(pidfd: int) -> int:
    """The pid, in our pid namespace, of the process behind ``pidfd`` (a rootless helper
    counts in a pid namespace of its own)."""
    with open(f"/proc/self/fdinfo/{pidfd}") as f:
        for line in f:
            if line.startswith("Pid:"):
                return int(line.split()[1])
    raise HelperDied(None)


def _expect(sock: socket.socket) -> dict:
    message, fds = protocol.recv(sock)
    for fd in fds:
        os.close(fd)
    if message is None:
        raise HelperDied(None)
    return message


def start_error(error: dict, command: str) -> StartFailed:
    """The report of a failed child, as the error class a caller can branch on."""
    code = int(error.get("exit_code", 125))
    if code == 127 and error.get("step") == "exec":
        return CommandNotFound(command, error["detail"])
    if code == 126 and error.get("step") == "exec":
        return CommandNotExecutable(command, error.get("errno", 0), error["detail"])
    return StartFailed(error.get("step", "?"), error.get("errno", 0), error["detail"], code)
