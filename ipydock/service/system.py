"""System routes: ``/_ping``, ``/version``, ``/info``, ``/system/df``, ``/events``.

Version negotiation is dockerd's: ``/_ping`` answers ``API-Version: 1.41`` in a header, the
client then speaks ``/v1.41/…`` (or the unversioned paths, which mean the newest).
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import time
from typing import TYPE_CHECKING, Any

from ipydock.service import convert

if TYPE_CHECKING:
    from ipydock.service.base import Handler

__all__ = ["API_VERSION", "MIN_API_VERSION", "Events"]

API_VERSION = "1.41"
MIN_API_VERSION = "1.12"
ENGINE_VERSION = "20.10.24-ipydock"


def _headers(h: Handler) -> None:
    h.set_header("API-Version", API_VERSION)
    h.set_header("Docker-Experimental", "false")
    h.set_header("Ostype", "linux")
    h.set_header("Builder-Version", "1")
    h.set_header("Cache-Control", "no-cache, no-store, must-revalidate")
    h.set_header("Pragma", "no-cache")


async def ping(h: Handler) -> None:
    _headers(h)
    h.set_header("Content-Type", "text/plain; charset=utf-8")
    h.finish("OK" if h.request.method != "HEAD" else None)


def _version() -> dict[str, Any]:
    from ipydock import __version__ as ours

    details = {"ApiVersion": API_VERSION, "MinAPIVersion": MIN_API_VERSION, "Os": "linux",
               "Arch": _arch(), "KernelVersion": platform.release(), "GitCommit": "ipydock",
               "GoVersion": f"python{platform.python_version()}", "BuildTime": "",
               "Experimental": False}  # fmt: skip
    return {
        "Platform": {"Name": f"ipydock {ours} (bundled engine)"},
        "Components": [{"Name": "Engine", "Version": ENGINE_VERSION, "Details": {
            k: str(v) for k, v in details.items()}}],  # fmt: skip
        "Version": ENGINE_VERSION,
        **details,
    }


def _arch() -> str:
    machine = platform.machine()
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(machine, machine)


async def version(h: Handler) -> None:
    _headers(h)
    h.send_json(_version())


async def info(h: Handler) -> None:
    engine = await h.call(h.backend.info)
    rows = await h.call(h.backend.containers, all=True)
    running = sum(r.status == "running" for r in rows)
    paused = sum(r.status == "paused" for r in rows)
    cgroup = engine.get("cgroup_version", 2)
    h.send_json({
        "ID": "ipydock", "Containers": len(rows), "ContainersRunning": running,
        "ContainersPaused": paused, "ContainersStopped": len(rows) - running - paused,
        "Images": engine.get("images", 0), "Driver": engine.get("storage_driver", "overlay"),
        "DriverStatus": [["Backing Filesystem", "extfs"]],
        "Plugins": {"Volume": ["local"], "Network": ["bridge", "host", "null"],
                    "Authorization": None, "Log": ["json-file"]},
        "MemoryLimit": True, "SwapLimit": True, "KernelMemory": False, "CpuCfsPeriod": True,
        "CpuCfsQuota": True, "CPUShares": True, "CPUSet": True, "PidsLimit": True,
        "IPv4Forwarding": True, "BridgeNfIptables": True, "BridgeNfIp6tables": True,
        "Debug": False, "NFd": 0, "OomKillDisable": True, "NGoroutines": 0,
        "SystemTime": _now(),
        "LoggingDriver": "json-file", "CgroupDriver": "cgroupfs", "CgroupVersion": str(cgroup),
        "NEventsListener": 0, "KernelVersion": platform.release(),
        "OperatingSystem": _os_name(), "OSVersion": "", "OSType": "linux",
        "Architecture": platform.machine(), "IndexServerAddress": "https://index.docker.io/v1/",
        "RegistryConfig": {"AllowNondistributableArtifactsCIDRs": [],
                           "AllowNondistributableArtifactsHostnames": [],
                           "InsecureRegistryCIDRs": ["127.0.0.0/8"], "IndexConfigs": {},
                           "Mirrors": []},
        "NCPU": os.cpu_count() or 1, "MemTotal": _mem_total(), "GenericResources": None,
        "DockerRootDir": engine.get("root", ""), "HttpProxy": "", "HttpsProxy": "",
        "NoProxy": "", "Name": platform.node(), "Labels": [], "ExperimentalBuild": False,
        "ServerVersion": ENGINE_VERSION,
        "Runtimes": {"ipydock": {"path": "ipydock"}}, "DefaultRuntime": "ipydock",
        "Swarm": {"NodeID": "", "NodeAddr": "", "LocalNodeState": "inactive",
                  "ControlAvailable": False, "Error": "", "RemoteManagers": None},
        "LiveRestoreEnabled": True, "Isolation": "", "InitBinary": "",
        "ContainerdCommit": {"ID": "", "Expected": ""}, "RuncCommit": {"ID": "", "Expected": ""},
        "InitCommit": {"ID": "", "Expected": ""},
        "SecurityOptions": ["name=cgroupns"] if cgroup == 2 else [],
        "Warnings": [f"ipydock runs in {engine.get('mode')} mode: {engine.get('mode_reason')}"]
        if engine.get("mode") not in ("root", None) else None,
    })  # fmt: skip


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _os_name() -> str:
    try:
        with open("/etc/os-release") as f:
            for line in f:
                if line.startswith("PRETTY_NAME="):
                    return line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return "Linux"


def _mem_total() -> int:
    try:
        with open("/proc/meminfo") as f:
            return int(f.readline().split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return 0


async def disk_usage(h: Handler) -> None:
    """``GET /system/df``: the lists docker's ``system df`` adds up."""
    images = await h.call(h.backend.images, all=True)
    containers = await h.call(h.backend.containers, all=True)
    volumes = await h.call(h.backend.volumes)
    usage = {row.type: row for row in await h.call(h.backend.disk_usage)}
    used_images = {c.image_id for c in containers}
    summaries = convert.image_summaries(images)
    for s in summaries:
        s["Containers"] = sum(c.image_id == s["Id"] for c in containers)
        s["SharedSize"] = 0
    vol_rows = []
    for v in volumes:
        row = convert.volume(v)
        row["UsageData"] = {"Size": -1, "RefCount": -1}
        vol_rows.append(row)
    layers = usage["Images"].size if "Images" in usage else sum(s["Size"] for s in summaries)
    del used_images
    h.send_json({
        "LayersSize": layers, "Images": summaries,
        "Containers": [{**convert.container_summary(c), "SizeRw": 0, "SizeRootFs": 0}
                       for c in containers],
        "Volumes": vol_rows, "BuildCache": [],
    })  # fmt: skip


