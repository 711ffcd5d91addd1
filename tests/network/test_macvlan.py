"""macvlan networks: containers appear on a parent interface with their own MAC (the parent
is a ``dummy`` link the test makes; a peer is a network namespace with its own macvlan on
the same parent)."""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from ipydock.errors import InvalidNetworkConfig
from tests.network.conftest import NET, PREFIX, netns_holder, netns_socket

pytestmark = pytest.mark.root


@pytest.fixture
def parent(net_backend) -> Iterator[str]:
    """A dummy interface of this test, up; deleted afterwards (its macvlans go with it).
    A kernel without the dummy driver gets a veth pair's end instead (macvlans in bridge
    mode on one parent talk to each other the same way)."""
    from pyroute2 import IPRoute, NetlinkError

    from ipydock.engine.network import netlink

    name = f"{PREFIX}d"
    with IPRoute() as ip:
        try:
            ip.link("add", ifname=name, kind="dummy")
        except NetlinkError as exc:
            if exc.code != errno.EOPNOTSUPP:
                raise
            ip.link("add", ifname=name, kind="veth", peer=f"{PREFIX}e")
            ip.link("set", index=ip.link_lookup(ifname=f"{PREFIX}e")[0], state="up")
        ip.link("set", index=ip.link_lookup(ifname=name)[0], state="up")
    try:
        yield name
    finally:
        netlink.delete_link(name)


def test_containers_get_their_own_mac_on_the_parent(net_backend, run, parent) -> None:
    import threading
    from ipaddress import IPv4Address

    from pyroute2 import IPRoute

    from ipydock.engine.network import netlink

    b = net_backend
    net = b.create_network("ipdn-mv", driver="macvlan", subnet=f"{NET}.14.0/24",
                           options={"parent": parent})  # fmt: skip
    assert (net.driver, net.options["parent"]) == ("macvlan", parent)
    assert b.inspect_network("ipdn-mv").driver == "macvlan"
    peer_ip = f"{NET}.14.200"
    with netns_holder() as pid:
        netns = f"/proc/{pid}/ns/net"
        fd = os.open(netns, os.O_RDONLY | os.O_CLOEXEC)
        try:
            with IPRoute() as ip:
                ip.link("add", ifname=f"{PREFIX}m", kind="macvlan", macvlan_mode="bridge",
                        link=ip.link_lookup(ifname=parent)[0], net_ns_fd=fd)  # fmt: skip
        finally:
            os.close(fd)
        with IPRoute(netns=netns) as ns:
            index = ns.link_lookup(ifname=f"{PREFIX}m")[0]
            ns.addr("add", index=index, address=peer_ip, prefixlen=24)
            ns.link("set", index=index, state="up")
        srv = netns_socket(netns)
        srv.bind((peer_ip, 8093))
        srv.listen(1)

        def answer() -> None:
            conn, _ = srv.accept()
            with conn:
                conn.sendall(b"hello from the peer\n")

        thread = threading.Thread(target=answer, daemon=True)
        thread.start()
        code, out = run("sh", "-c", f"cat /sys/class/net/eth0/address && nc -w 5 {peer_ip} 8093",
                        network="ipdn-mv")  # fmt: skip
        thread.join(10)
        srv.close()
        assert code == 0, out
        mac, said = out.split()[0], out.split("\n", 1)[1]
        assert said.strip() == "hello from the peer"
        assert mac == netlink.mac_for(IPv4Address(f"{NET}.14.2"))  # its own, docker's form
        assert mac != Path(f"/sys/class/net/{parent}/address").read_text().strip()
        with IPRoute(netns=netns) as ns:  # the peer learnt the container's own MAC
            seen = {n.get("lladdr") for n in ns.get_neighbours(dst=f"{NET}.14.2")}
        assert mac in seen
    b.remove_network("ipdn-mv")


def test_an_unknown_parent_is_one_error(net_backend) -> None:
    with pytest.raises(InvalidNetworkConfig, match="no interface of that name"):
        net_backend.create_network("ipdn-mv", driver="macvlan",
                                   options={"parent": f"{PREFIX}nope"})  # fmt: skip
    with pytest.raises(InvalidNetworkConfig, match="needs its parent"):
        net_backend.create_network("ipdn-mv", driver="macvlan")
    assert [n.name for n in net_backend.networks(filters=["type=custom"])] == []
