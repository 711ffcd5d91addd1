"""Plain data that every backend returns.

The bundled engine and the Docker backend both answer with these dataclasses, so the CLI, the
magics and the display code never see an engine's internals. Field names are the snake_case keys
of the CLI's ``--format json`` output and the column names of the notebook's DataFrames; sizes are
integer bytes and times are timezone-aware UTC datetimes (ISO-8601 when printed).

The dataclasses live in one module per area (``images``, ``containers``, ``networks``,
``build``), loaded on first use: creating dataclasses is a noticeable part of the CLI's
start-up, and ``image ls`` needs only the image ones.
"""

from __future__ import annotations

import dataclasses
import importlib
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ipydock.models.build import (
        BuildEvent,
        BuildResult,
    )
    from ipydock.models.containers import (
        ActionResult,
        ContainerDetail,
        ContainerInfo,
        ContainerPrune,
        FileChange,
        FileEntry,
        LogEntry,
        ProcessTable,
        RunOptions,
        RunOutput,
        RunResult,
        VolumeInfo,
        WaitResult,
    )
    from ipydock.models.images import (
        CheckReport,
        DiskUsage,
        HistoryRow,
        ImageDetail,
        ImageInfo,
        LayerFile,
        LayerFiles,
        LoadedImage,
        PruneResult,
        RemoveEvent,
    )
    from ipydock.models.networks import NetworkEndpoint, NetworkInfo, PortBinding
    from ipydock.models.registry import PullResult, PushResult, TransferEvent
    from ipydock.models.swarm import NodeInfo, ServiceInfo, StackInfo, TaskInfo

__all__ = [
    "ActionResult",
    "BuildEvent",
    "BuildResult",
    "CheckReport",
    "ContainerDetail",
    "ContainerInfo",
    "ContainerPrune",
    "DiskUsage",
    "FileChange",
    "FileEntry",
    "HistoryRow",
    "ImageDetail",
    "ImageInfo",
    "LayerFile",
    "LayerFiles",
    "LoadedImage",
    "LogEntry",
    "NetworkEndpoint",
    "NetworkInfo",
    "NodeInfo",
    "PortBinding",
    "ProcessTable",
    "PruneResult",
    "PullResult",
    "PushResult",
    "RemoveEvent",
    "RunOptions",
    "RunOutput",
    "RunResult",
    "ServiceInfo",
    "StackInfo",
    "TaskInfo",
    "TransferEvent",
    "VolumeInfo",
    "WaitResult",
    "to_record",
]

_MODULES = {
    "ImageInfo": "images",
    "HistoryRow": "images",
    "ImageDetail": "images",
    "RemoveEvent": "images",
    "PruneResult": "images",
    "LoadedImage": "images",
    "DiskUsage": "images",
    "CheckReport": "images",
    "LayerFile": "images",
    "LayerFiles": "images",
    "ContainerInfo": "containers",
    "ContainerDetail": "containers",
    "LogEntry": "containers",
    "FileChange": "containers",
    "RunResult": "containers",
    "RunOptions": "containers",
    "RunOutput": "containers",
    "ContainerPrune": "containers",
    "ActionResult": "containers",
    "WaitResult": "containers",
    "ProcessTable": "containers",
    "VolumeInfo": "containers",
    "FileEntry": "containers",
    "NetworkInfo": "networks",
    "NetworkEndpoint": "networks",
    "PortBinding": "networks",
    "BuildEvent": "build",
    "BuildResult": "build",
    "TransferEvent": "registry",
    "PullResult": "registry",
    "PushResult": "registry",
    "NodeInfo": "swarm",
    "ServiceInfo": "swarm",
    "StackInfo": "swarm",
    "TaskInfo": "swarm",
}


def __getattr__(name: str) -> Any:
    if name in _MODULES:
        return getattr(importlib.import_module(f"{__name__}.{_MODULES[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def to_record(obj: Any) -> dict[str, Any]:
    """A dataclass as a JSON-ready dict: datetimes in ISO-8601 UTC, tuples as lists."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(obj):
        out[f.name] = _jsonable(getattr(obj, f.name))
    return out


def _jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return to_record(value)  # nested rows: a network's containers, a container's ports
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    return value
