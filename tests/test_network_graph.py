"""The network picture: a pure function of rows, checked by parsing its SVG."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import datetime, timezone

from ipydock.display.network import network_graph
from ipydock.models import ContainerInfo, NetworkEndpoint, NetworkInfo, PortBinding

NS = "{http://www.w3.org/2000/svg}"
NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)


def _container(cid: str, name: str, ports: list[PortBinding] | None = None) -> ContainerInfo:
    return ContainerInfo(cid, name, "busybox", "sha256:" + "0" * 64, "sh", NOW, "running",
                         "Up 1 second", 0, ports=ports or [])  # fmt: skip


NETWORKS = [
    NetworkInfo("a" * 64, "net1", "bridge", "local", NOW, ["172.18.0.0/16"], ["172.18.0.1"],
                containers=[NetworkEndpoint("1" * 64, "web", "172.18.0.2/16", aliases=["www"]),
                            NetworkEndpoint("2" * 64, "db", "172.18.0.3/16")]),
    NetworkInfo("b" * 64, "back", "bridge", "local", NOW, ["10.0.0.0/24"], internal=True,
                containers=[NetworkEndpoint("2" * 64, "db", "10.0.0.2/24")]),
    NetworkInfo("c" * 64, "host", "host", "local", NOW,
                containers=[NetworkEndpoint("3" * 64, "probe")]),
]  # fmt: skip
CONTAINERS = [
    _container("1" * 64, "web", [PortBinding(80, "tcp", "0.0.0.0", 8080), PortBinding(443)]),
    _container("2" * 64, "db"),
    _container("3" * 64, "probe"),
    _container("4" * 64, "loner"),
]


def _groups(svg: ET.Element, cls: str) -> dict[str, ET.Element]:
    return {g.get("data-name", ""): g for g in svg.iter(f"{NS}g") if g.get("class") == cls}


def test_svg_has_a_band_per_network_and_a_node_per_container() -> None:
    graph = network_graph(NETWORKS, CONTAINERS)
    svg = ET.fromstring(graph._repr_svg_())
    assert svg.tag == f"{NS}svg"
    assert list(_groups(svg, "network")) == ["net1", "back", "host"]
    assert set(_groups(svg, "container")) == {"web", "db", "probe", "loner"}
    band = "".join(_groups(svg, "network")["back"].itertext())
    assert "back" in band and "10.0.0.0/24" in band and "internal" in band


def test_edges_carry_addresses_and_nodes_their_ports() -> None:
    svg = ET.fromstring(network_graph(NETWORKS, CONTAINERS).svg)
    nodes = _groups(svg, "container")
    edges = {
        (name, e.get("data-network")): e.find(f"{NS}text").text  # type: ignore[union-attr]
        for name, node in nodes.items()
        for e in node.iter(f"{NS}g")
        if e.get("class") == "edge"
    }
    assert edges == {("web", "net1"): "172.18.0.2", ("db", "net1"): "172.18.0.3",
                     ("db", "back"): "10.0.0.2", ("probe", "host"): "host"}  # fmt: skip
    ports = [t.text for t in nodes["web"].iter(f"{NS}text") if t.get("class") == "port"]
    assert ports == ["0.0.0.0:8080->80/tcp", "443/tcp"]
    assert [e for e in nodes["loner"].iter(f"{NS}g") if e.get("class") == "edge"] == []


def test_text_form_for_terminals_and_escaping() -> None:
    odd = [NetworkInfo("d" * 64, "a<b&c", "bridge", "local", NOW)]
    graph = network_graph(NETWORKS + odd, CONTAINERS)
    ET.fromstring(graph.svg)  # still well-formed XML
    text = repr(graph)
    assert "net1 (bridge, 172.18.0.0/16, gateway 172.18.0.1)" in text
    assert "web" in text and "0.0.0.0:8080->80/tcp" in text
    assert "a<b&c (bridge)\n  (no containers)" in text
    assert text.endswith("on no network:\n  loner")
    assert network_graph([], []).text() == ""
