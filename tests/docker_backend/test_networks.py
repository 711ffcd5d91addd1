"""User-defined networks on a real dockerd (in its own network namespace), and the same
``network ls`` columns as the bundled engine's built-in networks."""

from __future__ import annotations

import io
import ipaddress
import xml.etree.ElementTree as ET

import pytest

from ipydock import cli
from ipydock.display.frames import frame
from ipydock.display.network import network_graph
from ipydock.errors import Conflict, NetworkNotFound
from ipydock.models import NetworkInfo, RunOptions
from tests.docker_backend.conftest import BUSYBOX

pytestmark = [pytest.mark.docker, pytest.mark.root]


def test_create_connect_inspect_disconnect_rm(engine) -> None:
    net = engine.create_network("net1", subnet="10.77.0.0/24", gateway="10.77.0.1",
                                labels={"course": "containers"})  # fmt: skip
    assert (net.driver, net.subnets, net.gateways) == ("bridge", ["10.77.0.0/24"], ["10.77.0.1"])
    engine.create_network("net2")
    engine.run(RunOptions(BUSYBOX, ("sleep", "60"), name="web", network="net2",
                          publish=("8080:80",)), detach=True)  # fmt: skip
    try:
        engine.connect_network("net1", "web", aliases=["www"])
        (member,) = engine.inspect_network("net1").containers
        assert member.name == "web" and "www" in member.aliases
        assert ipaddress.ip_interface(member.ipv4_address) in ipaddress.ip_network("10.77.0.0/24")
        assert member.mac_address
        # The address is the one the container itself sees.
        out = io.StringIO()
        engine.exec("web", ["ip", "-4", "-o", "addr"], stdout=out)
        assert member.ipv4_address in out.getvalue()
        (row,) = engine.containers()
        assert [str(p) for p in row.ports] == ["0.0.0.0:8080->80/tcp"]
        with pytest.raises(Conflict):
            engine.remove_network("net1")  # a container is still attached
        engine.disconnect_network("net1", "web")
        assert engine.inspect_network("net1").containers == []
    finally:
        engine.remove_container("web", force=True)
    engine.remove_network("net2")
    assert engine.prune_networks() == ["net1"]  # unused now; the built-in ones stay
    with pytest.raises(NetworkNotFound):
        engine.inspect_network("net1")


def test_network_ls_has_the_bundled_columns_and_builtin_networks(engine, bundled) -> None:
    docker_rows = {n.name: n for n in engine.networks()}
    bundled_rows = {n.name: n for n in bundled.networks()}
    assert list(frame(list(docker_rows.values()), NetworkInfo).columns) == list(
        frame(list(bundled_rows.values()), NetworkInfo).columns
    )
    if engine.name == "podman":  # host and none are modes there, not networks: one bridge
        assert [(n.name, n.driver) for n in docker_rows.values()] == [("podman", "bridge")]
        return
    for name in ("host", "none"):
        d, b = docker_rows[name], bundled_rows[name]
        assert (d.driver, d.scope, d.subnets, d.internal) == (
            b.driver,
            b.scope,
            b.subnets,
            b.internal,
        )
    assert [n.name for n in engine.networks(filters=["driver=null"])] == ["none"]


def test_the_picture_of_a_real_network(engine) -> None:
    engine.create_network("lab", subnet="10.78.0.0/24")
    for name in ("node-a", "node-b"):
        engine.run(RunOptions(BUSYBOX, ("sleep", "60"), name=name, network="lab"), detach=True)
    try:
        graph = network_graph(engine.networks(), engine.containers())
        svg = ET.fromstring(graph._repr_svg_())
        ns = "{http://www.w3.org/2000/svg}"
        nodes = {g.get("data-name") for g in svg.iter(f"{ns}g") if g.get("class") == "container"}
        assert nodes == {"node-a", "node-b"}
        addresses = [t.text for t in svg.iter(f"{ns}text") if t.get("class") == "address"]
        if engine.name == "podman":  # its IPAM hands out addresses in an order of its own
            assert all(a.startswith("10.78.0.") for a in addresses) and len(addresses) == 2
        else:
            assert sorted(addresses) == ["10.78.0.2", "10.78.0.3"]
        assert "lab (bridge, 10.78.0.0/24" in graph.text()
    finally:
        for name in ("node-a", "node-b"):
            engine.remove_container(name, force=True)
        engine.remove_network("lab")


def test_cli_network_commands_on_the_docker_engine(engine, monkeypatch) -> None:
    """The CLI's commands are engine-neutral: run them against the Docker backend."""
    from ipydock import backends

    monkeypatch.setattr(backends, "connect", lambda *a, **kw: engine)

    def ipd(*words: str) -> str:
        out = io.StringIO()
        assert cli.run(list(words), out) == 0
        return out.getvalue()

    net_id = ipd("network", "create", "--subnet", "10.79.0.0/24", "cli-net").strip()
    assert len(net_id) == 64
    assert "cli-net" in ipd("network", "ls")
    assert '"subnets": [\n            "10.79.0.0/24"' in ipd("network", "inspect", "cli-net")
    assert ipd("network", "rm", "cli-net") == "cli-net\n"
