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
    "BuildEvent",
    "BuildResult",
    "CheckReport",
    "ContainerDetail",
    "ContainerInfo",
    "ContainerPrune",
    "FileChange",
    "LogEntry",
    "RunOutput",
    "RunResult",
    "FileEntry",
    "VolumeInfo",
    "DiskUsage",
    "HistoryRow",
    "ImageDetail",
    "ImageInfo",
    "LayerFile",
    "LayerFiles",
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


@dataclass(frozen=True)
class ContainerInfo:
    """One row of ``container ls``; ``status`` is Docker's word (``running``, ``exited``, …),
    ``status_text`` its sentence (``Exited (0) 2 seconds ago``)."""

    id: str
    name: str
    image: str
    image_id: str
    command: str
    created: datetime
    status: str
    status_text: str
    exit_code: int
    pid: int = 0
    labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ContainerDetail:
    """What ``container inspect`` shows: Docker's keys inside ``config``, ``host_config``,
    ``state`` and ``mounts``."""

    id: str
    name: str
    image: str
    created: datetime
    path: str
    args: list[str]
    state: dict[str, Any]
    config: dict[str, Any]
    host_config: dict[str, Any]
    mounts: list[dict[str, Any]]
    log_path: str
    restart_count: int = 0


@dataclass(frozen=True)
class LogEntry:
    """One line of a container's output; ``time`` in RFC 3339 with nanoseconds."""

    stream: str  # stdout | stderr
    text: str
    time: str


@dataclass(frozen=True)
class FileChange:
    """One line of ``container diff``: ``kind`` is A (added), C (changed) or D (deleted)."""

    kind: str
    path: str


@dataclass(frozen=True)
class RunResult:
    """What ``run`` gives back: the container's ID and, unless detached, its exit code."""

    id: str
    exit_code: int | None = None


class RunOutput(str):
    """What an attached ``run`` printed (stdout and stderr as they came), a ``str`` that also
    carries the container's ``id`` and ``exit_code``; ``stdout``/``stderr`` apart."""

    id: str
    exit_code: int
    stdout: str
    stderr: str

    def __new__(cls, chunks: list[tuple[str, str]], result: RunResult) -> RunOutput:
        self = super().__new__(cls, "".join(text for _, text in chunks))
        self.id, self.exit_code = result.id, int(result.exit_code or 0)
        self.stdout = "".join(text for stream, text in chunks if stream != "stderr")
        self.stderr = "".join(text for stream, text in chunks if stream == "stderr")
        return self

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(str(self) + (f"[exit code {self.exit_code}]" if self.exit_code else ""))


@dataclass(frozen=True)
class ContainerPrune:
    """What ``container prune`` / ``volume prune`` removed and the bytes it freed."""

    deleted: list[str]
    space_reclaimed: int


@dataclass(frozen=True)
class VolumeInfo:
    """One named volume: ``mountpoint`` is its data directory on the host."""

    name: str
    driver: str
    mountpoint: str
    created: datetime
    labels: dict[str, str] = field(default_factory=dict)
    anonymous: bool = False


@dataclass(frozen=True)
class FileEntry:
    """One file of a volume or a container: ``mode`` as ``ls -l`` prints it."""

    path: str
    type: str  # file | dir | symlink | fifo | char | block | socket
    size: int
    mode: str
    mtime: datetime
    link_target: str = ""


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


@dataclass(frozen=True)
class BuildEvent:
    """One progress event of a build, delivered to the ``progress`` callback as it happens.

    ``kind`` says what happened; the other fields are filled where they apply:

    * ``context``  the context was packed: ``size`` bytes (``warning`` set when it is large)
    * ``step``     step ``step``/``total`` starts: ``instruction`` as written, Dockerfile ``line``
    * ``cached``   that step was a cache hit: ``image_id``
    * ``output``   one line the step's command printed: ``text`` (no newline)
    * ``done``     the step finished: ``image_id`` and ``duration`` (seconds)
    * ``failed``   the step failed: ``text`` says why (the build then raises a ``BuildError``)
    * ``warning``  a warning that concerns no step (unused build args): ``text``
    * ``tagged``   the result got the name ``text``
    * ``built``    the build ended: ``image_id`` of the result

    A notebook renders one row per step and updates it in place on ``cached``/``done``/
    ``failed``; the CLI prints the ``docker build`` lines (``Step 1/5 : ...``, `` ---> id``).
    """

    kind: str  # context | step | cached | output | done | failed | warning | tagged | built
    step: int = 0
    total: int = 0
    instruction: str = ""
    line: int = 0
    image_id: str = ""
    text: str = ""
    duration: float = 0.0
    size: int = 0
    stage: str = ""


@dataclass(frozen=True)
class BuildResult:
    """What a finished build made: the image, its names, and how many steps hit the cache."""

    image_id: str
    tags: list[str]
    steps: int
    cached: int
    untagged: list[str] = field(default_factory=list)  # images that lost a name to this build


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
