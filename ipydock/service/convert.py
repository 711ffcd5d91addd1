"""Docker's JSON <-> ipydock's requests and models (pure functions, no I/O).

::

    POST /containers/create {Config…, HostConfig…}  --run_options()-->  RunOptions (the CLI's)
    ImageInfo rows (one per tag)                     --image_summaries()--> [ImageSummary]
    ImageDetail / HistoryRow / ContainerInfo / ContainerDetail / VolumeInfo / NetworkInfo
                                                     --…-->  what dockerd's API 1.41 answers

The request side writes docker's fields in the words of ``docker run``'s flags (``-v``,
``--mount``, ``-p``, ``--restart``), so both go through the same request layer
(:mod:`ipydock.commands.runflags`) and the engine cannot tell them apart.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from ipydock.errors import UsageError
from ipydock.models.containers import RunOptions

if TYPE_CHECKING:
    from ipydock.models import (
        ContainerDetail,
        ContainerInfo,
        HistoryRow,
        ImageDetail,
        ImageInfo,
        NetworkInfo,
        VolumeInfo,
    )

__all__ = [
    "container_inspect",
    "container_summary",
    "filter_list",
    "history",
    "image_inspect",
    "image_summaries",
    "network",
    "run_options",
    "unix",
    "volume",
]

_ZERO = "0001-01-01T00:00:00Z"


def unix(when: datetime | None) -> int:
    return int(when.timestamp()) if when else 0


def rfc3339(when: datetime | None) -> str:
    if when is None:
        return _ZERO
    return when.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def filter_list(filters: dict[str, list[str]], allowed: tuple[str, ...]) -> list[str]:
    """docker's ``{"key": ["v"]}`` as the CLI's ``KEY=VALUE`` list; a key the engine does not
    filter on is refused as dockerd refuses it."""
    out = []
    for key, values in filters.items():
        if key not in allowed:
            raise UsageError(f"invalid filter '{key}'")
        out += [f"{key}={v}" for v in values]
    return out


# -- containers: request -----------------------------------------------------------------------


def _restart(policy: dict[str, Any] | None) -> str:
    name = (policy or {}).get("Name") or "no"
    count = (policy or {}).get("MaximumRetryCount") or 0
    return f"{name}:{count}" if name == "on-failure" and count else name


def _publish(bindings: dict[str, Any] | None) -> tuple[str, ...]:
    """``PortBindings`` as ``-p`` values: ``[IP:][HOST:]PORT/PROTO``."""
    out = []
    for port, hosts in (bindings or {}).items():
        port = port if "/" in port else f"{port}/tcp"
        for h in hosts or [{}]:
            ip, host_port = (h or {}).get("HostIp") or "", (h or {}).get("HostPort") or ""
            if ip:
                out.append(f"{ip}:{host_port}:{port}")
            elif host_port:
                out.append(f"{host_port}:{port}")
            else:
                out.append(port)
    return tuple(out)


def _mount(m: dict[str, Any]) -> str:
    """A ``HostConfig.Mounts`` entry as a ``--mount`` value."""
    parts = [f"type={m.get('Type') or 'volume'}"]
    if m.get("Source"):
        parts.append(f"source={m['Source']}")
    parts.append(f"target={m.get('Target') or ''}")
    if m.get("ReadOnly"):
        parts.append("readonly")
    return ",".join(parts)


def _device(d: dict[str, Any]) -> str:
    host = d.get("PathOnHost") or ""
    inner = d.get("PathInContainer") or host
    return f"{host}:{inner}:{d.get('CgroupPermissions') or 'rwm'}"


def run_options(body: dict[str, Any], name: str | None) -> RunOptions:
    """``POST /containers/create``'s body as the options ``ipydock create`` would make."""
    host = body.get("HostConfig") or {}
    image = body.get("Image") or ""
    if not image:
        raise UsageError("config cannot be empty in order to create a container")
    entrypoint, command = None, list(body.get("Cmd") or [])
    given = body.get("Entrypoint")
    if isinstance(given, str):
        given = [given]
    if given is not None:  # docker's list: its first word, the rest before the command
        entrypoint = given[0] if given else ""
        command = [*given[1:], *command]
    binds = list(host.get("Binds") or [])
    mounts = [_mount(m) for m in host.get("Mounts") or []]
    targets = {b.split(":")[1] if ":" in b else b for b in binds}
    targets |= {m.get("Target") for m in host.get("Mounts") or []}
    anonymous = [t for t in (body.get("Volumes") or {}) if t not in targets]
    network = host.get("NetworkMode") or "default"
    endpoint = ((body.get("NetworkingConfig") or {}).get("EndpointsConfig") or {}).get(network)
    endpoint = endpoint or {}
    cpus = (host.get("NanoCpus") or 0) / 1e9
    if not cpus and host.get("CpuQuota") and host.get("CpuPeriod"):
        cpus = host["CpuQuota"] / host["CpuPeriod"]
    return RunOptions(
        image=image, command=tuple(command), name=name or None, env=tuple(body.get("Env") or ()),
        workdir=body.get("WorkingDir") or None, user=body.get("User") or None,
        entrypoint=entrypoint, hostname=body.get("Hostname") or None,
        volumes=(*binds, *anonymous), mounts=tuple(mounts),
        memory=host.get("Memory") or None, pids_limit=host.get("PidsLimit") or None,
        cpus=cpus or None, network=network,
        network_aliases=tuple(endpoint.get("Aliases") or ()),
        ip=((endpoint.get("IPAMConfig") or {}).get("IPv4Address")) or None,
        links=tuple(host.get("Links") or ()), publish=_publish(host.get("PortBindings")),
        publish_all=bool(host.get("PublishAllPorts")), privileged=bool(host.get("Privileged")),
        devices=tuple(_device(d) for d in host.get("Devices") or ()),
        cap_add=tuple(host.get("CapAdd") or ()), cap_drop=tuple(host.get("CapDrop") or ()),
        read_only=bool(host.get("ReadonlyRootfs")), restart=_restart(host.get("RestartPolicy")),
        auto_remove=bool(host.get("AutoRemove")), interactive=bool(body.get("OpenStdin")),
        tty=bool(body.get("Tty")),
        labels=dict(body.get("Labels") or {}), stop_signal=body.get("StopSignal") or None,
        stop_timeout=body.get("StopTimeout"),
    )  # fmt: skip


