"""Volume and network routes: list, create, inspect, remove, prune; connect and disconnect."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ipydock.errors import UsageError
from ipydock.service import convert

if TYPE_CHECKING:
    from ipydock.service.base import Handler


# -- volumes -----------------------------------------------------------------------------------


async def volume_list(h: Handler) -> None:
    filters = h.filters()
    rows = await h.call(h.backend.volumes)
    names = filters.pop("name", [])
    if set(filters) - {"dangling", "label", "driver"}:
        raise UsageError(f"invalid filter '{sorted(filters)[0]}'")
    if names:
        rows = [v for v in rows if any(n in v.name for n in names)]
    for label in filters.get("label", []):
        key, eq, value = label.partition("=")
        rows = [v for v in rows if key in v.labels and (not eq or v.labels[key] == value)]
    if "dangling" in filters:
        want = filters["dangling"][-1].lower() in ("1", "true")
        used = {m.get("Name") for c in await h.call(h.backend.containers, all=True)
                for m in (await h.call(h.backend.inspect_container, c.id)).mounts}  # fmt: skip
        rows = [v for v in rows if (v.name not in used) == want]
    h.send_json({"Volumes": [convert.volume(v) for v in rows], "Warnings": None})


async def volume_create(h: Handler) -> None:
    body = h.json_body()
    driver = body.get("Driver") or "local"
    if driver != "local":
        raise UsageError(f"volume driver {driver!r} is not available (use local)")
    if body.get("DriverOpts"):
        raise UsageError("volume options (-o) are not supported by the bundled engine yet")
    vol = await h.call(h.backend.create_volume, body.get("Name") or None,
                       labels=body.get("Labels") or None)  # fmt: skip
    h.send_json(convert.volume(vol), 201)


async def volume_inspect(h: Handler, name: str) -> None:
    h.send_json(convert.volume(await h.call(h.backend.inspect_volume, name)))


async def volume_remove(h: Handler, name: str) -> None:
    await h.call(h.backend.remove_volume, name, force=h.flag("force"))
    h.no_content()


async def volume_prune(h: Handler) -> None:
    filters = h.filters()
    every = any(v.lower() in ("1", "true") for v in filters.pop("all", []))
    if filters:
        raise UsageError(f"invalid filter '{sorted(filters)[0]}'")
    result = await h.call(h.backend.prune_volumes, all=every)
    h.send_json({"VolumesDeleted": result.deleted or None,
                 "SpaceReclaimed": result.space_reclaimed})  # fmt: skip


# -- networks ----------------------------------------------------------------------------------


async def network_list(h: Handler) -> None:
    filters = convert.filter_list(h.filters(), ("driver", "id", "label", "name", "type", "scope"))
    rows = await h.call(h.backend.networks, filters=filters)
    h.send_json([convert.network(n) for n in rows])


async def network_inspect(h: Handler, name: str) -> None:
    h.send_json(convert.network(await h.call(h.backend.inspect_network, name)))


async def network_create(h: Handler) -> None:
    body = h.json_body()
    name = body.get("Name") or ""
    if not name:
        raise UsageError("network name is required")
    config = ((body.get("IPAM") or {}).get("Config") or [{}])[0] or {}
    net = await h.call(
        h.backend.create_network, name, driver=body.get("Driver") or "bridge",
        subnet=config.get("Subnet") or None, gateway=config.get("Gateway") or None,
        internal=bool(body.get("Internal")), labels=body.get("Labels") or None,
    )  # fmt: skip
    h.send_json({"Id": net.id, "Warning": ""}, 201)


async def network_remove(h: Handler, name: str) -> None:
    await h.call(h.backend.remove_network, name)
    h.no_content()


async def network_connect(h: Handler, name: str) -> None:
    body = h.json_body()
    endpoint = body.get("EndpointConfig") or {}
    await h.call(h.backend.connect_network, name, body.get("Container") or "",
                 aliases=tuple(endpoint.get("Aliases") or ()))  # fmt: skip
    h.no_content(200)


async def network_disconnect(h: Handler, name: str) -> None:
    body = h.json_body()
    await h.call(h.backend.disconnect_network, name, body.get("Container") or "",
                 force=bool(body.get("Force")))  # fmt: skip
    h.no_content(200)


async def network_prune(h: Handler) -> None:
    if h.filters():
        raise UsageError("network prune filters are not supported by the bundled engine yet")
    h.send_json({"NetworksDeleted": await h.call(h.backend.prune_networks) or None})
