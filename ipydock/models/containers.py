"""Containers and volumes: ``container ls`` rows, inspect, logs, diff, run results, prune
results, volumes and the files of a volume."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ipydock.models.networks import PortBinding

__all__ = [
    "ActionResult",
    "ContainerDetail",
    "ContainerInfo",
    "ContainerPrune",
    "FileChange",
    "FileEntry",
    "LogEntry",
    "ProcessTable",
    "RunOptions",
    "RunOutput",
    "RunResult",
    "VolumeInfo",
    "WaitResult",
]


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
    ports: list[PortBinding] = field(default_factory=list)  # published (and exposed)


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
class ActionResult:
    """One name of a many-names command (``stop a b``, ``rm``, ``volume rm``): done, or the
    error that stopped it (docker goes on with the next name and fails at the end)."""

    name: str
    error: str = ""

    @property
    def ok(self) -> bool:
        return not self.error


@dataclass(frozen=True)
class WaitResult:
    """``wait``: a container and the exit code it stopped with."""

    container: str
    status_code: int


@dataclass(frozen=True)
class ProcessTable:
    """``top``: ``ps`` columns (``UID``, ``PID``, …, ``CMD``) and one row per process."""

    titles: list[str]
    processes: list[list[str]]

    def records(self) -> list[dict[str, str]]:
        return [dict(zip(self.titles, row, strict=False)) for row in self.processes]


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
class RunOptions:
    """The flags of ``container run``/``create``; defaults are docker's. Plain data, so every
    backend (bundled or docker) takes the same options."""

    image: str
    command: tuple[str, ...] = ()
    name: str | None = None
    env: tuple[str, ...] = ()
    env_file: tuple[str, ...] = ()
    workdir: str | None = None
    user: str | None = None
    entrypoint: str | None = None
    hostname: str | None = None
    volumes: tuple[str, ...] = ()
    mounts: tuple[str, ...] = ()
    memory: str | int | None = None
    pids_limit: int | None = None
    cpus: float | None = None
    network: str = "default"  # docker's: the default bridge
    network_aliases: tuple[str, ...] = ()  # --network-alias
    ip: str | None = None  # --ip
    links: tuple[str, ...] = ()  # --link NAME[:ALIAS]
    publish: tuple[str, ...] = ()  # -p [IP:][HOST:]CONTAINER[/PROTO]
    publish_all: bool = False  # -P: every EXPOSEd port on a free host port
    privileged: bool = False
    devices: tuple[str, ...] = ()  # --device HOST[:CONTAINER[:PERMS]]
    cap_add: tuple[str, ...] = ()
    cap_drop: tuple[str, ...] = ()
    security_opt: tuple[str, ...] = ()  # --security-opt no-new-privileges, seccomp=FILE, …
    group_add: tuple[str, ...] = ()  # --group-add NAME|GID
    ulimits: tuple[str, ...] = ()  # --ulimit NAME=SOFT[:HARD]
    init: bool = False  # --init: a tiny init (tini) as pid 1
    userns: str | None = None  # --userns host
    read_only: bool = False
    restart: str = "no"
    auto_remove: bool = False
    interactive: bool = False
    tty: bool = False  # -t: a pseudo-terminal (docker's Config.Tty)
    labels: dict[str, str] = field(default_factory=dict)
    stop_signal: str | None = None
    stop_timeout: int | None = None

    def environment(self) -> list[str]:
        """``-e`` and ``--env-file`` as docker's client resolves them, before any engine sees
        them: files' ``KEY=VALUE`` lines (``#`` comments), then ``-e``; a bare ``KEY`` takes
        this process's value and is left out when unset. Raises UsageError for a file that
        cannot be read or an entry without a name."""
        import os

        from ipydock.errors import UsageError

        items: list[str] = []
        for path in self.env_file:
            try:
                with open(path) as f:
                    lines = f.read().splitlines()
            except OSError as exc:
                raise UsageError(f"--env-file {path}: {exc.strerror}") from exc
            items += [ln.strip() for ln in lines if ln.strip() and not ln.strip().startswith("#")]
        out = []
        for item in [*items, *self.env]:
            key, eq, _ = item.partition("=")
            if not key:
                raise UsageError(f"invalid environment variable: {item!r}")
            if eq:
                out.append(item)
            elif key in os.environ:
                out.append(f"{key}={os.environ[key]}")
        return out
