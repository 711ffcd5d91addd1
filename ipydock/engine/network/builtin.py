"""The built-in networks ``host`` and ``none``, as ``network ls`` / ``inspect`` show them.

They are not stored anywhere: a container's ``HostConfig.NetworkMode`` says which one it uses, so
the list is computed from the running containers, like Docker's endpoints (a stopped container has
none). IDs are fixed digests of the names, the same on every store.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime

from ipydock.errors import NetworkNotFound, NotSupported, UsageError
from ipydock.models import NetworkEndpoint, NetworkInfo

__all__ = ["BUILTIN", "find", "networks", "refuse"]

BUILTIN = {"host": "host", "none": "null"}  # name -> driver, as docker shows them
_FILTERS = ("driver", "id", "name", "label", "scope", "type")


def _id(name: str) -> str:
    return hashlib.sha256(f"ipydock network {name}".encode()).hexdigest()


def networks(
    users: Sequence[tuple[str, str, str]],
    created: datetime | None = None,
    filters: Sequence[str] = (),
) -> list[NetworkInfo]:
    """``host`` and ``none`` with the running containers that use them; ``users`` are
    (container id, name, network mode) of the running containers."""
    rows = []
    for name, driver in BUILTIN.items():
        members = [NetworkEndpoint(cid, cname) for cid, cname, mode in users if mode == name]
        rows.append(NetworkInfo(_id(name), name, driver, "local", created, containers=members))
    wanted = _parse(filters)
    return [r for r in rows if all(any(_match(r, k, v) for v in vs) for k, vs in wanted.items())]


def find(rows: Sequence[NetworkInfo], ref: str) -> NetworkInfo:
    """The network named ``ref``, or whose ID starts with it."""
    for r in rows:
        if ref == r.name or (len(ref) >= 1 and r.id.startswith(ref)):
            return r
    raise NetworkNotFound(ref)


def refuse(operation: str, name: str = "") -> NotSupported:
    """The error for what needs a bridge network; ``host``/``none`` are pre-defined."""
    if name in BUILTIN and operation.startswith("network rm"):
        return NotSupported(operation, "bundled", f"{name} is a pre-defined network and "
                            "cannot be removed")  # fmt: skip
    return NotSupported(
        operation,
        "bundled",
        "the bundled engine has no bridge networks yet: run containers with `--network host` "
        "or `--network none`, or switch to Docker with `%ipydock engine docker`",
    )


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
        return value == "builtin"
    if key == "label":
        k, eq, v = value.partition("=")
        return k in row.labels and (not eq or row.labels[k] == v)
    if key == "id":
        return row.id.startswith(value)
    if key == "name":
        return value in row.name
    return bool(getattr(row, key) == value)
