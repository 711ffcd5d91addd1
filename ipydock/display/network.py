"""A picture of the networks: containers, the networks they are on, their addresses there and
their published ports, as SVG (a notebook draws it) or text (a terminal prints it).

::

      ┌──────────┐  ┌──────────┐        containers: one box each, published ports above
      │   web    │  │    db    │        (0.0.0.0:8080->80/tcp)
      └────┬─────┘  └──┬───┬───┘
           │172.18.0.2 │   │172.18.0.3  an edge per attachment, labelled with the address
      ═════●═══════════●═══╪══════════  net1  bridge 172.18.0.0/16
                           │
      ═════════════════════●══════════  host  host

On a swarm, the running tasks of its services join the picture, each box naming the node it
runs on (``web.1`` / ``@ node-b``), so an overlay network is drawn across the nodes.

:func:`network_graph` is a pure function of the rows the backend returned (no engine calls, no
disk); the drawing is plain string building, so the same input gives the same SVG.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from html import escape
from typing import Any

from ipydock.models import ContainerInfo, NetworkInfo, PortBinding, TaskInfo

__all__ = ["NetworkGraph", "network_graph"]

_NODE_W, _NODE_H, _GAP = 150, 40, 30
_LEFT, _TOP, _PORT_H = 20, 20, 14
_BAND_H, _BAND_GAP, _LABEL_W = 22, 56, 260
_COLOURS = {"bridge": "#4c78a8", "host": "#e45756", "null": "#9d9d9d", "overlay": "#54a24b",
            "macvlan": "#b279a2"}  # fmt: skip


@dataclass
class _Node:
    id: str
    name: str
    ports: list[PortBinding] = field(default_factory=list)
    edges: list[tuple[int, str]] = field(default_factory=list)  # (network index, address)
    host: str = ""  # the swarm node a task runs on


def network_graph(
    networks: Sequence[NetworkInfo], containers: Sequence[ContainerInfo] = (),
    tasks: Sequence[TaskInfo] = (),
) -> NetworkGraph:  # fmt: skip
    """The picture of ``networks`` (with their attached containers), ``containers`` (rows
    of ``container ls``: their published ports, and those on no network) and a swarm's running
    ``tasks`` (rows of ``service ps``: on whichever node they run)."""
    nodes: dict[str, _Node] = {}
    for c in containers:
        nodes[c.id] = _Node(c.id, c.name, list(c.ports))
    for i, net in enumerate(networks):
        for e in net.containers:
            node = nodes.setdefault(e.container_id, _Node(e.container_id, e.name))
            node.edges.append((i, e.ipv4_address.split("/")[0] or net.name))
    index = {net.name: i for i, net in enumerate(networks)}
    running = [t for t in tasks if t.desired_state == "Running" and t.current_state == "Running"]
    for t in sorted(running, key=lambda t: (t.node, t.name)):
        nodes.pop(t.container_id, None)  # a task's local container: drawn as the task
        pairs = zip(t.addresses, t.networks, strict=False)
        edges = [(index[n], a.split("/")[0]) for a, n in pairs if n in index]
        nodes[t.id] = _Node(t.id, t.name, edges=edges, host=t.node)
    return NetworkGraph(list(networks), list(nodes.values()))


class NetworkGraph:
    """Display object: ``_repr_svg_`` in a notebook, text in a terminal; ``.svg`` the drawing."""

    def __init__(self, networks: list[NetworkInfo], nodes: list[_Node]) -> None:
        self.networks = networks
        self.nodes = nodes
        self.svg = self._draw()

    def _repr_svg_(self) -> str:
        return self.svg

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(self.text())

    def __repr__(self) -> str:
        return self.text()

    def text(self) -> str:
        lines = []
        for i, net in enumerate(self.networks):
            lines.append(f"{net.name} ({_about(net)})")
            members = [(n, addr) for n in self.nodes for j, addr in n.edges if j == i]
            for node, addr in members:
                ports = ", ".join(str(p) for p in node.ports)
                where = f"@ {node.host}" if node.host else ""
                lines.append(f"  {node.name:<20} {addr:<18} {where} {ports}".rstrip())
            if not members:
                lines.append("  (no containers)")
        loose = [n for n in self.nodes if not n.edges]
        if loose:
            lines.append("on no network:")
            lines += [f"  {n.name}" for n in loose]
        return "\n".join(lines)

    # -- drawing ---------------------------------------------------------------------------------

    def _draw(self) -> str:
        ports_h = _PORT_H * max((len(n.ports) for n in self.nodes), default=0)
        node_y = _TOP + ports_h
        band0 = node_y + _NODE_H + _BAND_GAP
        width = max(_LEFT * 2 + len(self.nodes) * (_NODE_W + _GAP), 320) + _LABEL_W
        height = band0 + len(self.networks) * _BAND_GAP + _TOP
        band_w = width - _LEFT * 2
        out = [
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12" '
            'class="ipydock-network">'
        ]
        for i, net in enumerate(self.networks):
            y = band0 + i * _BAND_GAP
            colour = _COLOURS.get(net.driver, "#72b7b2")
            out.append(
                f'<g class="network" data-name="{escape(net.name)}" data-id="{escape(net.id)}">'
                f'<rect x="{_LEFT}" y="{y}" width="{band_w}" height="{_BAND_H}" rx="4" '
                f'fill="{colour}" fill-opacity="0.18" stroke="{colour}"/>'
                f'<text x="{width - _LEFT - 8}" y="{y + 15}" text-anchor="end">'
                f'<tspan font-weight="bold">{escape(net.name)}</tspan> '
                f"<tspan>{escape(_about(net))}</tspan></text></g>"
            )
        for k, node in enumerate(self.nodes):
            out.append(self._node(node, _LEFT + k * (_NODE_W + _GAP), node_y, band0))
        out.append("</svg>")
        return "".join(out)

    def _node(self, node: _Node, x: int, y: int, band0: int) -> str:
        cx = x + _NODE_W // 2
        parts = [f'<g class="container" data-name="{escape(node.name)}" '
                 f'data-id="{escape(node.id)}">']  # fmt: skip
        for j, (i, addr) in enumerate(node.edges):
            ex = cx + (j - (len(node.edges) - 1) / 2) * 14
            ey = band0 + i * _BAND_GAP + _BAND_H // 2
            parts.append(
                f'<g class="edge" data-network="{escape(self.networks[i].name)}">'
                f'<line x1="{ex:g}" y1="{y + _NODE_H}" x2="{ex:g}" y2="{ey}" stroke="#555"/>'
                f'<circle cx="{ex:g}" cy="{ey}" r="4" fill="#555"/>'
                f'<text class="address" x="{ex + 6:g}" y="{ey - 8}">{escape(addr)}</text></g>'
            )
        parts.append(
            f'<rect x="{x}" y="{y}" width="{_NODE_W}" height="{_NODE_H}" rx="6" fill="#fff" '
            f'stroke="#333"/><text class="name" x="{cx}" y="{y + 17}" text-anchor="middle" '
            f'font-weight="bold">{escape(_short(node.name, 20))}</text>'
            f'<text x="{cx}" y="{y + 32}" text-anchor="middle" fill="#666" font-size="10">'
            f"{escape('@ ' + node.host if node.host else node.id[:12])}</text>"
        )
        for j, port in enumerate(node.ports):
            py = y - 4 - (len(node.ports) - 1 - j) * _PORT_H
            parts.append(f'<text class="port" x="{cx}" y="{py}" text-anchor="middle" '
                         f'font-size="11" fill="#b35900">{escape(str(port))}</text>')  # fmt: skip
        parts.append("</g>")
        return "".join(parts)


def _about(net: NetworkInfo) -> str:
    bits = [net.driver]
    bits += net.subnets
    bits += [f"gateway {g}" for g in net.gateways]
    if net.internal:
        bits.append("internal")
    return ", ".join(bits)


def _short(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"
