"""Containers and execs with ``Tty: true``: the engine's terminal spliced to the hijacked
connection, as ``docker run -it`` and ``docker exec -it`` use them.

::

    docker run -it:  create (Tty) ──> attach (hijacked, raw) ──waits──> start
                     start ──> backend.start_terminal(id) ──session──> the waiting attach
                     attach: terminal.read() ──raw bytes──> client;  client keys ──> master
                     /resize?h=&w= ──> backend.resize_container(id, h, w)
                     the run's end ──> session.wait() ──> exit code (events, /wait)
    docker start (no attach), docker run -dt:  start_terminal, then release(): the supervisor
                     keeps the terminal (and logs what it shows); ``attach`` later splices it
    docker exec -it: /exec/{id}/start (Tty) ──> backend.exec_terminal(...) ──> splice;
                     /exec/{id}/resize ──> that session's terminal

The engine's handle is :mod:`ipydock.engine.containers.terminal`; nothing here parses or keeps
more than the session of a connection that is open.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import threading
from typing import TYPE_CHECKING, Any

from ipydock.service.hijack import Hijacked

if TYPE_CHECKING:
    from ipydock.engine.containers.terminal import TerminalSession

__all__ = ["splice", "wait_in_thread"]


async def splice(conn: Hijacked, session: TerminalSession) -> bool:
    """Relay the terminal and the client until the terminal ends (True) or the client goes
    (False: the caller detaches)."""
    loop = asyncio.get_running_loop()
    term = session.terminal
    queue: asyncio.Queue[bytes] = asyncio.Queue()

    def read() -> None:
        data = b""
        try:
            while data := term.read():
                loop.call_soon_threadsafe(queue.put_nowait, data)
        except (OSError, ValueError):  # closed under us: the client left and we detached
            data = b""
        finally:
            loop.call_soon_threadsafe(queue.put_nowait, b"")

    # before the reader starts: a command that ends at once (`run -t … tty`) has the reader
    # see the end and close the terminal under a later dup
    keys_fd = os.dup(term.master)
    threading.Thread(target=read, daemon=True, name="ipydock-tty-out").start()
    keys = asyncio.ensure_future(conn.pump_stdin(keys_fd))  # keys straight in
    try:
        while data := await queue.get():
            if not await conn.send(1, data):
                break
        else:
            return True
        if term.stream is not None:  # wake the reader: the caller detaches
            with contextlib.suppress(OSError):
                term.stream.shutdown(socket.SHUT_RDWR)
        return False
    finally:
        keys.cancel()


def wait_in_thread(loop: asyncio.AbstractEventLoop, session: TerminalSession,
                   done: Any) -> None:  # fmt: skip
    """The session's exit code on a thread (its waiter: the terminal stays open for the
    attach that relays it, which may not have started yet); ``done(code)`` back on the loop."""

    def wait() -> None:
        try:
            code = session.waiter()  # the terminal is the attach's to close (splice)
        except Exception:  # noqa: BLE001 - the record has the state; 137 as a lost run
            code = 137
        loop.call_soon_threadsafe(done, code)

    threading.Thread(target=wait, daemon=True, name="ipydock-tty-wait").start()
