"""``network ls`` / ``inspect`` rows: the built-in ``host`` and ``none``, and bridge networks.

They are not stored anywhere: a container's ``HostConfig.NetworkMode`` says which one it uses, so
the list is computed from the running containers, like Docker's endpoints (a stopped container has
none). IDs are fixed digests of the names, the same on every store.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from ipydock.errors import NetworkNotFound, NotSupported, UsageError
from ipydock.models import NetworkEndpoint, NetworkInfo

__all__ = ["BUILTIN", "bridge_info", "find", "networks", "refuse"]

BUILTIN = {"host": "host", "none": "null"}  # name -> driver, as docker shows them
_FILTERS = ("driver", "id", "name", "label", "scope", "type")


def _id(name: str) -> str:
    return hashlib.sha256(f"ipydock network {name}".encode()).hexdigest()


def bridge_info(net: dict[str, Any], endpoints: dict[str, Any]) -> NetworkInfo:
    """A bridge network's record and live endpoints as docker's inspect shows them."""
    members = [
        NetworkEndpoint(cid, e["Name"], f"{e['IPv4']}/{e['PrefixLen']}", e["MAC"],
                        list(e.get("Aliases") or []))
        for cid, e in sorted(endpoints.items(), key=lambda kv: kv[1]["Name"])
    ]  # fmt: skip
    created = datetime.fromisoformat(net["Created"].replace("Z", "+00:00"))
    gateways = [net["Gateway"]] if net.get("ShowGateway", True) else []
    return NetworkInfo(net["Id"], net["Name"], net.get("Driver", "bridge"), "local", created,
                       [net["Subnet"]], gateways, bool(net.get("Internal")),
                       dict(net.get("Labels") or {}), members,
                       dict(net.get("Options") or {}))  # fmt: skip


def networks(
    users: Sequence[tuple[str, str, str]],
    created: datetime | None = None,
    filters: Sequence[str] = (),
    bridges: Sequence[NetworkInfo] = (),
) -> list[NetworkInfo]:
    """``host`` and ``none`` with the running containers that use them, and the ``bridges``;
    ``users`` are (container id, name, network mode) of the running containers."""
    rows = list(bridges)
    for name, driver in BUILTIN.items():
        members = [NetworkEndpoint(cid, cname) for cid, cname, mode in users if mode == name]
        rows.append(NetworkInfo(_id(name), name, driver, "local", created, containers=members))
    rows.sort(key=lambda r: r.name)
    wanted = _parse(filters)
    return [r for r in rows if all(any(_match(r, k, v) for v in vs) for k, vs in wanted.items())]


def find(rows: Sequence[NetworkInfo], ref: str) -> NetworkInfo:
    """The network named ``ref``, or whose ID starts with it."""
    for r in rows:
        if ref == r.name or (len(ref) >= 1 and r.id.startswith(ref)):
            return r
    raise NetworkNotFound(ref)


def refuse(operation: str, name: str = "") -> NotSupported:
    """The error for what ``host``/``none`` cannot do: they are pre-defined."""
    return NotSupported(operation, "bundled", f"{name} is a pre-defined network: it cannot "
                        "be created, removed, connected or disconnected")  # fmt: skip


def _parse(filters: Sequence[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for item in filters:
        key, eq, value = item.partition("=")
        if not eq or key not in _FILTERS:
            raise UsageError(f"invalid filter {item!r} ({', '.join(_FILTERS)})")
        out.setdefault(key, []).append(value)
    return out


def _match(row: NetworkInfo, key: str, value: str) -> bool:
    if key == "type":
        return (value == "builtin") == (row.name in (*BUILTIN, "bridge"))
    if key == "label":
        k, eq, v = value.partition("=")
        return k in row.labels and (not eq or row.labels[k] == v)
    if key == "id":
        return row.id.startswith(value)
    if key == "name":
        return value in row.name
    return bool(getattr(row, key) == value)
