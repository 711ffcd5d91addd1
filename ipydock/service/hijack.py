"""The hijacked connection of ``attach`` and ``exec``: after ``101 UPGRADED`` the HTTP
connection is a plain two-way byte stream (docker's ``Upgrade: tcp``).

::

    client --POST …/attach  Upgrade: tcp-->  tornado  --101, then detach()-->  Hijacked
       stdin bytes  ------------------------------------------------------>  pump_stdin(fd)
       <-- frame(1|2, bytes) (no terminal) | raw bytes (a terminal: tty=True) --  send()
       client half-closes (CloseWrite) --> stdin EOF; output goes on until the process ends

Why tornado: its ``RequestHandler.detach()`` hands over the connection's stream after the
handshake, documented and used by its own websockets, and tornado is already installed with
jupyter_server. Its IOStream closes the whole socket when a read sees EOF, but docker's client
half-closes after stdin ends and still waits for the output; so the socket is taken out of
tornado (a duplicate descriptor) into asyncio's streams, which keep writing after a read EOF.
aiohttp's upgraded requests close the transport on EOF as well, and would add a dependency.

A terminal (``tty=True``) is the same connection without framing: the pseudo-terminal's
master is pumped both ways, and ``/resize`` is a separate request; that plugs in here.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from typing import TYPE_CHECKING

from ipydock.service.base import frame

if TYPE_CHECKING:
    from ipydock.service.base import Handler

__all__ = ["Hijacked", "hijack"]

#: dockerd answers API 1.41 with this type, framed or not (the client knows from ``Tty``).
RAW_STREAM = "application/vnd.docker.raw-stream"


class Hijacked:
    """The connection after the handshake: ``send`` output, ``pump_stdin`` the client's bytes."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, early: bytes, tty: bool
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.early = early  # bytes the HTTP layer had read past the request already
        self.tty = tty
        self.closed = False

    async def send(self, stream: int, data: bytes) -> bool:
        """Write output of ``stream`` (1 stdout, 2 stderr); False once the client is gone."""
        if self.closed or not data:
            return not self.closed
        try:
            self.writer.write(data if self.tty else frame(stream, data))
            await self.writer.drain()
        except (ConnectionError, OSError):
            self.closed = True
        return not self.closed

    async def pump_stdin(self, fd: int | None) -> None:
        """The client's bytes into ``fd`` (a pipe's write end, closed at the end) until the
        client half-closes or goes; without ``fd`` the bytes are read and dropped."""
        loop = asyncio.get_running_loop()
        try:
            data = self.early
            while True:
                if data and fd is not None:
                    try:
                        await loop.run_in_executor(None, _write_all, fd, data)
                    except OSError:  # the process closed its stdin: nothing more to give
                        _close(fd)
                        fd, data = None, b""
                try:
                    data = await self.reader.read(65536)
                except (ConnectionError, OSError):
                    data = b""
                if not data:
                    return
        finally:
            _close(fd)

    async def close(self) -> None:
        if self.closed:
            with contextlib.suppress(Exception):
                self.writer.close()
            return
        self.closed = True
        with contextlib.suppress(Exception):
            self.writer.close()
            await self.writer.wait_closed()


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _close(fd: int | None) -> None:
    if fd is not None:
        with contextlib.suppress(OSError):
            os.close(fd)


async def hijack(h: Handler, *, tty: bool = False) -> Hijacked:
    """Answer the handshake (``101 UPGRADED`` when the client asked for ``Upgrade: tcp``,
    else ``200`` and a raw stream until close) and take the connection from tornado."""
    upgrade = h.request.headers.get("Upgrade", "").lower() == "tcp"
    h.set_header("Content-Type", RAW_STREAM)
    if upgrade:
        h.set_status(101)
        h.set_header("Connection", "Upgrade")
        h.set_header("Upgrade", "tcp")
        h.finish()
        stream = h.detach()
    else:  # an old client: the answer's headers by hand, then the stream until we close
        stream = h.detach()
        stream.write(f"HTTP/1.1 200 OK\r\nContent-Type: {RAW_STREAM}"
                     "\r\nConnection: close\r\n\r\n".encode())  # fmt: skip
    await stream.write(b"")  # the handshake is on the wire
    size = getattr(stream, "_read_buffer_size", 0)
    early = bytes(stream._read_buffer[:size]) if size else b""  # type: ignore[attr-defined]
    sock: socket.socket = stream.socket  # type: ignore[assignment]
    dup = socket.socket(sock.family, sock.type, sock.proto, fileno=os.dup(sock.fileno()))
    stream.close()  # tornado lets go of its descriptor; ours keeps the connection
    reader, writer = await asyncio.open_connection(sock=dup, limit=1 << 20)
    return Hijacked(reader, writer, early, tty)