# -- events ------------------------------------------------------------------------------------


class Events:
    """docker's event stream from the store's changes: each change (inotify, as the lab's
    panel sees them) is compared with what the store held before, and the difference is told
    as docker's events (container create/start/die/destroy, image tag/untag/delete, volume and
    network create/destroy). Past events are not kept: ``since`` starts from now."""

    def __init__(self, backend: Any) -> None:
        self.backend = backend
        self.listeners: set[asyncio.Queue[dict[str, Any]]] = set()
        self.watch: Any = None
        self.snapshot: dict[str, dict[str, Any]] | None = None
        self._busy = False
        self._again = False

    def _take(self) -> dict[str, dict[str, Any]]:
        b = self.backend
        images: dict[str, set[str]] = {}
        for r in b.images(all=True):
            images.setdefault(r.id, set())
            if r.tag != "<none>":
                images[r.id].add(f"{r.repository}:{r.tag}")
        return {
            "container": {c.id: c for c in b.containers(all=True)},
            "image": images,
            "volume": {v.name: v for v in b.volumes()},
            "network": {n.id: n for n in b.networks()},
        }

    async def subscribe(self) -> asyncio.Queue[dict[str, Any]]:
        if self.watch is None:
            from ipydock.server.watch import StoreWatch

            self.snapshot = await asyncio.get_running_loop().run_in_executor(None, self._take)
            self.watch = StoreWatch(self.backend.store.root, self._changed)
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.listeners.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[dict[str, Any]]) -> None:
        self.listeners.discard(queue)

    def _changed(self) -> None:
        if self._busy:
            self._again = True
            return
        self._busy = True
        asyncio.ensure_future(self._compare())

    async def _compare(self) -> None:
        try:
            while True:
                self._again = False
                new = await asyncio.get_running_loop().run_in_executor(None, self._take)
                old, self.snapshot = self.snapshot or new, new
                for event in _differences(old, new):
                    for q in self.listeners:
                        q.put_nowait(event)
                if not self._again:
                    return
        finally:
            self._busy = False

    def close(self) -> None:
        if self.watch is not None:
            self.watch.close()
            self.watch = None


