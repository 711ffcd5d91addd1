"""Outbound NAT and ``--internal``: a container reaches the test's "outside" host (a network
namespace routed through the host) with the host's address as its source; a container on an
internal network cannot reach it."""

from __future__ import annotations

import pytest

from tests.network.conftest import NET, iptables_rules

pytestmark = pytest.mark.root


def test_containers_reach_the_outside_through_nat(net_backend, run, outside) -> None:
    outside.serve_peer(8090)
    ask = ("nc", "-w", "5", outside.ip, "8090")
    code, out = run(*ask)  # the default bridge
    assert (code, out.strip()) == (0, outside.host_ip), out  # masqueraded: the host's address
    net = net_backend.create_network("ipdn-out")
    code, out = run(*ask, network="ipdn-out")
    assert (code, out.strip()) == (0, outside.host_ip), out
    device = net.options["com.docker.network.bridge.name"]
    assert f"-A IPYDOCK-POSTROUTING -s {net.subnets[0]} ! -o {device} -j MASQUERADE" in (
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
    assert not [r for r in iptables_rules("nat") if device in r]  # no MASQUERADE
    # members of the internal network still talk to each other
    code, out = run("sh", "-c", "ip -o -4 addr show eth0", network="ipdn-int")
    assert f"{NET}.13." in out


def test_a_default_bridge_of_an_older_ipydock_gets_its_nat_rules(net_backend, run) -> None:
    """A default bridge made before outbound NAT (its state has no rule-set mark) gets the
    current rules at its next use."""
    import json

    from ipydock.engine.network import bridge, firewall

    assert run("true")[0] == 0  # the default bridge exists now
    state = bridge.BridgeState(bridge.default_bridge())
    with state.lock:
        data = json.load(open(state.path))  # noqa: SIM115
        del data["Rules"]
        state.write(data)
        firewall.remove(state.device)
    assert not [r for r in iptables_rules("nat") if f" {state.device} " in r + " "]
    assert run("true")[0] == 0
    subnet = net_backend.inspect_network("bridge").subnets[0]
    assert f"-A IPYDOCK-POSTROUTING -s {subnet} ! -o {state.device} -j MASQUERADE" in (
        iptables_rules("nat"))  # fmt: skip
