"""Published ports: the ``-p`` values the request layer read (:func:`ipydock.commands.runflags.
parse_publish`), the host ports they hold, and the kernel rules that forward them.

::

    supervisor, after wiring (before pid 1 execs):
      bind()   HOST_IP:HOST_PORT/tcp|udp on the host: a port that is taken fails the start
               with docker's message; ``-p 80`` gets a free port from the kernel; the
               sockets are held (never read) as long as the supervisor lives
      rules    nat IPYDOCK (from PREROUTING and OUTPUT, dst-type LOCAL):
               HOST_PORT -> DNAT -> CONTAINER_IP:PORT       (firewall.port_rules)
    pid 1 exits -> the rules go, the sockets close. A SIGKILL leaves rules that point at
    nothing: the next start of a container with ports, and ``system check --repair``,
    drop every rule whose pid 1 (named in its comment) is gone.

The kernel does the forwarding, for traffic from other hosts (PREROUTING) and from this host
(OUTPUT), 127.0.0.1 included: no copy loop on the data path, so a published port is as fast
as the bridge, UDP works, and the container sees the real client address from other hosts.
docker serves 127.0.0.1 with its userland ``docker-proxy`` by default (because DNAT of
loopback needs ``route_localnet``); we set ``route_localnet`` on our bridges only (never on
``lo`` or the host's interfaces) and MASQUERADE what leaves them from a local source, which is
dockerd's own rule set with ``--userland-proxy=false``: one path for every client, no proxy
process per container, and the throughput of the kernel rather than of a copying process.
"""

from __future__ import annotations

import errno
import socket
from typing import Any

from ipydock.commands.runflags import Binding, parse_publish
from ipydock.errors import InvalidNetworkConfig, NotSupported

__all__ = ["Binding", "bind", "from_host_config", "parse", "to_host_config"]


def parse(items: tuple[str, ...] | list[str]) -> list[Binding]:
    """``-p`` values (read by the request layer) that this engine can publish: TCP, UDP."""
    out = parse_publish(items)
    for b in out:
        if b.protocol not in ("tcp", "udp"):
            raise NotSupported(f"-p {b.container_port}/{b.protocol}", "bundled",
                               "published ports are TCP or UDP in the bundled engine")  # fmt: skip
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
    """Hold every host port (all or none): the sockets, and the bindings with real ports."""
    socks: list[socket.socket] = []
    bound: list[Binding] = []
    try:
        for b in bindings:
            tcp = b.protocol == "tcp"
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM if tcp else socket.SOCK_DGRAM)
            socks.append(sock)
            if tcp:  # a port in TIME_WAIT of an earlier container can be held again
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((b.host_ip or "0.0.0.0", b.host_port))
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    where = f"{b.host_ip or '0.0.0.0'}:{b.host_port}"
                    why = f"Bind for {where} failed: port is already allocated (choose another)"
                    raise InvalidNetworkConfig("-p", why) from exc
                raise
            if tcp:
                sock.listen(1)  # holds the port against other listeners; DNAT comes first
            bound.append(Binding(b.container_port, b.protocol, b.host_ip,
                                 sock.getsockname()[1]))  # fmt: skip
    except BaseException:
        for sock in socks:
            sock.close()
        raise
    return socks, bound


def rules(owner: tuple[int, int], target: str, bound: list[Binding]) -> list[str]:
    """The DNAT rules of ``bound`` to the container's address ``target``."""
    from ipydock.engine.network import firewall

    return firewall.port_rules(owner, target, [(b.protocol, b.host_ip, b.host_port,
                                                b.container_port) for b in bound])  # fmt: skip
