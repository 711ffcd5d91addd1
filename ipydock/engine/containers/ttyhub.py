"""The supervisor's side of a container's terminal: it holds the master, logs what the terminal
shows, and serves it to whoever attaches.

A terminal container (``Config.Tty``, ``run -t``) has one pseudo-terminal per run, made inside
the container (``runtime/console.py``); its master is held here, by the container's
supervisor, so the terminal outlives any client (a CLI that detached, a killed kernel, the API
service restarting) and ``attach`` later finds the same terminal::

    clients (CLI, API service) ──connect──> <container dir>/attach.sock   (or the starter's own
                                             socket, connected before pid 1 exists: nothing of
                                             the first prompt is lost)
        <── "terminal" + the master fd (SCM_RIGHTS): input is written to it, resize = ioctl
        <── output, one SEQPACKET message per read of the master
        ──> "size ROWS COLS" (optional; also the starter's first message: the initial size)
        EOF both ways: the run ended (the client then asks for the exit code) / it detached
    master ──read──> LineSplitter("stdout") ──> <id>-json.log (docker logs a tty as stdout)

Output is never held back for a slow client: each client's socket is non-blocking with a
queue of its own; one that falls 1 MiB behind is dropped (its CLI sees the end of the stream and
re-attaches). The socket is bound through ``/proc/self/fd/N/attach.sock`` of the container's
directory, so a long store path does not meet the 108-byte limit of unix socket paths.
The client side is :mod:`ipydock.engine.containers.terminal`.
"""

from __future__ import annotations

import contextlib
import errno
import os
import selectors
import socket
from collections import deque

from ipydock.engine.containers.logs import LineSplitter
from ipydock.engine.runtime import console

__all__ = ["ATTACH_SOCKET", "MARK", "TerminalHub", "bind_path", "read_size"]

#: The listening socket in the container's directory.
ATTACH_SOCKET = "attach.sock"
MARK = b"terminal"
_MAX_BEHIND = 1 << 20
_CHUNK = 65536


