"""Docker Engine API answers as ipydock's models: pure functions of the JSON, no calls.

Each function takes what one endpoint returned (``GET /images/json``, ``/containers/{id}/json``,
``/networks/{id}``, …) and gives the dataclass the bundled engine returns for the same command,
so both engines' DataFrames have the same columns.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from typing import Any

from ipydock.errors import UsageError
from ipydock.models import (
    ContainerDetail,
    ContainerInfo,
    FileChange,
    HistoryRow,
    ImageDetail,
    ImageInfo,
    NetworkEndpoint,
    NetworkInfo,
    PortBinding,
    RemoveEvent,
    VolumeInfo,
)

__all__ = [
    "container_detail",
    "container_row",
    "file_change",
    "filters",
    "history_row",
    "image_detail",
    "image_rows",
    "network",
    "ports",
    "remove_event",
    "split_name",
    "time",
    "volume",
]

_HEX64 = re.compile(r"[0-9a-f]{64}")


def time(value: Any) -> datetime | None:
    """Docker's times: Unix seconds (lists) or RFC 3339 with nanoseconds (inspect)."""
    if value is None or value == "" or value == 0:
        return None
    if isinstance(value, (int, float)):
        return datetime.fromtimestamp(value, timezone.utc)
    text = str(value)
    if text.startswith("0001-01-01"):
        return None
    m = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)?", text)
    if not m:
        return None
    frac = (m.group(2) or "")[:7]  # microseconds at most
    zone = m.group(3) or "Z"
    return datetime.fromisoformat(
        m.group(1) + frac + ("+00:00" if zone == "Z" else zone)
    ).astimezone(timezone.utc)


def filters(items: Sequence[str]) -> dict[str, list[str]]:
    """``KEY=VALUE`` flags as the API's filter map (the daemon checks the keys)."""
    out: dict[str, list[str]] = {}
    for item in items:
        key, eq, value = item.partition("=")
        if not eq:
            raise UsageError(f"invalid filter {item!r}: use KEY=VALUE")
        out.setdefault(key, []).append(value)
    return out


def split_name(name: str) -> tuple[str, str]:
    """``repo[:tag]`` -> (repo, tag); a registry port is not a tag (``host:5000/x``)."""
    slash = name.rfind("/")
    colon = name.rfind(":")
    if colon > slash:
        return name[:colon], name[colon + 1 :]
    return name, "latest"


def _familiar(repo: str) -> str:
    for prefix in ("docker.io/library/", "docker.io/"):
        if repo.startswith(prefix):
            return repo[len(prefix) :]
    return repo


# -- images ------------------------------------------------------------------------------------


def image_rows(raw: Iterable[dict[str, Any]]) -> list[ImageInfo]:
    """``GET /images/json`` as ``image ls`` rows: one per tag, newest first."""
    rows = []
    for img in raw:
        digests = [d.partition("@")[2] for d in img.get("RepoDigests") or []]
        digest = digests[0] if digests else "<none>"
        created, size = time(img.get("Created")), int(img.get("Size") or 0)
        tags = [t for t in img.get("RepoTags") or [] if t != "<none>:<none>"]
        if not tags:
            rows.append(ImageInfo("<none>", "<none>", img["Id"], created, size, digest))
        for t in sorted(tags):
            repo, tag = split_name(t)
            rows.append(ImageInfo(_familiar(repo), tag, img["Id"], created, size, digest))
    rows.sort(key=lambda r: r.created.timestamp() if r.created else 0, reverse=True)
    return rows


def history_row(h: dict[str, Any]) -> HistoryRow:
    """One entry of ``GET /images/{name}/history``. The API does not say which steps were
    ``empty_layer``: a ``#(nop)`` metadata step of 0 bytes is one (COPY/ADD make a layer)."""
    created_by = h.get("CreatedBy") or ""
    size = int(h.get("Size") or 0)
    nop = "#(nop) " in created_by and not re.search(r"#\(nop\)\s+(ADD|COPY) ", created_by)
    image_id = h.get("Id") or "<missing>"
    tags = tuple(t for t in h.get("Tags") or () if t != "<none>:<none>")
    return HistoryRow(image_id, time(h.get("Created")), created_by, size, h.get("Comment") or "",
                      empty_layer=nop and size == 0, tags=tags)  # fmt: skip


def image_detail(d: dict[str, Any], history: Sequence[HistoryRow]) -> ImageDetail:
    """``GET /images/{name}/json``; ``history`` (newest first) fills the config's history."""
    steps = []
    for row in reversed(history):
        step: dict[str, Any] = {"created": row.created, "created_by": row.created_by}
        if row.comment:
            step["comment"] = row.comment
        if row.empty_layer:
            step["empty_layer"] = True
        steps.append(step)
    return ImageDetail(
        id=d["Id"],
        repo_tags=[familiar(t) for t in d.get("RepoTags") or []],
        repo_digests=list(d.get("RepoDigests") or []),
        parent=d.get("Parent") or "",
        created=time(d.get("Created")),
        size=int(d.get("Size") or 0),
        architecture=d.get("Architecture") or "",
        os=d.get("Os") or "",
        author=d.get("Author") or "",
        comment=d.get("Comment") or "",
        config=dict(d.get("Config") or {}),
        rootfs={
            "type": (d.get("RootFS") or {}).get("Type", "layers"),
            "diff_ids": list((d.get("RootFS") or {}).get("Layers") or []),
        },  # as in config
        history=steps,
    )