# -- containers: answers -----------------------------------------------------------------------


def _ports(info: ContainerInfo) -> list[dict[str, Any]]:
    out = []
    for p in info.ports:
        row: dict[str, Any] = {"PrivatePort": p.container_port, "Type": p.protocol}
        if p.host_port:
            row.update(IP=p.host_ip or "0.0.0.0", PublicPort=p.host_port)
        out.append(row)
    return out


def container_summary(info: ContainerInfo, network: str = "default") -> dict[str, Any]:
    """One entry of ``GET /containers/json``."""
    return {
        "Id": info.id,
        "Names": ["/" + info.name],
        "Image": info.image,
        "ImageID": info.image_id,
        "Command": info.command,
        "Created": unix(info.created),
        "Ports": _ports(info),
        "Labels": info.labels,
        "State": info.status,
        "Status": info.status_text,
        "HostConfig": {"NetworkMode": network},
        "NetworkSettings": {"Networks": {}},
        "Mounts": [],
    }


def _network_mode(mode: str) -> str:
    return "bridge" if mode in ("default", "") else mode


def container_inspect(d: ContainerDetail, networks: list[NetworkInfo]) -> dict[str, Any]:
    """``GET /containers/{id}/json``: the record's keys plus what dockerd adds around them."""
    attached: dict[str, Any] = {}
    for net in networks:
        for ep in net.containers:
            if ep.container_id == d.id:
                ip, _, prefix = ep.ipv4_address.partition("/")
                attached[net.name] = {
                    "NetworkID": net.id, "EndpointID": "", "Gateway": (net.gateways or [""])[0],
                    "IPAddress": ip, "IPPrefixLen": int(prefix or 0),
                    "MacAddress": ep.mac_address, "Aliases": [*ep.aliases, d.id[:12]],
                }  # fmt: skip
    mode = d.host_config.get("NetworkMode") or "default"
    if not attached and mode not in ("host", "none") and not mode.startswith("container:"):
        attached[_network_mode(mode)] = {  # made, not started: the network it will join
            "NetworkID": "", "EndpointID": "", "Gateway": "", "IPAddress": "",
            "IPPrefixLen": 0, "MacAddress": "", "Aliases": [d.id[:12]],
        }  # fmt: skip
    first: dict[str, Any] = next(iter(attached.values()), {})
    host_config = {"LogConfig": {"Type": "json-file", "Config": {}}, "ShmSize": 67108864,
                   "ConsoleSize": [0, 0], "Isolation": "", "Runtime": "ipydock",
                   **d.host_config, "Mounts": None}  # fmt: skip
    return {
        "Id": d.id,
        "Created": rfc3339(d.created),
        "Path": d.path,
        "Args": d.args,
        "State": d.state,
        "Image": d.image,
        "ResolvConfPath": "",
        "HostnamePath": "",
        "HostsPath": "",
        "LogPath": d.log_path,
        "Name": d.name,
        "RestartCount": d.restart_count,
        "Driver": "overlay2",
        "Platform": "linux",
        "MountLabel": "",
        "ProcessLabel": "",
        "AppArmorProfile": "",
        "ExecIDs": None,
        "HostConfig": host_config,
        "GraphDriver": {"Name": "overlay2", "Data": None},
        "Mounts": [_inspect_mount(m) for m in d.mounts],
        "Config": {
            "Tty": False,
            "AttachStdin": False,
            "AttachStdout": False,
            "AttachStderr": False,
            "StdinOnce": False,
            **d.config,
        },  # fmt: skip
        "NetworkSettings": {
            "Bridge": "",
            "SandboxID": "",
            "HairpinMode": False,
            "Ports": {},
            "IPAddress": first.get("IPAddress", ""),
            "Gateway": first.get("Gateway", ""),
            "IPPrefixLen": first.get("IPPrefixLen", 0),
            "MacAddress": first.get("MacAddress", ""),
            "Networks": attached,
        },  # fmt: skip
    }


