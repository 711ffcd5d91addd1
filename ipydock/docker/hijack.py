"""Input over a hijacked connection: the socket ``exec_start(socket=True)`` and
``attach_socket`` return, fed from a file, then half-closed so the process sees end of input.

::

    source (bytes | file | descriptor) ──pump thread──> send_all(sock) ──> close_write(sock)
    sock ──docker.utils.socket.frames_iter──> (stream, data) frames, read by the caller

The SDK hands back whatever its transport holds: a ``socket.SocketIO`` (unix, plain TCP, and
``ssh://``, which ipydock reaches through a local socket: docker/sshtunnel.py) or an
``ssl.SSLSocket`` (TLS). Each is written and half-closed through its public methods or, where
those cannot (a ``SocketIO`` is opened for reading only), through a socket on
a duplicate of its descriptor; the half-close too, so a TLS stream stays readable
(``SSLSocket.shutdown`` would end it for reading as well).
"""

from __future__ import annotations

import contextlib
import os
import select
import socket
import threading
from collections.abc import Iterator
from typing import Any

__all__ = ["close_write", "pump", "send_all"]


@contextlib.contextmanager
def _sender(sock: Any) -> Iterator[Any]:
    """Something with ``sendall`` for the connection: the SDK's object when it has one (a
    TLS socket), else a socket on a duplicate of its descriptor (a ``SocketIO`` is
    opened for reading only), blocking, closed after (the connection stays open)."""
    if hasattr(sock, "sendall"):
        yield sock
        return
    with socket.socket(fileno=os.dup(sock.fileno())) as dup:
        dup.settimeout(None)
        yield dup


def send_all(sock: Any, data: bytes) -> None:
    """All of ``data`` to the connection."""
    with _sender(sock) as out:
        out.sendall(data)


def close_write(sock: Any) -> None:
    """End of input for the other side; reading goes on."""
    with socket.socket(fileno=os.dup(sock.fileno())) as dup, contextlib.suppress(OSError):
        dup.shutdown(socket.SHUT_WR)  # (suppressed: the other side went away already)


def _chunks(source: Any, stop: threading.Event) -> Any:
    """``source`` in pieces: bytes at once; a file's binary stream; a descriptor (or a file
    with one) read while ``stop`` is not set, so a terminal that never ends does not keep the
    thread reading after the process is gone."""
    if isinstance(source, (bytes, bytearray)):
        yield bytes(source)
        return
    fd = source if isinstance(source, int) else None
    if fd is None:  # a file read by its descriptor (a file object's own buffer is not read)
        with contextlib.suppress(AttributeError, OSError, ValueError):
            fd = source.fileno()
    if fd is None:  # an in-memory file
        stream = getattr(source, "buffer", source)
        while chunk := stream.read(1 << 16):
            yield chunk if isinstance(chunk, bytes) else chunk.encode()
        return
    while not stop.is_set():
        ready, _, _ = select.select([fd], [], [], 0.2)  # wake up to look at ``stop``
        if ready:
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                return
            yield chunk


def pump(sock: Any, source: Any) -> tuple[threading.Thread, threading.Event]:
    """Feed ``source`` to ``sock`` in a thread, then half-close it; set the event to stop
    reading a source that has not ended (the process finished first)."""
    stop = threading.Event()

    def run() -> None:
        with contextlib.suppress(OSError, ValueError), _sender(sock) as out:
            for chunk in _chunks(source, stop):  # ends early: the process ended, the socket closed
                out.sendall(chunk)
            close_write(sock)

    thread = threading.Thread(target=run, name="ipydock-stdin", daemon=True)
    thread.start()
    return thread, stop
