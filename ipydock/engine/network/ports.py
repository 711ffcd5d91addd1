"""Published ports: the ``-p`` values the request layer read (:func:`ipydock.commands.runflags.
parse_publish`), and the proxy that serves them.

::

    supervisor, after wiring --fork--> proxy (one per container, dies with the supervisor)
        binds every host port before pid 1 execs (a taken port fails the start, as docker)
        accept on HOST_IP:HOST_PORT --connect--> CONTAINER_IP:CONTAINER_PORT, bytes both ways

A userland proxy, as docker's ``docker-proxy`` (which docker uses for 127.0.0.1 too): no
firewall rule to add or forget, nothing on the host outlives the container: the listening
sockets are the proxy's and it dies with the supervisor (parent-death signal) or at the
container's exit. TCP only; ``/udp`` is refused with what to use.
"""

from __future__ import annotations

import contextlib
import errno
import os
import selectors
import signal
import socket
from typing import Any

from ipydock.commands.runflags import Binding, parse_publish
from ipydock.errors import InvalidNetworkConfig, NotSupported

__all__ = ["Binding", "bind", "parse", "serve", "start_proxy"]


def parse(items: tuple[str, ...] | list[str]) -> list[Binding]:
    """``-p`` values (read by the request layer) that this engine can publish: TCP ones."""
    out = parse_publish(items)
    for b in out:
        if b.protocol != "tcp":
            raise NotSupported(f"-p {b.container_port}/{b.protocol}", "bundled",
                               "published ports are TCP in the bundled engine; use "
                               "--network host for UDP servers")  # fmt: skip
    return out


def to_host_config(bindings: list[Binding]) -> dict[str, list[dict[str, str]]]:
    """Docker's ``HostConfig.PortBindings``."""
    found: dict[str, list[dict[str, str]]] = {}
    for b in bindings:
        found.setdefault(b.key(), []).append(
            {"HostIp": b.host_ip, "HostPort": str(b.host_port) if b.host_port else ""}
        )
    return found


def from_host_config(port_bindings: dict[str, Any] | None) -> list[Binding]:
    out = []
    for key, hosts in sorted((port_bindings or {}).items()):
        number, _, proto = key.partition("/")
        for h in hosts or [{}]:
            out.append(Binding(int(number), proto or "tcp", h.get("HostIp") or "",
                               int(h.get("HostPort") or 0)))  # fmt: skip
    return out


def bind(bindings: list[Binding]) -> tuple[list[socket.socket], list[Binding]]:
    """Listening sockets for every binding (all or none); the bindings with real ports."""
    socks: list[socket.socket] = []
    bound: list[Binding] = []
    try:
        for b in bindings:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            socks.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((b.host_ip or "0.0.0.0", b.host_port))
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    where = f"{b.host_ip or '0.0.0.0'}:{b.host_port}"
                    why = f"Bind for {where} failed: port is already allocated (choose another)"
                    raise InvalidNetworkConfig("-p", why) from exc
                raise
            sock.listen(128)
            bound.append(Binding(b.container_port, b.protocol, b.host_ip,
                                 sock.getsockname()[1]))  # fmt: skip
    except BaseException:
        for sock in socks:
            sock.close()
        raise
    return socks, bound


def start_proxy(socks: list[socket.socket], bound: list[Binding], target: str) -> int:
    """Fork the proxy for ``target`` (the container's address); its pid. The caller closes
    its copies of the sockets."""
    from ipydock.engine.runtime.spawn import PR_SET_PDEATHSIG, prctl

    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            serve(list(zip(socks, [b.container_port for b in bound], strict=True)), target)
        except BaseException:  # noqa: BLE001 - never return into the supervisor
            code = 1
        finally:
            os._exit(code)
    return pid


def serve(listeners: list[tuple[socket.socket, int]], target: str) -> None:
    """Accept on each listener and copy bytes to and from ``target``:port, until killed."""
    sel = selectors.DefaultSelector()
    for sock, port in listeners:
        sock.setblocking(False)
        sel.register(sock, selectors.EVENT_READ, ("listen", port))
    peers: dict[socket.socket, socket.socket] = {}
    while True:
        for key, _ in sel.select():
            kind, data = key.data
            if kind == "listen":
                _accept(sel, key.fileobj, data, target, peers)  # type: ignore[arg-type]
            else:
                _pump(sel, key.fileobj, peers)  # type: ignore[arg-type]


def _accept(
    sel: selectors.BaseSelector, listener: socket.socket, port: int, target: str,
    peers: dict[socket.socket, socket.socket],
) -> None:  # fmt: skip
    try:
        client, _ = listener.accept()
    except BlockingIOError:
        return
    try:
        upstream = socket.create_connection((target, port), timeout=5)
    except OSError:
        client.close()  # nothing listens in the container: the caller sees a reset
        return
    for s in (client, upstream):
        s.setblocking(True)
        s.settimeout(None)
    peers[client], peers[upstream] = upstream, client
    sel.register(client, selectors.EVENT_READ, ("pipe", None))
    sel.register(upstream, selectors.EVENT_READ, ("pipe", None))


def _pump(
    sel: selectors.BaseSelector, sock: socket.socket, peers: dict[socket.socket, socket.socket]
) -> None:
    other = peers[sock]
    try:
        data = sock.recv(262144)
        if data:
            other.sendall(data)
            return
        sel.unregister(sock)
        with contextlib.suppress(OSError):
            other.shutdown(socket.SHUT_WR)
        if _done(sel, other):  # both directions ended
            _close(sel, sock, other, peers)
    except OSError:
        _close(sel, sock, other, peers)


def _done(sel: selectors.BaseSelector, sock: socket.socket) -> bool:
    try:
        sel.get_key(sock)
    except KeyError:
        return True
    return False


def _close(
    sel: selectors.BaseSelector, a: socket.socket, b: socket.socket,
    peers: dict[socket.socket, socket.socket],
) -> None:  # fmt: skip
    for s in (a, b):
        with contextlib.suppress(KeyError, ValueError):
            sel.unregister(s)
        peers.pop(s, None)
        s.close()
