"""Swarm: ``node ls``, ``service ls``, ``service ps`` and ``stack ls`` rows.

A Swarm is a Docker engine's, reached through the docker backend; the bundled engine has none.
The fields are the columns of docker's tables in snake_case (``replicas`` as docker prints it,
``3/3``, and as numbers in ``running`` / ``desired``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

__all__ = ["NodeInfo", "ServiceInfo", "StackInfo", "TaskInfo"]


@dataclass(frozen=True)
class NodeInfo:
    """One node of the swarm: ``status`` ready|down, ``availability`` active|pause|drain,
    ``manager_status`` Leader|Reachable|Unreachable ("" for a worker); ``addr`` is the
    address it advertises; ``self`` marks the node this engine is."""

    id: str
    hostname: str
    status: str
    availability: str
    manager_status: str
    engine_version: str
    addr: str = ""
    self: bool = False


@dataclass(frozen=True)
class ServiceInfo:
    """One service: ``mode`` replicated|global, ``replicas`` as docker prints it (``2/3``),
    ``ports`` as ``*:8080->80/tcp``, ``networks`` by name."""

    id: str
    name: str
    mode: str
    replicas: str
    running: int
    desired: int
    image: str
    ports: list[str] = field(default_factory=list)
    networks: list[str] = field(default_factory=list)
    created: datetime | None = None
    updated: datetime | None = None
    labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class TaskInfo:
    """One task of a service (``service ps``): ``name`` is docker's ``web.2``; ``node`` the
    node's hostname; ``current_state`` as docker says it (``Running``), ``since`` when it got
    there; ``addresses`` the task's addresses on its networks (``10.0.1.3/24``), ``networks``
    those networks' names, in the same order."""

    id: str
    name: str
    service: str
    slot: int
    image: str
    node: str
    desired_state: str
    current_state: str
    since: datetime | None
    error: str = ""
    addresses: list[str] = field(default_factory=list)
    container_id: str = ""
    networks: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class StackInfo:
    """One stack (``stack ls``): the services deployed from one compose file under a name."""

    name: str
    services: int
