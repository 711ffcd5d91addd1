"""The embedded DNS server of user-defined networks, at 127.0.0.11 in each container (docker's).

::

    supervisor: setns(container netns) -> UDP socket bound to 127.0.0.11:53 -> setns(back)
                --fork--> resolver (dies with the supervisor, or at the container's exit)
    query "web" A --> the live endpoints of the container's user-defined networks
                      (name, alias, short ID, hostname)  --> answer, TTL 0
    any other name --> forwarded to the host's resolvers (/etc/resolv.conf), answer relayed

The socket lives in the container's netns although the resolver runs in the host's, so
forwarded queries leave from the host, as docker's do. Records are read at each query, so a
container that joins later, or a ``network connect``, is answered at once.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
from collections.abc import Callable
from typing import Any

__all__ = ["ADDRESS", "bind_in", "host_resolvers", "start_resolver"]

ADDRESS = "127.0.0.11"


def bind_in(pid: int) -> socket.socket:
    """A UDP socket on 127.0.0.11:53 inside the netns of ``pid`` (we stay in ours)."""
    from ipydock.engine.runtime.plan import CLONE_NEWNET
    from ipydock.engine.runtime.spawn import setns

    own = os.open("/proc/self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    theirs = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        setns(theirs, CLONE_NEWNET)
        try:
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.bind((ADDRESS, 53))
        finally:
            setns(own, CLONE_NEWNET)
    finally:
        os.close(own)
        os.close(theirs)
    return sock


def host_resolvers(path: str = "/etc/resolv.conf") -> list[str]:
    """The host's name servers that a container could not reach itself (any, in fact: the
    forwarder runs in the host's netns)."""
    found = []
    with contextlib.suppress(OSError), open(path) as f:
        for line in f:
            words = line.split()
            if len(words) >= 2 and words[0] == "nameserver":
                found.append(words[1])
    return found


def answer(query: bytes, lookup: Callable[[str], str | None]) -> bytes | None:
    """The reply to ``query`` from ``lookup`` (a name -> IPv4 or None); None: not ours."""
    from dnslib import QTYPE, RCODE, RR, A, DNSRecord

    request = DNSRecord.parse(query)
    q = request.q
    name = str(q.qname).rstrip(".")
    address = lookup(name)
    if address is None:
        return None
    reply = request.reply()
    if q.qtype in (QTYPE.A, QTYPE.ANY):
        reply.add_answer(RR(q.qname, QTYPE.A, rdata=A(address), ttl=0))
    elif q.qtype != QTYPE.AAAA:
        reply.header.rcode = RCODE.NOERROR
    return bytes(reply.pack())


def _forward(query: bytes, servers: list[str]) -> bytes | None:
    for server in servers:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(2)
            try:
                s.sendto(query, (server, 53))
                return s.recv(65535)
            except OSError:
                continue
    return None


def _refused(query: bytes) -> bytes | None:
    from dnslib import RCODE, DNSRecord

    try:
        reply = DNSRecord.parse(query).reply()
    except Exception:  # noqa: BLE001 - not DNS: no answer
        return None
    reply.header.rcode = RCODE.SERVFAIL
    return bytes(reply.pack())


def serve(sock: socket.socket, lookup: Callable[[str], str | None], servers: list[str]) -> None:
    while True:
        query, peer = sock.recvfrom(65535)
        try:
            reply = answer(query, lookup)
            if reply is None:
                reply = _forward(query, servers) or _refused(query)
        except Exception:  # noqa: BLE001 - a bad packet never stops the resolver
            reply = _refused(query)
        if reply is not None:
            with contextlib.suppress(OSError):
                sock.sendto(reply, peer)


def start_resolver(sock: socket.socket, lookup: Callable[[str], str | None]) -> int:
    """Fork the resolver on ``sock``; its pid (the caller closes its copy of the socket)."""
    from ipydock.engine.runtime.spawn import PR_SET_PDEATHSIG, prctl

    servers = host_resolvers()
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            serve(sock, lookup, servers)
        except BaseException:  # noqa: BLE001 - never return into the supervisor
            code = 1
        finally:
            os._exit(code)
    return pid


def lookup_for(nets: Any, cid: str) -> Callable[[str], str | None]:
    """Names on the user-defined networks of ``cid``, read from the live endpoints."""

    def lookup(name: str) -> str | None:
        wanted = name.lower()
        for net in nets.all():
            if net["Name"] == "bridge":
                continue
            eps = nets.endpoints(net)
            if cid not in eps:
                continue
            for ep in eps.values():
                if ep.get("Root") != nets.root:
                    continue
                names = {ep["Name"], *ep.get("Aliases", []), ep["Container"][:12],
                         ep.get("Hostname", "")}  # fmt: skip
                if wanted in {n.lower() for n in names if n}:
                    return str(ep["IPv4"])
        return None

    return lookup
