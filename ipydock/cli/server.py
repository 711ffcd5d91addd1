"""The warm command server behind the ``ipydock`` command (see :mod:`ipydock.launcher`).

One process per user and installed package, with the CLI's modules imported.
Each command runs in a worker forked from it, which becomes the caller's command: the caller's
stdio fds, environment, working directory and umask, then ``ipydock.cli.main(argv)``, then
``_exit``. Forking is safe because this process never starts a Python thread (BuildKit's
parser, a Go library, runs a few threads of its own, idle between calls; a worker calls it only
after the fork); a worker may fork again (a container's supervisor), as the CLI does. A worker
is forked *before* its command comes (one waits, ready, whenever no command runs), so a command
pays neither the fork nor the first-touch copies of a fresh child, and it reports its exit code
before its teardown::

    serve: flock <sock>.lock (one server) ── bind <sock> ── select:
      nothing running and no worker waiting -> fork one: it waits on a socket pair of its own
      listening socket  -> accept; SO_PEERCRED must be our uid; read the request + 3 fds;
                           sources changed (inotify)? reply "stale" and leave; else hand the
                           request + fds (+ a spare supervisor) to the waiting worker (or a
                           new one), reply "pid N"
      worker's socket   -> "exit CODE" when its command is done: pass it to its caller
      worker's pidfd    -> waitpid; if it died before it reported, "exit 128+SIG"; close
      caller's socket   -> EOF: the caller is gone (killed): SIGTERM the worker
      nothing for IPYDOCK_SERVER_IDLE seconds (default 600) and no workers -> leave

    zygote (forked first, before the imports): forks the supervisors of detached starts,
      which the workers hand it (``supervisor.zygote``): they stay small and share its pages

Leaving unlinks the socket before the lock is released, so a new server can start at once.
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import os
import selectors
import signal
import socket
import struct
import sys
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ipydock.engine.runtime.proctitle import set_title
from ipydock.launcher import PACKAGE_DIR, decode_request, socket_path

if TYPE_CHECKING:
    from ipydock.engine.runtime import ForkServer

__all__ = ["fingerprint", "serve", "status", "stop"]

_MAX_REQUEST = 1 << 20
_IDLE = 600.0


def fingerprint() -> tuple[tuple[str, int, int], ...]:
    """(path, mtime, size) of every source file of the package: a change means restart."""
    found = []
    for top, dirs, files in os.walk(PACKAGE_DIR):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        for name in files:
            if name.endswith(".py"):
                st = os.stat(os.path.join(top, name))
                found.append((os.path.join(top, name), st.st_mtime_ns, st.st_size))
    return tuple(sorted(found))


class SourceWatch:
    """Whether a source file of the package changed since this was made, without a walk per
    command (:func:`fingerprint` costs more than a millisecond): inotify on every package
    directory. A ``.py`` file written, touched, made, moved or removed, or a new directory (its
    files are not watched), counts; ``__pycache__`` does not. Where inotify cannot be had (no
    watches left), :meth:`changed` compares fingerprints instead."""

    _IN_MODIFY, _IN_ATTRIB, _IN_MOVED_FROM, _IN_MOVED_TO = 0x2, 0x4, 0x40, 0x80
    _IN_CREATE, _IN_DELETE, _IN_DELETE_SELF, _IN_MOVE_SELF = 0x100, 0x200, 0x400, 0x800
    _IN_Q_OVERFLOW, _IN_ISDIR = 0x4000, 0x40000000
    _MASK = (_IN_MODIFY | _IN_ATTRIB | _IN_MOVED_FROM | _IN_MOVED_TO | _IN_CREATE | _IN_DELETE
             | _IN_DELETE_SELF | _IN_MOVE_SELF)  # fmt: skip
    _HEADER = struct.Struct("iIII")  # struct inotify_event: wd, mask, cookie, len; then name

    def __init__(self) -> None:
        self.sources = fingerprint()
        self.fd = -1
        self.seen = False
        try:
            self.fd = self._watch()
        except OSError:
            self.fd = -1

    def _watch(self) -> int:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        fd = libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        if fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1")
        for top, dirs, _files in os.walk(PACKAGE_DIR):
            dirs[:] = [d for d in dirs if d != "__pycache__"]
            if libc.inotify_add_watch(fd, os.fsencode(top), self._MASK) < 0:
                err = ctypes.get_errno()
                os.close(fd)
                raise OSError(err, f"inotify_add_watch {top}")
        if fingerprint() != self.sources:  # changed while the watches were being added
            self.seen = True
        return fd

    def changed(self) -> bool:
        if self.fd < 0:
            return fingerprint() != self.sources
        while not self.seen:
            try:
                data = os.read(self.fd, 1 << 16)
            except BlockingIOError:
                break
            self.seen = self._matters(data)
        return self.seen

    def _matters(self, data: bytes) -> bool:
        at = 0
        while at < len(data):
            _wd, mask, _cookie, size = self._HEADER.unpack_from(data, at)
            name = data[at + self._HEADER.size : at + self._HEADER.size + size].rstrip(b"\0")
            at += self._HEADER.size + size
            if mask & (self._IN_Q_OVERFLOW | self._IN_DELETE_SELF | self._IN_MOVE_SELF):
                return True
            if name.endswith(b".py") or (mask & self._IN_ISDIR and name != b"__pycache__"):
                return True
        return False

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def _preload() -> None:
    """Import what commands use, so a worker starts with it done."""
    import tempfile  # noqa: F401

    from ipydock import backends, cli
    from ipydock.engine.builder import parser, pipeline
    from ipydock.engine.containers import execute, lifecycle, supervisor  # noqa: F401
    from ipydock.engine.registry import pull, push  # noqa: F401
    from ipydock.engine.runtime import rootless, spawn  # noqa: F401
    from ipydock.engine.store import snapshots  # noqa: F401

    cli.load_commands()
    cli.prebuilt = cli.build_parser()  # every worker parses with it
    parser.parse("FROM scratch\n")  # loads BuildKit's parser (a Go shared library)
    del backends, pipeline


@dataclass
class _Job:
    """A worker: forked ahead, it waits for a command on ``sock`` (our end of a socket pair),
    then reports its exit code there."""

    pid: int
    pidfd: int
    sock: socket.socket
    #: its caller, once it has a command
    conn: socket.socket | None = None
    reported: bool = False


class Server:
    def __init__(self, path: str, idle: float) -> None:
        self.path = path
        self.idle = idle
        self.sources = SourceWatch()
        self.selector = selectors.DefaultSelector()
        self.jobs: dict[int, _Job] = {}  # by pid: workers with a command
        #: A worker waiting for the next command.
        self.ready: _Job | None = None
        self.listener: socket.socket | None = None
        self.lock_fd = -1
        self.forkserver: ForkServer | None = None
        self.env = _supervisor_env(os.environ)
        #: Our end of the socket of the zygote that forks detached supervisors.
        self.zygote: socket.socket | None = None

    def claim(self) -> bool:
        """Take the lock and the socket path; False if another server has them."""
        os.makedirs(os.path.dirname(self.path), mode=0o700, exist_ok=True)
        self.lock_fd = os.open(self.path + ".lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(self.lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self.lock_fd)
            return False
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)  # a crashed server's
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        old = os.umask(0o077)
        try:
            listener.bind(self.path)
        finally:
            os.umask(old)
        listener.listen(16)
        self.listener = listener
        os.ftruncate(self.lock_fd, 0)
        os.write(self.lock_fd, f"{os.getpid()}\n".encode())
        self.selector.register(listener, selectors.EVENT_READ, self._accept)
        return True

    def order_spare(self) -> None:
        """Start the fork-server helper and have it fork a spare supervisor, so the first
        command that starts a container finds one ready. Not with a cgroup parent of the
        caller's choosing (``IPYDOCK_CGROUP_PARENT``, e.g. a test's): a waiting spare keeps
        a cgroup under that parent for as long as this server lives."""
        if "IPYDOCK_CGROUP_PARENT" in os.environ:
            return
        from ipydock.engine.containers.lifecycle import SUPERVISOR
        from ipydock.engine.runtime import ForkServer

        self.forkserver = ForkServer()
        self.forkserver.order_spare(SUPERVISOR)

    def _spare_for(self, argv: list[str], env: dict[str, str]) -> socket.socket | None:
        """A spare supervisor for a command that starts a container (``run``, ``start``,
        ``restart``), if this server's supervisors would see what the caller's would (the
        same IPYDOCK_* variables and PATH); None otherwise, or if the helper failed."""
        if self.forkserver is None or not _STARTS & set(argv[:8]) or _detached(argv):
            return None
        if _supervisor_env(env) != self.env:
            return None
        from ipydock.engine.containers.lifecycle import SUPERVISOR

        try:
            return self.forkserver.take_spare(SUPERVISOR)
        except Exception:  # noqa: BLE001 - the worker forks its own supervisor instead
            self.forkserver.close()
            self.forkserver = None
            return None

    def leave(self) -> None:
        """Stop taking commands: unlink the socket, then let the lock go."""
        if self.listener is not None:
            self.selector.unregister(self.listener)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)
            self.listener.close()
            self.listener = None
        if self.lock_fd >= 0:
            os.close(self.lock_fd)
            self.lock_fd = -1
        if self.forkserver is not None:
            self.forkserver.close()
            self.forkserver = None
        if self.ready is not None:  # EOF on its socket: it leaves
            job, self.ready = self.ready, None
            job.sock.close()
            os.waitpid(job.pid, 0)
            self._finish(job)
        self.sources.close()

    def run(self) -> None:
        last = time.monotonic()
        while self.listener is not None:
            if self.ready is None and all(job.reported for job in self.jobs.values()):
                self.ready = self._fork_worker()
            events = self.selector.select(timeout=self.idle)
            for key, _ in events:
                key.data(key.fileobj)
            if events or self.jobs:
                last = time.monotonic()
            elif time.monotonic() - last >= self.idle:
                break
        self.leave()
        for job in list(self.jobs.values()):  # after "stale" or SIGTERM: let them finish
            self._reap(job)

    # -- events ----------------------------------------------------------------------------

    def _accept(self, listener: socket.socket) -> None:
        conn, _ = listener.accept()
        creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        _pid, uid, _gid = struct.unpack("3i", creds)
        if uid != os.geteuid():
            conn.close()
            return
        try:
            data, fds, _flags, _addr = socket.recv_fds(conn, _MAX_REQUEST, 3)
        except OSError:
            conn.close()
            return
        spare = None
        try:
            try:
                request = decode_request(data)
            except ValueError:
                request = None
            if request is None or len(fds) != 3:
                conn.close()
                return
            if self.sources.changed():
                self.leave()  # first, so that the caller can start a new server at once
                with contextlib.suppress(OSError):
                    conn.send(b"stale")
                conn.close()
                return
            spare = self._spare_for(request[2], request[3])
            job = self._hand(data, [*fds, *([spare.fileno()] if spare is not None else [])])
        finally:
            for fd in fds:
                os.close(fd)
            if spare is not None:
                spare.close()
        job.conn = conn
        self.jobs[job.pid] = job
        self.selector.register(conn, selectors.EVENT_READ, lambda _c: self._caller_left(job))
        with contextlib.suppress(OSError):
            conn.send(f"pid {job.pid}".encode())

    def _fork_worker(self) -> _Job:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        pid = os.fork()
        if pid == 0:
            _worker(theirs, zygote=self.zygote)  # never returns
        theirs.close()
        job = _Job(pid, os.pidfd_open(pid), ours)
        self.selector.register(job.pidfd, selectors.EVENT_READ, lambda _fd: self._reap(job))
        self.selector.register(ours, selectors.EVENT_READ, lambda _s: self._reported(job))
        return job

    def _hand(self, request: bytes, fds: list[int]) -> _Job:
        """Give the request and its fds to the waiting worker (a new one if there is none, or
        if it died waiting)."""
        while True:
            job, self.ready = self.ready or self._fork_worker(), None
            try:
                socket.send_fds(job.sock, [request], fds)
                return job
            except OSError:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(job.pid, signal.SIGKILL)
                os.waitpid(job.pid, 0)
                self._finish(job)

    def _reported(self, job: _Job) -> None:
        """The worker's "exit CODE", sent before its teardown; its caller has it at once.
        (EOF instead: it died; its pidfd tells how.)"""
        if job.sock.fileno() < 0:  # finished earlier in the same round of events
            return
        try:
            message = job.sock.recv(64)
        except OSError:
            message = b""
        self.selector.unregister(job.sock)
        if message.startswith(b"exit ") and job.conn is not None and not job.reported:
            job.reported = True
            with contextlib.suppress(OSError):
                job.conn.send(message)

    def _reap(self, job: _Job) -> None:
        if job.pidfd < 0:  # finished earlier in the same round of events
            return
        _, status = os.waitpid(job.pid, 0)
        code = os.waitstatus_to_exitcode(status)
        if job.conn is not None and not job.reported:
            job.reported = True
            with contextlib.suppress(OSError):
                job.conn.send(f"exit {code if code >= 0 else 128 - code}".encode())
        if self.ready is job:  # it died waiting
            self.ready = None
        self._finish(job)

    def _caller_left(self, job: _Job) -> None:
        """The caller's socket is readable: it sends nothing, so this is its end (killed, or
        gone with the exit code it was told)."""
        if job.conn is None:  # finished earlier in the same round of events
            return
        self.selector.unregister(job.conn)
        if not job.reported:
            with contextlib.suppress(ProcessLookupError):
                os.kill(job.pid, signal.SIGTERM)

    def _finish(self, job: _Job) -> None:
        for obj in (job.pidfd, job.conn, job.sock):
            with contextlib.suppress(KeyError, ValueError):
                if obj is not None:
                    self.selector.unregister(obj)
        os.close(job.pidfd)
        job.pidfd = -1
        job.sock.close()
        if job.conn is not None:
            job.conn.close()
            job.conn = None
        self.jobs.pop(job.pid, None)


def _worker(sock: socket.socket, zygote: socket.socket | None) -> None:
    """A worker: wait on ``sock`` for one command (the request, the caller's three stdio fds,
    maybe a spare supervisor for the container it starts: ``lifecycle.hand_spare``), become
    it, report its exit code on ``sock``; never returns into the server's loop. ``zygote``:
    the socket of the zygote for detached starts (``lifecycle.use_zygote``). EOF instead of a
    command: the server left."""
    code = 1
    spare = False
    try:
        set_title("ipydock-server-worker")
        signal.set_wakeup_fd(-1)
        # the command's signal dispositions from the start: a signal its caller forwards
        # may come as soon as the server has said "pid N"
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGHUP, signal.SIG_DFL)
        signal.signal(signal.SIGQUIT, signal.SIG_DFL)
        kept = _to_fds({4: zygote, 5: sock})
        # the listener, callers' sockets, pidfds, the lock, other workers', the helpers'
        for low, high in zip([3, *(k + 1 for k in kept)], [*kept, 1 << 16], strict=True):
            os.closerange(low, high)
        sock = socket.socket(fileno=5)
        _warm_up()
        data, fds, _flags, _addr = socket.recv_fds(sock, _MAX_REQUEST, 4)
        if not data:
            os._exit(0)
        cwd, umask, argv, env = decode_request(data)
        set_title(" ".join(["ipydock", *argv])[:200])
        # fds 0-2 and 4-5 were open when these came: they are never among them
        handed = fcntl.fcntl(fds[3], fcntl.F_DUPFD_CLOEXEC, 100) if len(fds) > 3 else -1
        for target, fd in enumerate(fds[:3]):
            os.dup2(fd, target)
        for fd in fds:
            os.close(fd)
        from ipydock.engine.containers import lifecycle

        if handed >= 0:
            os.dup2(handed, 3, inheritable=False)
            os.close(handed)
            spare = True
            lifecycle.hand_spare(socket.socket(fileno=3))
        if zygote is not None:
            lifecycle.use_zygote(socket.socket(fileno=4))
        os.environ.clear()
        os.environ.update(env)
        os.umask(umask)
        os.chdir(cwd)
        sys.stdin = _text(0, "r")
        sys.stdout = _text(1, "w")
        sys.stderr = _text(2, "w", errors="backslashreplace")
        sys.argv = ["ipydock", *argv]
        from ipydock.cli import main

        code = main(argv)
    except SystemExit as exc:
        code = 0 if exc.code is None else exc.code if isinstance(exc.code, int) else 1
    except BaseException:  # noqa: BLE001 - reported; never return into the server's loop
        with contextlib.suppress(Exception):
            import traceback

            traceback.print_exc()
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        if spare:
            with contextlib.suppress(Exception):
                from ipydock.engine.containers import lifecycle

                lifecycle.retire_handed_spare()
        with contextlib.suppress(Exception):
            sock.send(f"exit {code % 256}".encode())
        os._exit(code)


#: Command lines the waiting worker parses (and throws away) while it waits.
_REHEARSED = (["image", "ls"], ["container", "ls", "-a"], ["image", "history", "x"],
              ["run", "--rm", "-i", "x", "true"])  # fmt: skip


def _warm_up() -> None:
    """Touch, while waiting, what commands touch first (the parser, its subparsers, a
    container's record as ``ls`` reads and shows it), so that the copies of the pages a fresh
    fork writes to are made before a command comes (``ls -a`` of 100 containers: 10.5 ms in a
    fresh fork, 7.8 ms in a warm one). Nothing on disk is read or written."""
    from ipydock import cli

    if cli.prebuilt is not None:
        for argv in _REHEARSED:
            with contextlib.suppress(BaseException):
                cli.prebuilt.parse_args(argv)
    with contextlib.suppress(Exception):
        import json

        from ipydock.display.text import human_ago, table
        from ipydock.engine.containers import views
        from ipydock.engine.containers.config import RunOptions, container_config
        from ipydock.engine.containers.records import Record
        from ipydock.engine.containers.state import State

        config = container_config("0" * 64, "rehearsal", "sha256:" + "0" * 64, "rehearsal",
                                  {"config": {"Cmd": ["true"]}}, RunOptions("rehearsal"),
                                  "1970-01-01T00:00:00Z")  # fmt: skip
        record = Record("0" * 64, "/nonexistent", json.loads(json.dumps(config)))
        state = State.from_dict(json.loads(json.dumps(State().to_dict())))
        row = views.info(record, state)
        table(["ID", "CREATED", "STATUS"], [[row.id[:12], human_ago(row.created), row.status_text]])


#: Commands that start a container: their worker gets a spare supervisor.
_STARTS = {"run", "start", "restart"}


def _detached(argv: list[str]) -> bool:
    """The command looks like a detached start (``run -d``, ``start`` without ``-a``,
    ``restart``), whose supervisor the zygote forks: no spare for it. A guess from the words
    (a ``-d`` among the container's own arguments counts too): a wrong one costs only time."""
    words = set(argv[:8])
    flags = [a[1:] for a in argv if a.startswith("-") and not a.startswith("--")]
    if "run" in words:
        return "--detach" in argv or any("d" in f and f.isalpha() for f in flags)
    if "start" in words:
        return "--attach" not in argv and not any("a" in f and f.isalpha() for f in flags)
    return "restart" in words


def _start_zygote() -> socket.socket | None:
    """Start the zygote that forks detached supervisors (``supervisor.zygote``), detached:
    nobody's child here; our end of its socket, or None if it could not be made. It leaves
    when every holder of that end (we and our workers) has closed it."""
    from ipydock.engine.containers import supervisor
    from ipydock.engine.runtime.detach import detach

    try:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    except OSError:
        return None

    def run() -> None:
        _to_fds({3: theirs})
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1):
            os.dup2(null, fd)
        os.closerange(4, 1 << 16)  # our end, the lock: EOF when the server's end closes
        os.chdir("/")
        supervisor.zygote(socket.socket(fileno=3))

    detach(run)
    theirs.close()
    return ours


def _to_fds(wanted: dict[int, socket.socket | None]) -> list[int]:
    """Move each socket to its fd number (close-on-exec), the objects forgetting theirs (a
    ``closerange`` follows); the numbers used, sorted. Through fds above 100 first, so
    that moving one cannot close another."""
    high = {fd: fcntl.fcntl(sock.fileno(), fcntl.F_DUPFD_CLOEXEC, 100)
            for fd, sock in wanted.items() if sock is not None}  # fmt: skip
    for fd, temp in high.items():
        os.dup2(temp, fd, inheritable=False)
        os.close(temp)
    for sock in wanted.values():
        if sock is not None:
            sock.detach()
    return sorted(high)


def _supervisor_env(env: dict[str, str] | os._Environ[str]) -> dict[str, str]:
    """What of an environment a supervisor's work depends on (cgroup parent, bridge and link
    names, tools found on PATH)."""
    return {k: v for k, v in env.items() if k.startswith("IPYDOCK_") or k == "PATH"}


def _text(fd: int, mode: str, errors: str = "strict") -> io.TextIOWrapper:
    """A standard stream on ``fd`` as Python would make it: line-buffered on a terminal."""
    line = 1 if os.isatty(fd) and mode == "w" else -1
    stream = open(fd, mode, buffering=line, encoding="utf-8", errors=errors, closefd=False)  # noqa: SIM115
    assert isinstance(stream, io.TextIOWrapper)
    return stream


# -- management -----------------------------------------------------------------------------


def _pid(lock: str | None = None) -> int | None:
    """The pid of the server holding ``lock`` (default: this installation's), if one does."""
    try:
        fd = os.open(lock or socket_path() + ".lock", os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:  # held: a live server
            text = os.read(fd, 32).decode().strip()
            return int(text) if text.isdigit() else None
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def status() -> dict[str, object]:
    pid = _pid()
    return {"running": pid is not None, "pid": pid, "socket": socket_path()}


def stop(runtime: str | None = None) -> bool:
    """Stop this installation's server, or with ``runtime`` every server whose socket is in
    that directory (another installation's, one a stale server's caller started); their
    running commands finish first. False if none was running."""
    locks = (
        [os.path.join(runtime, n) for n in os.listdir(runtime) if n.endswith(".sock.lock")]
        if runtime is not None and os.path.isdir(runtime)
        else []
        if runtime is not None
        else [socket_path() + ".lock"]
    )
    stopped = False
    for lock in locks:
        pid = _pid(lock)
        if pid is None:
            continue
        try:
            pidfd = os.pidfd_open(pid)
        except ProcessLookupError:
            continue
        try:
            os.kill(pid, signal.SIGTERM)
            sel = selectors.DefaultSelector()
            sel.register(pidfd, selectors.EVENT_READ)
            sel.select(timeout=30)
        finally:
            os.close(pidfd)
        stopped = True
    return stopped


def serve(idle: float | None = None, ready_fd: int = -1) -> int:
    """Serve until idle or stopped; ``ready_fd`` gets a line once commands are taken (tests)."""
    if idle is None:
        idle = float(os.environ.get("IPYDOCK_SERVER_IDLE") or _IDLE)
    server = Server(socket_path(), idle)
    if not server.claim():
        return 0  # another one is serving
    log = os.open(server.path + ".log", os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    os.dup2(log, 2)  # a worker's own stderr is its caller's; this is the server's
    os.close(log)
    server.zygote = _start_zygote()  # before our handlers and imports: it needs neither
    # SIGTERM: a byte on the wake-up pipe ends the loop (the handler itself does nothing)
    wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGTERM, lambda *_: None)
    server.selector.register(wake_r, selectors.EVENT_READ, lambda _fd: server.leave())
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    set_title("ipydock-server")
    _preload()
    with contextlib.suppress(Exception):  # without it, each worker forks its supervisor
        server.order_spare()
    if ready_fd >= 0:
        os.write(ready_fd, b"ready\n")
        os.close(ready_fd)
    try:
        server.run()
    finally:
        server.leave()
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["serve"] and len(argv) in (1, 3) and argv[1:2] in ([], ["--ready-fd"]):
        return serve(ready_fd=int(argv[2]) if len(argv) == 3 else -1)
    print("usage: python -m ipydock.cli.server serve [--ready-fd FD]", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