def _event(kind: str, action: str, actor: str, attrs: dict[str, str]) -> dict[str, Any]:
    now = time.time_ns()
    event: dict[str, Any] = {"Type": kind, "Action": action,
                             "Actor": {"ID": actor, "Attributes": attrs}, "scope": "local",
                             "time": now // 1_000_000_000, "timeNano": now}  # fmt: skip
    if kind == "container":
        event.update(status=action, id=actor, **{"from": attrs.get("image", "")})
    return event


def _differences(old: dict[str, Any], new: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for cid, c in new["container"].items():
        attrs = {"image": c.image, "name": c.name, **c.labels}
        before = old["container"].get(cid)
        if before is None:
            out.append(_event("container", "create", cid, attrs))
        was = before.status if before is not None else None
        if c.status == "running" and was != "running":
            out.append(_event("container", "start", cid, attrs))
        if c.status == "exited" and was != "exited":
            if was in (None, "created"):  # it ran and ended between two looks
                out.append(_event("container", "start", cid, attrs))
            out.append(_event("container", "die", cid, {**attrs, "exitCode": str(c.exit_code)}))
    for cid, c in old["container"].items():
        if cid not in new["container"]:
            attrs = {"image": c.image, "name": c.name, **c.labels}
            if c.status == "running":
                out.append(_event("container", "die", cid, {**attrs, "exitCode": "0"}))
            out.append(_event("container", "destroy", cid, attrs))
    for iid, tags in new["image"].items():
        for tag in sorted(tags - old["image"].get(iid, set())):
            out.append(_event("image", "tag", iid, {"name": tag}))
    for iid, tags in old["image"].items():
        for tag in sorted(tags - new["image"].get(iid, set())):
            out.append(_event("image", "untag", iid, {"name": tag}))
        if iid not in new["image"]:
            out.append(_event("image", "delete", iid, {"name": iid}))
    for kind in ("volume", "network"):
        for key in new[kind].keys() - old[kind].keys():
            out.append(_event(kind, "create", key, _attrs(kind, new[kind][key])))
        for key in old[kind].keys() - new[kind].keys():
            out.append(_event(kind, "destroy", key, _attrs(kind, old[kind][key])))
    return out


def _attrs(kind: str, item: Any) -> dict[str, str]:
    if kind == "volume":
        return {"driver": item.driver}
    return {"name": item.name, "type": item.driver}


def _wanted(event: dict[str, Any], filters: dict[str, list[str]]) -> bool:
    actor = event["Actor"]
    checks = {
        "type": lambda v: event["Type"] == v,
        "event": lambda v: event["Action"] == v,
        "container": lambda v: event["Type"] == "container"
        and (actor["ID"].startswith(v) or actor["Attributes"].get("name") == v),
        "image": lambda v: actor["Attributes"].get("image") == v
        or actor["Attributes"].get("name") == v or actor["ID"] == v,
        "volume": lambda v: event["Type"] == "volume" and actor["ID"] == v,
        "network": lambda v: event["Type"] == "network"
        and v in (actor["ID"], actor["Attributes"].get("name")),
        "label": lambda v: (lambda k, _, val: k in actor["Attributes"]
                            and (not val or actor["Attributes"][k] == val))(*v.partition("=")),
    }  # fmt: skip
    return all(any(checks[k](v) for v in vals) for k, vals in filters.items() if k in checks)


async def events(h: Handler) -> None:
    """``GET /events``: JSON messages as they happen, until ``until`` or the client leaves."""
    from ipydock.errors import UsageError

    filters = h.filters()
    unknown = set(filters) - {"type", "event", "container", "image", "volume", "network",
                              "label"}  # fmt: skip
    if unknown:
        raise UsageError(f"invalid filter '{sorted(unknown)[0]}'")
    until = h.query("until")
    deadline = float(until) if until else None
    hub: Events = h.service.events
    queue = await hub.subscribe()
    h.set_header("Content-Type", "application/json")
    h.set_status(200)
    await h.flush()
    try:
        while not h.gone:
            timeout = None if deadline is None else max(0.0, deadline - time.time())
            try:
                event = await asyncio.wait_for(queue.get(), timeout)
            except asyncio.TimeoutError:
                break
            if _wanted(event, filters):
                h.write(json.dumps(event) + "\n")
                await h.flush()
    except Exception:  # noqa: BLE001 - the client went away: its stream ends
        pass
    finally:
        hub.unsubscribe(queue)
    if not h.gone:
        h.finish()