def _inspect_mount(m: dict[str, Any]) -> dict[str, Any]:
    out = {"Type": m.get("Type"), "Source": m.get("Source", ""),
           "Destination": m.get("Destination"), "Mode": "", "RW": m.get("RW", True),
           "Propagation": "rprivate" if m.get("Type") == "bind" else ""}  # fmt: skip
    if m.get("Type") == "volume":
        out.update(Name=m.get("Name"), Driver="local", Mode="z")
    return out


# -- images --------------------------------------------------------------------------------------


def image_summaries(rows: list[ImageInfo]) -> list[dict[str, Any]]:
    """``GET /images/json``: one entry per image (its tags together), newest first."""
    by_id: dict[str, dict[str, Any]] = {}
    for r in rows:
        entry = by_id.get(r.id)
        if entry is None:
            entry = by_id[r.id] = {
                "Containers": -1, "Created": unix(r.created), "Id": r.id, "Labels": None,
                "ParentId": "", "RepoDigests": [], "RepoTags": [], "SharedSize": -1,
                "Size": r.size, "VirtualSize": r.size,
            }  # fmt: skip
        if r.repository != "<none>" and r.tag != "<none>":
            entry["RepoTags"].append(f"{r.repository}:{r.tag}")
        if r.digest not in ("", "<none>") and r.repository != "<none>":
            entry["RepoDigests"].append(f"{r.repository}@{r.digest}")
    for entry in by_id.values():
        if not entry["RepoTags"]:
            entry["RepoTags"] = None if entry["RepoDigests"] else ["<none>:<none>"]
            if not entry["RepoDigests"]:
                entry["RepoDigests"] = ["<none>@<none>"]
    return sorted(by_id.values(), key=lambda e: e["Created"], reverse=True)


def image_inspect(d: ImageDetail) -> dict[str, Any]:
    return {
        "Id": d.id,
        "RepoTags": d.repo_tags,
        "RepoDigests": d.repo_digests,
        "Parent": d.parent,
        "Comment": d.comment,
        "Created": rfc3339(d.created),
        "Container": "",
        "ContainerConfig": {},
        "DockerVersion": "",
        "Author": d.author,
        "Config": d.config,
        "Architecture": d.architecture,
        "Os": d.os,
        "Size": d.size,
        "VirtualSize": d.size,
        "GraphDriver": {"Name": "overlay2", "Data": None},
        "RootFS": d.rootfs,
        "Metadata": {"LastTagTime": _ZERO},
    }


def history(rows: list[HistoryRow]) -> list[dict[str, Any]]:
    return [{"Id": r.id, "Created": unix(r.created), "CreatedBy": r.created_by,
             "Tags": list(r.tags) or None, "Size": r.size, "Comment": r.comment}
            for r in rows]  # fmt: skip


# -- volumes and networks ----------------------------------------------------------------------


def volume(v: VolumeInfo) -> dict[str, Any]:
    return {
        "CreatedAt": rfc3339(v.created), "Driver": v.driver, "Labels": v.labels or None,
        "Mountpoint": v.mountpoint, "Name": v.name, "Options": None, "Scope": "local",
    }  # fmt: skip


def network(n: NetworkInfo) -> dict[str, Any]:
    gateways = [*n.gateways, *[""] * len(n.subnets)]
    config = [{"Subnet": s, **({"Gateway": g} if g else {})}
              for s, g in zip(n.subnets, gateways, strict=False)]  # fmt: skip
    containers = {ep.container_id: {"Name": ep.name, "EndpointID": "", "MacAddress":
                  ep.mac_address, "IPv4Address": ep.ipv4_address, "IPv6Address": ep.ipv6_address}
                  for ep in n.containers}  # fmt: skip
    return {
        "Name": n.name, "Id": n.id, "Created": rfc3339(n.created), "Scope": n.scope,
        "Driver": n.driver, "EnableIPv6": False,
        "IPAM": {"Driver": "default", "Options": None, "Config": config},
        "Internal": n.internal, "Attachable": False, "Ingress": False,
        "ConfigFrom": {"Network": ""}, "ConfigOnly": False, "Containers": containers,
        "Options": n.options, "Labels": n.labels,
    }  # fmt: skip