def bind_path(container_dir: str) -> tuple[str, int]:
    """(a short path naming ``attach.sock`` in ``container_dir``, the dir fd to close after)."""
    fd = os.open(container_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    return f"/proc/self/fd/{fd}/{ATTACH_SOCKET}", fd


def read_size(message: bytes) -> tuple[int, int] | None:
    """(rows, cols) of a ``size ROWS COLS`` message, None for anything else."""
    words = message.split()
    if len(words) == 3 and words[0] == b"size" and words[1].isdigit() and words[2].isdigit():
        return int(words[1]), int(words[2])
    return None


class _Client:
    def __init__(self, sock: socket.socket) -> None:
        sock.setblocking(False)
        self.sock = sock
        self.queue: deque[bytes] = deque()
        self.behind = 0


class TerminalHub:
    """One run's terminal in the supervisor: register it with the supervisor's selector,
    hand it the events of the fds it owns, :meth:`close` it when pid 1 has exited."""

    def __init__(
        self, master: int, container_dir: str, splitter: LineSplitter,
        starter: socket.socket | None = None,
    ) -> None:  # fmt: skip
        self.master = master
        self.splitter = splitter
        self.dir = container_dir
        self.clients: dict[int, _Client] = {}
        self.sel: selectors.BaseSelector | None = None
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
        path, dir_fd = bind_path(container_dir)
        old_umask = os.umask(0o077)  # the terminal is the container's: its owner's alone
        try:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join(container_dir, ATTACH_SOCKET))  # a previous run's
            self.listener.bind(path)
        finally:
            os.umask(old_umask)
            os.close(dir_fd)
        self.listener.listen(8)
        self.listener.setblocking(False)
        self.master_open = True
        if starter is not None:
            self._add(starter)

    def fds(self) -> set[int]:
        return {self.master, self.listener.fileno(), *self.clients}

    def register(self, sel: selectors.BaseSelector) -> None:
        self.sel = sel
        sel.register(self.master, selectors.EVENT_READ)
        sel.register(self.listener, selectors.EVENT_READ)
        for fd in self.clients:
            sel.register(fd, self._mask(self.clients[fd]))

    def handle(self, fd: int, mask: int) -> None:
        if fd == self.master:
            self._read_master()
        elif fd == self.listener.fileno():
            with contextlib.suppress(BlockingIOError, InterruptedError):
                conn, _ = self.listener.accept()
                self._add(conn)
        elif fd in self.clients:
            client = self.clients[fd]
            if mask & selectors.EVENT_READ:
                self._from_client(client)
            if fd in self.clients and mask & selectors.EVENT_WRITE:
                self._flush(client)

    def drain(self) -> None:
        """pid 1 is gone (and its namespace with it): read what the terminal still holds, up
        to EIO (no slave left; the kernel flushes the pending output before saying so), or
        EAGAIN (PRoot's tracees may outlive it, holding the slave: not waited for)."""
        if self.master_open and self.sel is not None:
            with contextlib.suppress(KeyError):
                self.sel.unregister(self.master)
        os.set_blocking(self.master, False)
        with contextlib.suppress(BlockingIOError):
            while self.master_open:
                self._read_master()
        self.splitter.flush()

    def close(self) -> None:
        """End of the run: the last output to every client (a bounded wait each), then EOF."""
        for fd, client in list(self.clients.items()):
            client.sock.settimeout(5)
            with contextlib.suppress(OSError):
                while client.queue:
                    client.sock.send(client.queue.popleft())
            self._drop(fd)
        if self.sel is not None:
            with contextlib.suppress(KeyError, ValueError):
                self.sel.unregister(self.listener)
        self.listener.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(self.dir, ATTACH_SOCKET))
        os.close(self.master)

    # -- internals ------------------------------------------------------------------------

    def _add(self, sock: socket.socket) -> None:
        try:
            socket.send_fds(sock, [MARK], [self.master])
        except OSError:
            sock.close()
            return
        client = _Client(sock)
        self.clients[sock.fileno()] = client
        if self.sel is not None:
            self.sel.register(sock.fileno(), selectors.EVENT_READ)

    def _read_master(self) -> None:
        try:
            data = os.read(self.master, _CHUNK)
        except OSError as exc:  # EIO: every slave fd is closed (the run is over)
            if exc.errno not in (errno.EIO, errno.EBADF):
                raise
            data = b""
        if not data:
            self.master_open = False
            if self.sel is not None:
                with contextlib.suppress(KeyError, ValueError):
                    self.sel.unregister(self.master)
            return
        self.splitter.feed(data)
        for fd, client in list(self.clients.items()):
            client.queue.append(data)
            client.behind += len(data)
            if client.behind > _MAX_BEHIND:
                self._drop(fd)
            else:
                self._flush(client)

    def _from_client(self, client: _Client) -> None:
        try:
            message = client.sock.recv(256)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            message = b""
        if not message:
            self._drop(client.sock.fileno())
            return
        size = read_size(message)
        if size is not None:
            with contextlib.suppress(OSError):
                console.set_size(self.master, *size)

    def _flush(self, client: _Client) -> None:
        try:
            while client.queue:
                sent = client.sock.send(client.queue[0])
                client.behind -= sent
                client.queue.popleft()
        except (BlockingIOError, InterruptedError):
            pass
        except OSError:
            self._drop(client.sock.fileno())
            return
        if self.sel is not None:
            self.sel.modify(client.sock.fileno(), self._mask(client))

    @staticmethod
    def _mask(client: _Client) -> int:
        return selectors.EVENT_READ | (selectors.EVENT_WRITE if client.queue else 0)

    def _drop(self, fd: int) -> None:
        client = self.clients.pop(fd, None)
        if client is None:
            return
        if self.sel is not None:
            with contextlib.suppress(KeyError, ValueError):
                self.sel.unregister(fd)
        client.sock.close()
