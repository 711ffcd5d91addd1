"""The Docker Engine API (1.41) served by the bundled engine: ``ipydock system service``.

::

    docker CLI / docker SDK / docker-compose
        | HTTP/1.1 on a unix socket (0660 root, 0600 a user) or tcp://127.0.0.1:PORT
        v
    routes.App (tornado) --/vX.Y/ checked once--> the route table (routes.ROUTES)
        |  system.py images.py containers.py execs.py volumes.py   (thin handlers)
        |  convert.py: docker's JSON <-> RunOptions and the models (pure)
        |  hijack.py: attach/exec over the upgraded connection (stdin in, frames out)
        v
    BundledBackend (the same calls the CLI makes) --> the store (shared with %container)

Errors are translated once (:func:`ipydock.service.base.status` and ``docker_message``);
the service remembers only what dockerd keeps in memory (:mod:`ipydock.service.state`).

Why tornado: see :mod:`ipydock.service.hijack` (a documented ``detach()`` for the hijacked
connection; already installed with jupyter_server).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
from typing import Any

__all__ = ["default_uri", "serve"]


def default_uri() -> str:
    """``/run/ipydock/docker.sock`` for root, ``$XDG_RUNTIME_DIR/ipydock/docker.sock`` else."""
    if os.geteuid() == 0:
        return "unix:///run/ipydock/docker.sock"
    base = os.environ.get("XDG_RUNTIME_DIR") or f"/tmp/ipydock-{os.geteuid()}"
    return f"unix://{os.path.join(base, 'ipydock', 'docker.sock')}"


def _listen(uri: str) -> tuple[list[socket.socket], str | None]:
    """Bound sockets for ``uri`` (unix://PATH or tcp://HOST:PORT) and the unix path."""
    from tornado import netutil

    from ipydock.errors import UsageError

    if uri.startswith("unix://") or uri.startswith("/"):
        path = uri.removeprefix("unix://")
        if not path.startswith("/"):
            raise UsageError(f"unix socket path must be absolute: {uri}")
        os.makedirs(os.path.dirname(path), mode=0o755 if os.geteuid() == 0 else 0o700,
                    exist_ok=True)  # fmt: skip
        mode = 0o660 if os.geteuid() == 0 else 0o600
        try:
            return [netutil.bind_unix_socket(path, mode=mode)], path
        except OSError as exc:
            raise UsageError(f"cannot listen on {path}: {exc.strerror} (is another service "
                             "running there?)") from exc  # fmt: skip
    if uri.startswith("tcp://"):
        host, _, port = uri.removeprefix("tcp://").rpartition(":")
        if not port.isdigit():
            raise UsageError(f"invalid address {uri!r}: use tcp://127.0.0.1:PORT")
        try:
            return netutil.bind_sockets(int(port), host or "127.0.0.1"), None
        except OSError as exc:
            raise UsageError(f"cannot listen on {uri}: {exc.strerror}") from exc
    raise UsageError(f"invalid address {uri!r}: use unix:///PATH or tcp://127.0.0.1:PORT")


def serve(backend: Any, uri: str | None = None, *, idle: float = 5.0,
          ready: Any = None) -> None:  # fmt: skip
    """Serve the API for ``backend`` on ``uri`` until SIGTERM/SIGINT, or ``idle`` seconds
    without a request (0: never). ``ready(address)`` is called once it listens."""
    asyncio.run(_serve(backend, uri or default_uri(), idle, ready))


async def _serve(backend: Any, uri: str, idle: float, ready: Any) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from tornado.httpserver import HTTPServer

    from ipydock.service.events import Events
    from ipydock.service.routes import App
    from ipydock.service.state import Service

    sockets, path = _listen(uri)
    done = asyncio.Event()
    tmp_dir = backend.store.tmp_dir
    os.makedirs(tmp_dir, exist_ok=True)
    service = Service(backend, tmp_dir, idle, done.set)
    service.events = Events(backend)
    server = HTTPServer(App({"service": service}), idle_connection_timeout=3600,
                        body_timeout=3600)  # fmt: skip
    server.add_sockets(sockets)
    loop = asyncio.get_running_loop()
    # engine calls block (a wait, an exec, a stop): threads enough that a few long ones never
    # keep the short ones waiting (the default pool has cpu_count + 4)
    loop.set_default_executor(ThreadPoolExecutor(256, thread_name_prefix="ipydock-service"))
    # Python-level handlers, not loop.add_signal_handler: that one listens on a wakeup fd which
    # children forked by the engine (pyroute2's netns helper) share, so a signal sent to such a
    # child would stop the service
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda _n, _f: loop.call_soon_threadsafe(done.set))
    service.arm()
    if ready is not None:
        ready(uri)
    try:
        await done.wait()
    finally:
        server.stop()
        service.events.close()
        if path is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
        close = getattr(backend, "close", None)
        if close is not None:
            close()
