"""The same network scenario on dockerd and on the bundled engine gives the same rows."""

from __future__ import annotations

import ipaddress
import os

import pytest

from ipydock.display.frames import frame
from ipydock.engine.network import netlink
from ipydock.models import NetworkInfo, RunOptions
from tests.conftest import require
from tests.docker_backend.conftest import BUSYBOX
from tests.network.conftest import NET

pytestmark = [pytest.mark.docker, pytest.mark.root]


def scenario(engine) -> NetworkInfo:
    engine.create_network("lab2", subnet=f"{NET}.79.0/24", labels={"course": "nets"})
    engine.run(RunOptions(BUSYBOX, ("sleep", "60"), name="node-a", network="lab2",
                          network_aliases=("a",)), detach=True)  # fmt: skip
    engine.run(RunOptions(BUSYBOX, ("sleep", "60"), name="node-b", network="lab2"), detach=True)
    try:
        return engine.inspect_network("lab2")
    finally:
        for name in ("node-a", "node-b"):
            engine.remove_container(name, force=True)
        engine.remove_network("lab2")


def comparable(net: NetworkInfo) -> dict:
    members = [(e.name, e.ipv4_address, e.mac_address,
                [a for a in e.aliases if a != e.container_id[:12]])
               for e in net.containers]  # fmt: skip
    return {"name": net.name, "driver": net.driver, "scope": net.scope,
            "subnets": net.subnets, "gateways": net.gateways, "internal": net.internal,
            "labels": net.labels, "containers": members}  # fmt: skip


def test_same_rows_on_both_engines(engine, bundled, monkeypatch) -> None:
    require(os.geteuid() == 0, "bridge networks need root")
    monkeypatch.setenv("IPYDOCK_LINK_PREFIX", "ipdnp")
    docker_net, bundled_net = scenario(engine), scenario(bundled)
    first = f"{NET}.79.2"
    mac = netlink.mac_for(ipaddress.IPv4Address(first))
    if engine.name == "podman":  # it names the gateway it chose (docker: only one asked
        ours, theirs = comparable(bundled_net), comparable(docker_net)  # for); random MACs
        assert theirs.pop("gateways") == [f"{NET}.79.1"] and ours.pop("gateways") == []
        strip = [(n, a, al) for n, a, _mac, al in ours.pop("containers")]
        assert [(n, a, al) for n, a, _mac, al in theirs.pop("containers")] == strip
        assert ours == theirs
    else:
        assert comparable(bundled_net) == comparable(docker_net)
        assert comparable(docker_net)["containers"][0] == ("node-a", f"{first}/24", mac, ["a"])
    assert list(frame([bundled_net], NetworkInfo).columns) == list(
        frame([docker_net], NetworkInfo).columns
    )
    bundled.close()
