"""Terminals of containers and execs, as the engine hands them to a front door.

This is the engine-level handle the CLI uses for ``run -it``, ``start -ai``, ``attach`` and
``exec -it``, and the one the Docker Engine API service uses for attach/exec with ``Tty: true``
and ``/resize``: a :class:`Terminal` (read the output, write input, resize) inside a
:class:`TerminalSession` (which container, how it ended)::

    container (run -t):  supervisor holds the master (ttyhub.py) ──attach.sock──> Terminal
                           read()  <- output messages of the hub; b"" once the run is over
                           write() -> the master fd the hub sent (input goes straight in)
                           resize(rows, cols) -> TIOCSWINSZ on it (the kernel: SIGWINCH)
    exec -t:             the exec's own process sends its master back (runtime/console.py);
                           read() reads the master itself; b"" (EIO) when the command is gone
    TerminalSession.wait() -> exit code: the run's (notify pipe), the container's (attach:
                           wait for it), or the exec's (its process)
    DetachKeys: docker's ctrl-p,ctrl-q (``--detach-keys``), scanned in the input by the caller

Reading the output is the caller's business (``select`` on :meth:`Terminal.fileno`); a
caller that stops reading is dropped by the hub once 1 MiB behind, and the container goes on.
Closing a container's terminal is a detach: the container keeps its terminal and its run.

For the Docker Engine API (``Tty: true``), each endpoint is one call here:

- ``POST /containers/create`` with ``Tty``/``OpenStdin``: ``RunOptions(tty=..., interactive=...)``;
- attach before start (what ``docker run -it`` does), then ``/start``: at the start, the
  backend's ``start_terminal(id, console_size)`` (``lifecycle.start(attach=True)``: the
  terminal is connected before pid 1 exists), spliced to the hijacked connection;
- ``/containers/{id}/attach`` of a running one: ``attach_terminal(id)``; ``detachKeys``:
  :class:`DetachKeys` on the input, then ``release()``; the exit code: ``wait()``;
- ``/containers/{id}/resize?h=&w=``: :func:`resize_container` (or ``resize`` on a handle);
- exec with ``Tty``: ``exec_terminal(...)`` at ``/exec/{id}/start``; ``/exec/{id}/resize``:
  that session's ``terminal.resize``; its exit code: ``wait()``.
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from ipydock.engine.containers.ttyhub import MARK, bind_path
from ipydock.engine.runtime import console
from ipydock.errors import ContainerNotRunning, UsageError

__all__ = [
    "DEFAULT_DETACH_KEYS",
    "DetachKeys",
    "Terminal",
    "TerminalSession",
    "connect",
    "parse_detach_keys",
    "resize_container",
]

DEFAULT_DETACH_KEYS = "ctrl-p,ctrl-q"
_CHUNK = 65536


class Terminal:
    """A pseudo-terminal seen by one client: ``stream`` (a container's, from its supervisor)
    or, without it, the master itself (an exec's, which this process holds)."""

    def __init__(self, master: int, stream: socket.socket | None = None) -> None:
        self.master = master
        self.stream = stream
        self.closed = False

    @classmethod
    def from_socket(cls, sock: socket.socket) -> Terminal:
        """Wait for the hub's first message (the master) on a connected socket."""
        data, fds, _flags, _addr = socket.recv_fds(sock, 64, 1)
        if data != MARK or len(fds) != 1:
            for fd in fds:
                os.close(fd)
            sock.close()
            raise OSError(errno.ECONNRESET, "the container's terminal went away")
        return cls(fds[0], sock)

    def fileno(self) -> int:
        """Readable when :meth:`read` has output (or the end) for us."""
        return self.stream.fileno() if self.stream is not None else self.master

    def read(self) -> bytes:
        """What the terminal showed since the last read; ``b""`` once it has ended."""
        if self.stream is not None:
            try:
                return self.stream.recv(_CHUNK)
            except ConnectionResetError:
                return b""
        try:
            return os.read(self.master, _CHUNK)
        except OSError as exc:  # EIO: the slave side is closed everywhere
            if exc.errno != errno.EIO:
                raise
            return b""

    def write(self, data: bytes) -> None:
        """Type ``data`` (it goes through the terminal's line discipline: ^C is SIGINT).
        Input to a terminal whose run has just ended is dropped (its end is read next)."""
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(self.master, view) :]
        except (BlockingIOError, OSError) as exc:
            if not isinstance(exc, BlockingIOError) and exc.errno != errno.EIO:
                raise

    def resize(self, rows: int, cols: int) -> None:
        if rows > 0 and cols > 0:
            console.set_size(self.master, rows, cols)

    def size(self) -> tuple[int, int]:
        return console.get_size(self.master)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        os.close(self.master)
        if self.stream is not None:
            self.stream.close()


@dataclass
class TerminalSession:
    """A terminal and how its process ends: ``wait()`` after :meth:`Terminal.read` gave
    ``b""`` returns the exit code. ``release()`` instead of waiting: the caller detaches (a
    container's terminal stays with its supervisor; an exec's is kept by a process that
    drains it, so the command goes on as with docker's daemon)."""

    container_id: str
    terminal: Terminal
    waiter: Callable[[], int]
    on_release: Callable[[], None] | None = None
    _code: int | None = field(default=None, repr=False)

    def wait(self) -> int:
        if self._code is None:
            self._code = self.waiter()
            self.terminal.close()
        return self._code

    def release(self) -> None:
        if self.on_release is not None:
            self.on_release()
        self.terminal.close()


def connect(container_dir: str, container_id: str) -> Terminal:
    """Attach to the running terminal container in ``container_dir`` (its ``attach.sock``)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
    path, dir_fd = bind_path(container_dir)
    try:
        sock.connect(path)
    except OSError as exc:
        sock.close()
        if exc.errno in (errno.ENOENT, errno.ECONNREFUSED):
            raise ContainerNotRunning(container_id) from exc
        raise
    finally:
        os.close(dir_fd)
    try:
        return Terminal.from_socket(sock)
    except OSError as exc:
        raise ContainerNotRunning(container_id) from exc


def resize_container(container_dir: str, container_id: str, rows: int, cols: int) -> None:
    """Set the window size of a running terminal container (docker's ``/resize``), whoever
    is attached."""
    term = connect(container_dir, container_id)
    try:
        term.resize(rows, cols)
    finally:
        term.close()


def keep_draining(master: int) -> None:
    """After an exec's client detached: hold its master (the command would get SIGHUP when
    the last master fd closes) and drop its output until it ends. A single-threaded caller
    (the CLI, which exits next) leaves a detached process doing it; a threaded one, a thread.
    The caller still closes its own ``master``."""
    fd = os.dup(master)
    if threading.active_count() != 1:
        threading.Thread(target=_drain, args=(fd,), daemon=True, name="exec-tty").start()
        return
    from ipydock.engine.runtime.detach import detach

    def run() -> None:
        null = os.open(os.devnull, os.O_RDWR)
        for target in (0, 1, 2):
            os.dup2(null, target)
        os.closerange(3, fd)
        os.closerange(fd + 1, 1 << 16)
        _drain(fd)

    try:
        detach(run)
    finally:
        os.close(fd)


def _drain(fd: int) -> None:
    with contextlib.suppress(OSError):
        while os.read(fd, _CHUNK):
            pass
    os.close(fd)


_CTRL = {"@": 0, "[": 27, "\\": 28, "]": 29, "^": 30, "_": 31}


class DetachKeys:
    """docker's ``--detach-keys`` (default ``ctrl-p,ctrl-q``): a sequence of ``a``-``z``,
    ``ctrl-a``..``ctrl-z``, ``ctrl-@``, ``ctrl-[``, ``ctrl-\\``, ``ctrl-]``, ``ctrl-^``,
    ``ctrl-_``. :meth:`feed` passes the input on, holding back a started sequence until it
    is complete (then: detach) or broken (then: the held bytes go on as typed)."""

    def __init__(self, spec: str = DEFAULT_DETACH_KEYS) -> None:
        self.keys = parse_detach_keys(spec)
        self.held = b""

    def feed(self, data: bytes) -> tuple[bytes, bool]:
        """(bytes to pass to the terminal, whether the sequence was typed)."""
        if not self.keys:
            return data, False
        out = bytearray()
        for byte in data:
            self.held += bytes([byte])
            if self.keys.startswith(self.held):
                if self.held == self.keys:
                    self.held = b""
                    return bytes(out), True
                continue
            out += self.held
            self.held = b""
        return bytes(out), False


def parse_detach_keys(spec: str) -> bytes:
    """``ctrl-p,ctrl-q`` -> ``b"\\x10\\x11"``; an empty spec disables detaching."""
    out = bytearray()
    for part in filter(None, (p.strip() for p in spec.split(","))):
        if len(part) == 1 and part.isalpha() or part in ("@",):
            out.append(ord(part))
            continue
        if part.lower().startswith("ctrl-") and len(part) == 6:
            key = part[5].lower()
            if "a" <= key <= "z":
                out.append(ord(key) - ord("a") + 1)
                continue
            if key in _CTRL:
                out.append(_CTRL[key])
                continue
        raise UsageError(f"invalid detach keys {spec!r}: use keys like ctrl-p,ctrl-q or ctrl-a,x")
    return bytes(out)
