"""Images: ``image ls`` rows, history, inspect, rm/prune/load results, ``system df`` and
``system check``, and the layer explorer's files."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

__all__ = [
    "CheckReport",
    "DiskUsage",
    "HistoryRow",
    "ImageDetail",
    "ImageInfo",
    "LayerFile",
    "LayerFiles",
    "LoadedImage",
    "PruneResult",
    "RemoveEvent",
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


@dataclass(frozen=True)
class LayerFile:
    """One entry of an image layer as the layer explorer shows it.

    ``change`` is ``A`` (added: nothing at this path below), ``C`` (changed: replaces what a lower
    layer had) or ``D`` (deleted: a whiteout, or hidden by an opaque directory). ``wasted`` is the
    bytes of this entry that a later layer overwrote or deleted: still shipped, never seen.
    """

    path: str
    change: str  # A | C | D
    type: str  # file | dir | symlink | hardlink | fifo | char | block
    size: int
    mode: str
    wasted: int = 0
    link_target: str = ""


@dataclass(frozen=True)
class LayerFiles:
    """One layer of an image, bottom first: the build step that made it and its entries."""

    index: int
    diff_id: str
    created_by: str
    size: int
    wasted: int
    files: list[LayerFile] = field(default_factory=list)
