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

__all__ = ["API_VERSION", "MIN_API_VERSION"]

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
        "Components": [
            {
                "Name": "Engine",
                "Version": ENGINE_VERSION,
                "Details": {k: str(v) for k, v in details.items()},
            }
        ],  # fmt: skip
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
    hub = h.service.events
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
