"""Outbound NAT and ``--internal``: a container reaches the test's "outside" host (a network
namespace routed through the host) with the host's address as its source; a container on an
internal network cannot reach it."""

from __future__ import annotations

import socket

import pytest

from ipydock.engine.network import firewall
from tests.network.conftest import NET, iptables_rules

pytestmark = pytest.mark.root


def test_containers_reach_the_outside_through_nat(net_backend, run, outside) -> None:
    outside.serve_peer(8090)
    ask = ("nc", "-w", "5", outside.ip, "8090")
    code, out = run(*ask)  # the default bridge
    assert (code, out.strip()) == (0, outside.host_ip), out  # masqueraded: the host's address
    net_backend.create_network("ipdn-out")
    code, out = run(*ask, network="ipdn-out")
    assert (code, out.strip()) == (0, outside.host_ip), out
    assert "-A IPYDOCK-POSTROUTING -m mark --mark 0x10000000/0x10000000 -j MASQUERADE" in (
        iptables_rules("nat"))  # fmt: skip


def test_an_internal_network_has_no_way_out(net_backend, run, outside) -> None:
    outside.serve_peer(8091)
    b = net_backend
    net = b.create_network("ipdn-int", subnet=f"{NET}.13.0/24", internal=True)
    assert b.inspect_network("ipdn-int").internal
    code, out = run("sh", "-c", f"ip route; nc -w 2 {outside.ip} 8091", network="ipdn-int")
    assert code != 0 and outside.host_ip not in out, out
    assert "default" not in out  # no gateway route either, as docker's internal networks
    device = net.options["com.docker.network.bridge.name"]
    with open(f"/sys/class/net/{device}/netdev_group") as f:
        assert int(f.read()) == firewall.GROUP_INTERNAL  # dropped in and out, no MASQUERADE
    # members of the internal network still talk to each other
    code, out = run("sh", "-c", "ip -o -4 addr show eth0", network="ipdn-int")
    assert f"{NET}.13." in out


def test_a_default_bridge_of_an_older_ipydock_gets_the_current_rules(net_backend, run) -> None:
    """A default bridge made by an older ipydock (rules of its own naming it, not in our
    interface group; its state has an older rule-set mark) is put in the group at its next
    use, and its own rules go."""
    import json
    import subprocess

    from ipydock.engine.network import bridge, rtnl

    assert run("true")[0] == 0  # the default bridge exists now
    state = bridge.BridgeState(bridge.default_bridge())
    old = f"-A IPYDOCK-POSTROUTING -s 10.254.254.0/24 ! -o {state.device} -j MASQUERADE"
    with state.lock:
        data = json.load(open(state.path))  # noqa: SIM115
        data["Rules"] = 2
        state.write(data)
        subprocess.run(["iptables", "-w", "-t", "nat", *old.split()], check=True)
        with rtnl.Rtnl() as nl:
            nl.set_up(socket.if_nametoindex(state.device), group=0)
    assert old in iptables_rules("nat")
    assert run("true")[0] == 0
    with open(f"/sys/class/net/{state.device}/netdev_group") as f:
        assert int(f.read()) == firewall.GROUP
    assert old not in iptables_rules("nat")
    assert firewall.has()
