"""Networks: ``network ls`` / ``inspect`` rows and the containers attached to each one."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

__all__ = ["NetworkEndpoint", "NetworkInfo", "PortBinding"]


@dataclass(frozen=True)
class NetworkEndpoint:
    """One container on a network: its address there (``172.18.0.2/16``, as Docker shows it;
    empty on ``host`` and ``none``), MAC address and the names it answers to."""

    container_id: str
    name: str
    ipv4_address: str = ""
    mac_address: str = ""
    aliases: list[str] = field(default_factory=list)
    ipv6_address: str = ""


@dataclass(frozen=True)
class NetworkInfo:
    """One network, as ``network ls`` lists it and ``network inspect`` shows it.

    ``driver`` is Docker's word (``bridge``, ``host``, ``null``, ``macvlan``, ``overlay``);
    ``subnets``/``gateways`` come from its IPAM config (empty for ``host`` and ``none``);
    ``containers`` are the running containers attached to it.
    """

    id: str
    name: str
    driver: str
    scope: str
    created: datetime | None
    subnets: list[str] = field(default_factory=list)
    gateways: list[str] = field(default_factory=list)
    internal: bool = False
    labels: dict[str, str] = field(default_factory=dict)
    containers: list[NetworkEndpoint] = field(default_factory=list)
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PortBinding:
    """One published port of a container (``0.0.0.0:8080->80/tcp``); ``host_port`` is 0 for a
    port that is exposed but not published."""

    container_port: int
    protocol: str = "tcp"
    host_ip: str = ""
    host_port: int = 0

    def __str__(self) -> str:
        inner = f"{self.container_port}/{self.protocol}"
        if not self.host_port:
            return inner
        return f"{self.host_ip or '0.0.0.0'}:{self.host_port}->{inner}"
