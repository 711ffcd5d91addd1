"""Fixtures for network tests (root, real netlink): links named for this suite, and a check
after every test that no bridge, veth or endpoint of it is left."""

from __future__ import annotations

import contextlib
import os
import socket
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest

from ipydock.backends import BundledBackend
from ipydock.engine.network import bridge, netlink
from ipydock.models import RunOptions
from tests.conftest import require

PREFIX = f"ipdn{os.getpid() % 1000:03d}"  # one per session: two runs may overlap
NET = f"10.{150 + os.getpid() % 100}"  # the first two octets of the tests' fixed subnets


def mine() -> set[str]:
    """This session's links (bridges ``PREFIX-ID``, veths ``PREFIXvHASH``)."""
    return {n for n in netlink.link_names() if n.startswith(PREFIX)} - {bridge.default_bridge()}


@pytest.fixture
def net_backend(backend: BundledBackend, busybox: str, monkeypatch) -> Iterator[BundledBackend]:
    """A backend whose bridges and veths are named ``ipdn…``; afterwards every container and
    network is removed and nothing of them may be left in the kernel or the run dir."""
    require(os.geteuid() == 0, "bridge networks need root")
    monkeypatch.setenv("IPYDOCK_LINK_PREFIX", PREFIX)
    before = mine()
    try:
        yield backend
    finally:
        for c in backend.containers(all=True):
            backend.remove_container(c.id, force=True)
        backend.prune_networks()
        backend.close()
    assert mine() == before
    assert not [r for t in ("filter", "nat") for r in iptables_rules(t) if PREFIX in r]
    for net in bridge.Networks(backend.store.root).all():
        assert bridge.Networks(backend.store.root).endpoints(net) == {}
    assert backend.networks(filters=["type=custom"]) == []


def iptables_rules(table: str = "filter") -> list[str]:
    """The host's rules of ``table`` (iptables -S), or [] without iptables."""
    import shutil
    import subprocess

    if shutil.which("iptables") is None:
        return []
    proc = subprocess.run(["iptables", "-w", "-t", table, "-S"], capture_output=True, text=True,
                          check=True)  # fmt: skip
    return proc.stdout.splitlines()


Run = Callable[..., tuple[int, str]]


@pytest.fixture
def run(net_backend: BundledBackend) -> Run:
    """Run a command to its end in a throwaway container: (exit code, stdout + stderr)."""

    def go(*command: str, **opts: object) -> tuple[int, str]:
        out: list[str] = []
        result = net_backend.run(RunOptions("busybox", command, auto_remove=True, **opts),  # type: ignore[arg-type]
                                 output=lambda _s, text: out.append(text))  # fmt: skip
        return int(result.exit_code or 0), "".join(out)

    return go


Exec = Callable[..., tuple[int, str]]


@pytest.fixture
def exec_in(net_backend: BundledBackend) -> Exec:
    """Run a command in a running container: (exit code, stdout + stderr)."""

    def go(container: str, *command: str) -> tuple[int, str]:
        with tempfile.TemporaryFile("w+") as f:
            code = net_backend.exec(container, list(command), stdout=f, stderr=f)
            f.seek(0)
            return code, f.read()

    return go


def netns_socket(netns: str, kind: int = socket.SOCK_STREAM) -> socket.socket:
    """A socket made inside the network namespace ``netns`` (a /proc/PID/ns/net path); this
    thread goes back to its own namespace at once, the socket stays in that one."""
    from ipydock.engine.runtime.plan import CLONE_NEWNET
    from ipydock.engine.runtime.spawn import setns

    own = os.open("/proc/self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    theirs = os.open(netns, os.O_RDONLY | os.O_CLOEXEC)
    try:
        setns(theirs, CLONE_NEWNET)
        try:
            return socket.socket(socket.AF_INET, kind)
        finally:
            setns(own, CLONE_NEWNET)
    finally:
        os.close(own)
        os.close(theirs)


@dataclass
class Outside:
    """A host "outside" this one: a network namespace joined to the host by a veth pair, with
    test addresses (``host_ip`` on the host's end, ``ip`` on its own), routed through the
    host. Nothing leaves the machine."""

    pid: int
    link: str
    host_ip: str
    ip: str

    @property
    def netns(self) -> str:
        return f"/proc/{self.pid}/ns/net"

    def serve_peer(self, port: int) -> None:
        """A TCP server on ``ip:port`` that answers each connection with the caller's address
        as it sees it (so a test can tell NAT happened), in a thread."""
        srv = netns_socket(self.netns)
        srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        srv.bind((self.ip, port))
        srv.listen(8)

        def loop() -> None:
            with srv:
                while True:
                    try:
                        conn, peer = srv.accept()
                    except OSError:
                        return
                    with conn:
                        conn.sendall(f"{peer[0]}\n".encode())

        threading.Thread(target=loop, daemon=True).start()
        self._servers.append(srv)

    def connect(self, ip: str, port: int, kind: int = socket.SOCK_STREAM) -> socket.socket:
        """A socket of this host connected to ``ip:port``."""
        sock = netns_socket(self.netns, kind)
        sock.settimeout(10)
        sock.connect((ip, port))
        return sock

    _servers: list[socket.socket] = field(default_factory=list)


@pytest.fixture
def outside(net_backend: BundledBackend) -> Iterator[Outside]:
    """The test's outside host (see :class:`Outside`), gone afterwards with its veth."""
    with netns_holder() as pid:
        yield from _outside(pid)


def _outside(pid: int) -> Iterator[Outside]:
    from pyroute2 import IPRoute

    base = f"{NET}.200"
    out = Outside(pid, f"{PREFIX}o", f"{base}.1", f"{base}.2")
    try:
        fd = os.open(out.netns, os.O_RDONLY | os.O_CLOEXEC)
        try:
            with IPRoute() as ip:
                ip.link("add", ifname=out.link, kind="veth", peer={"ifname": "eth0",
                                                                   "net_ns_fd": fd})  # fmt: skip
                index = ip.link_lookup(ifname=out.link)[0]
                ip.addr("add", index=index, address=out.host_ip, prefixlen=24)
                ip.link("set", index=index, state="up")
        finally:
            os.close(fd)
        with IPRoute(netns=out.netns) as ns:
            for name in ("lo", "eth0"):
                ns.link("set", index=ns.link_lookup(ifname=name)[0], state="up")
            eth0 = ns.link_lookup(ifname="eth0")[0]
            ns.addr("add", index=eth0, address=out.ip, prefixlen=24)
            ns.route("add", dst="0.0.0.0/0", gateway=out.host_ip)
        yield out
    finally:
        for srv in out._servers:
            srv.close()
        netlink.delete_link(out.link)


@contextlib.contextmanager
def netns_holder() -> Iterator[int]:
    """A process that holds a new network namespace for the block: its pid
    (``/proc/PID/ns/net``); at the end it exits and is reaped (its namespace goes)."""
    from ipydock.engine.runtime.plan import CLONE_NEWNET
    from ipydock.engine.runtime.spawn import unshare

    r, w = os.pipe()
    ready_r, ready_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # lives until the pipe closes
        try:
            os.close(w)
            unshare(CLONE_NEWNET)
            os.write(ready_w, b"k")
            os.read(r, 1)
        finally:
            os._exit(0)
    os.close(r)
    os.close(ready_w)
    try:
        assert os.read(ready_r, 1) == b"k", "the namespace was not made"
        yield pid
    finally:
        os.close(w)
        os.close(ready_r)
        os.waitpid(pid, 0)