def remove_event(item: dict[str, str]) -> RemoveEvent:
    """``{"Untagged": "busybox:latest"}`` / ``{"Deleted": "sha256:…"}`` (in docker's forms:
    Podman answers ``docker.io/me/app:1`` and a bare ID)."""
    ((key, target),) = item.items()
    if key == "Deleted" and re.fullmatch(r"[0-9a-f]{64}", target):  # Podman's bare ID
        target = f"sha256:{target}"
    return RemoveEvent(key.lower(), familiar(target) if key == "Untagged" else target)


def familiar(name: str) -> str:
    """Docker's short form of a full image name: ``docker.io/library/busybox`` is
    ``busybox``, ``docker.io/me/app`` is ``me/app`` (Podman reports names in full)."""
    for prefix in ("docker.io/library/", "docker.io/"):
        if name.startswith(prefix):
            return name[len(prefix) :]
    return name


# -- containers ------------------------------------------------------------------------------


def ports(raw: Iterable[dict[str, Any]] | dict[str, Any] | None) -> list[PortBinding]:
    """``Ports`` of a list entry, or ``NetworkSettings.Ports`` of inspect; one row each,
    IPv4 and IPv6 bindings of the same port once."""
    out: list[PortBinding] = []
    if isinstance(raw, dict):  # inspect: {"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}]}
        for key, bindings in raw.items():
            port, _, proto = key.partition("/")
            for b in bindings or [{}]:
                host_port = int(b.get("HostPort") or 0)
                out.append(PortBinding(int(port), proto or "tcp", b.get("HostIp") or "", host_port))
    else:
        for p in raw or []:
            out.append(PortBinding(int(p.get("PrivatePort") or 0), p.get("Type") or "tcp",
                                   p.get("IP") or "", int(p.get("PublicPort") or 0)))  # fmt: skip
    seen: dict[tuple[int, str, int], PortBinding] = {}
    for b in out:
        key = (b.container_port, b.protocol, b.host_port)
        if key not in seen or seen[key].host_ip == "::":
            seen[key] = b
    return sorted(seen.values(), key=lambda b: (b.container_port, b.protocol, b.host_port))


def container_row(c: dict[str, Any], pid: int = 0) -> ContainerInfo:
    """``GET /containers/json`` entry; the exit code is read from Docker's status sentence."""
    status_text = c.get("Status") or ""
    m = re.match(r"Exited \((-?\d+)\)", status_text)
    names = c.get("Names") or [""]
    return ContainerInfo(
        id=c["Id"],
        name=names[0].lstrip("/"),
        image=c.get("Image") or "",
        image_id=c.get("ImageID") or "",
        command=c.get("Command") or "",
        created=time(c.get("Created")) or datetime.now(timezone.utc),
        status=c.get("State") or "",
        status_text=status_text,
        exit_code=int(m.group(1)) if m else 0,
        pid=pid,
        labels=dict(c.get("Labels") or {}),
        ports=ports(c.get("Ports")),
    )


def container_detail(d: dict[str, Any]) -> ContainerDetail:
    return ContainerDetail(
        id=d["Id"],
        name=d.get("Name") or "",
        image=d.get("Image") or "",
        created=time(d.get("Created")) or datetime.now(timezone.utc),
        path=d.get("Path") or "",
        args=list(d.get("Args") or []),
        state=dict(d.get("State") or {}),
        config=dict(d.get("Config") or {}),
        host_config=dict(d.get("HostConfig") or {}),
        mounts=list(d.get("Mounts") or []),
        log_path=d.get("LogPath") or "",
        restart_count=int(d.get("RestartCount") or 0),
    )


_KINDS = {0: "C", 1: "A", 2: "D"}


def file_change(item: dict[str, Any]) -> FileChange:
    return FileChange(_KINDS.get(int(item.get("Kind", 0)), "C"), item.get("Path") or "")


# -- volumes and networks ----------------------------------------------------------------------


def volume(v: dict[str, Any]) -> VolumeInfo:
    """A volume; Docker 23+ labels anonymous ones, 20.10 only gives them a 64-hex name."""
    labels = dict(v.get("Labels") or {})
    anonymous = "com.docker.volume.anonymous" in labels or bool(_HEX64.fullmatch(v["Name"]))
    return VolumeInfo(
        name=v["Name"],
        driver=v.get("Driver") or "local",
        mountpoint=v.get("Mountpoint") or "",
        created=time(v.get("CreatedAt")) or datetime.now(timezone.utc),
        labels=labels,
        anonymous=anonymous,
    )


def network(n: dict[str, Any], aliases: dict[str, list[str]] | None = None) -> NetworkInfo:
    """``GET /networks/{id}``; ``aliases`` per container ID come from the containers' own
    inspect (the network's answer does not carry them). A swarm network's load-balancer
    endpoint (``lb-NAME``, shown as ``NAME-endpoint``) is the engine's, not a container."""
    ipam = (n.get("IPAM") or {}).get("Config") or []
    members = [
        NetworkEndpoint(
            container_id=cid,
            name=e.get("Name") or "",
            ipv4_address=e.get("IPv4Address") or "",
            mac_address=e.get("MacAddress") or "",
            aliases=list((aliases or {}).get(cid, [])),
            ipv6_address=e.get("IPv6Address") or "",
        )
        for cid, e in sorted(
            (n.get("Containers") or {}).items(), key=lambda kv: kv[1].get("Name", "")
        )
        if not cid.startswith("lb-")
    ]
    return NetworkInfo(
        id=n["Id"],
        name=n["Name"],
        driver=n.get("Driver") or "",
        scope=n.get("Scope") or "local",
        created=time(n.get("Created")),
        subnets=[c["Subnet"] for c in ipam if c.get("Subnet")],
        gateways=[c["Gateway"] for c in ipam if c.get("Gateway")],
        internal=bool(n.get("Internal")),
        labels=dict(n.get("Labels") or {}),
        containers=members,
        options=dict(n.get("Options") or {}),
    )
