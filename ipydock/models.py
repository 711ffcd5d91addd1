"""Plain data that every backend returns.

The bundled engine and the Docker backend both answer with these dataclasses, so the CLI, the
magics and the display code never see an engine's internals. Field names are the snake_case keys
of the CLI's ``--format json`` output and the column names of the notebook's DataFrames; sizes are
integer bytes and times are timezone-aware UTC datetimes (ISO-8601 when printed).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

__all__ = [
    "CheckReport",
    "DiskUsage",
    "HistoryRow",
    "ImageDetail",
    "ImageInfo",
    "LoadedImage",
    "PruneResult",
    "RemoveEvent",
    "to_record",
]


@dataclass(frozen=True)
class ImageInfo:
    """One row of ``image ls``: one per tag, or one ``<none>:<none>`` row for an untagged image."""

    repository: str
    tag: str
    id: str
    created: datetime | None
    size: int
    digest: str = "<none>"


@dataclass(frozen=True)
class HistoryRow:
    """One build step of an image, newest first; ``id`` is ``<missing>`` past the local chain."""

    id: str
    created: datetime | None
    created_by: str
    size: int
    comment: str
    empty_layer: bool = False
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class ImageDetail:
    """What ``image inspect`` shows; ``config`` uses Docker's keys (``Env``, ``Cmd``, ...)."""

    id: str
    repo_tags: list[str]
    repo_digests: list[str]
    parent: str
    created: datetime | None
    size: int
    architecture: str
    os: str
    author: str
    comment: str
    config: dict[str, Any]
    rootfs: dict[str, Any]
    history: list[dict[str, Any]]
    manifest_digest: str = ""


@dataclass(frozen=True)
class RemoveEvent:
    """One line of ``image rm``/``prune`` output: ``Untagged: app:1`` or ``Deleted: sha256:…``."""

    action: str  # "untagged" | "deleted"
    target: str


@dataclass(frozen=True)
class PruneResult:
    """What ``image prune`` removed and the bytes it freed."""

    deleted: list[RemoveEvent]
    space_reclaimed: int


@dataclass(frozen=True)
class LoadedImage:
    """One image ``image load`` stored: its ID, its names, and names it took from others."""

    id: str
    tags: list[str]
    replaced: list[tuple[str, str]] = field(default_factory=list)  # (name, previous image id)


@dataclass(frozen=True)
class DiskUsage:
    """One row of ``system df``."""

    type: str
    total: int
    active: int
    size: int
    reclaimable: int


@dataclass
class CheckReport:
    """What ``system check`` found: ``problems`` make the store inconsistent, ``garbage`` is
    harmless leftovers of interrupted writes that ``--repair`` removes."""

    problems: list[str] = field(default_factory=list)
    garbage: list[str] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def to_record(obj: Any) -> dict[str, Any]:
    """A dataclass as a JSON-ready dict: datetimes in ISO-8601 UTC, tuples as lists."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(obj):
        out[f.name] = _jsonable(getattr(obj, f.name))
    return out


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    return value
