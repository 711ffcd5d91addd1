"""Messages between the runtime client and the fork-server helper: JSON plus passed fds.

Both ends use ``SOCK_SEQPACKET`` unix sockets, so one ``send`` is one message and fds ride along
with ``SCM_RIGHTS``. Received fds are close-on-exec, so a container never inherits another's.

Control socket (client -> helper), one message per container::

    {"op": "spawn", "plan": {...}, "paused": bool}   fds: [status_sock, stdin, stdout, stderr]

Status socket (one socketpair per container, helper <-> that container's handle)::

    helper -> client  {"event": "ready",   "pid": N}          fds: [pidfd]   (paused only)
                      {"event": "started", "pid": N}          fds: [pidfd]   (unless ready sent)
                      {"event": "failed",  "error": {...}}    setup failed; "exited" follows
                      {"event": "exited",  "status": raw}     wait status of pid 1
    client -> helper  {"op": "start"}                                         (after "ready")

Closing the status socket before "exited" tells the helper nobody will wait: it kills the
container and reaps it, so a dropped handle leaks nothing.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Sequence
from typing import Any

__all__ = ["MAX_FDS", "recv", "send"]

MAX_FDS = 8
_BUFSIZE = 1 << 20


def send(sock: socket.socket, message: dict[str, Any], fds: Sequence[int] = ()) -> None:
    data = json.dumps(message, separators=(",", ":")).encode()
    if fds:
        socket.send_fds(sock, [data], list(fds))
    else:
        sock.send(data)


def recv(sock: socket.socket) -> tuple[dict[str, Any] | None, list[int]]:
    """One message and its fds; ``(None, [])`` when the peer has closed."""
    data, fds, _flags, _addr = socket.recv_fds(sock, _BUFSIZE, MAX_FDS, socket.MSG_CMSG_CLOEXEC)
    if not data:
        for fd in fds:
            socket.close(fd)
        return None, []
    return json.loads(data), fds
