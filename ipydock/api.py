"""The Backend protocol: what the CLI and the magics may ask of an engine.

Two implementations answer it: the bundled engine (``backends.BundledBackend``) and the
Docker Engine API backend (``ipydock.docker.DockerBackend``). Both return the dataclasses of
:mod:`ipydock.models` and raise the errors of :mod:`ipydock.errors`, so callers never know which
one they talk to.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, BinaryIO, Protocol

if TYPE_CHECKING:
    from ipydock.models import (
        BuildEvent,
        BuildResult,
        CheckReport,
        ContainerDetail,
        ContainerInfo,
        ContainerPrune,
        DiskUsage,
        FileChange,
        FileEntry,
        HistoryRow,
        ImageDetail,
        ImageInfo,
        LayerFiles,
        LoadedImage,
        LogEntry,
        NetworkInfo,
        PruneResult,
        PullResult,
        PushResult,
        RemoveEvent,
        RunOptions,
        RunResult,
        TransferEvent,
        VolumeInfo,
    )

__all__ = ["Backend", "swarm_of"]


class TerminalHandle(Protocol):
    """A pseudo-terminal as a client sees it (the bundled engine's is
    ``ipydock.engine.containers.terminal.Terminal``)."""

    def fileno(self) -> int: ...

    def read(self) -> bytes: ...  # b"" at the end

    def write(self, data: bytes) -> None: ...

    def resize(self, rows: int, cols: int) -> None: ...


class TerminalSession(Protocol):
    """A terminal and its process: ``wait()`` for the exit code after the output ended, or
    ``release()`` to detach (the process goes on)."""

    @property
    def container_id(self) -> str: ...

    @property
    def terminal(self) -> TerminalHandle: ...

    def wait(self) -> int: ...

    def release(self) -> None: ...


class Backend(Protocol):
    name: str

    def images(self, *, all: bool = False, filters: Sequence[str] = ()) -> list[ImageInfo]: ...

    def history(self, image: str) -> list[HistoryRow]: ...

    def inspect_image(self, image: str) -> ImageDetail: ...

    def image_layers(self, image: str) -> list[LayerFiles]: ...

    def tag(self, source: str, target: str) -> str: ...

    def remove_image(self, image: str, *, force: bool = False) -> list[RemoveEvent]: ...

    def prune_images(self, *, all: bool = False, filters: Sequence[str] = ()) -> PruneResult: ...

    def save(self, images: Sequence[str], out: str | BinaryIO) -> None: ...

    def load(self, source: str | BinaryIO) -> list[LoadedImage]: ...

    def import_image(
        self,
        source: str | BinaryIO,
        name: str | None = None,
        *,
        message: str = "",
        changes: Sequence[str] = (),
    ) -> str: ...

    # registries
    def pull(
        self, name: str, *, platform: str | None = None,
        progress: Callable[[TransferEvent], None] | None = None,
    ) -> PullResult: ...  # fmt: skip

    def push(
        self, name: str, *, progress: Callable[[TransferEvent], None] | None = None
    ) -> PushResult: ...

    def login(self, server: str | None, username: str, password: str) -> str: ...

    def bootstrap(
        self, name: str, *, suite: str = "bookworm", variant: str = "minbase",
        include: Sequence[str] = (), mirror: str | None = None,
        progress: Callable[[TransferEvent], None] | None = None,
    ) -> str: ...  # fmt: skip

    def logout(self, server: str | None) -> str: ...

    def info(self) -> dict[str, Any]: ...

    def disk_usage(self) -> list[DiskUsage]: ...

    def check(self, *, repair: bool = False) -> CheckReport: ...

    # containers
    def create_container(self, opts: RunOptions) -> str: ...

    def start_container(self, container: str) -> None: ...

    def run(
        self, opts: RunOptions, *, detach: bool = False, stdin: Any = None,
        output: Callable[[str, str], None] | None = None,
        on_start: Callable[[str], None] | None = None,
    ) -> RunResult: ...  # fmt: skip

    def start_attached(
        self, container: str, *, stdin: Any = None,
        output: Callable[[str, str], None] | None = None,
        on_start: Callable[[str], None] | None = None,
    ) -> int: ...  # fmt: skip

    # terminals (``-t``): the container's or exec's pseudo-terminal, see TerminalSession
    def run_terminal(
        self, opts: RunOptions, *, console_size: tuple[int, int] = (0, 0)
    ) -> TerminalSession: ...

    def start_terminal(
        self, container: str, *, console_size: tuple[int, int] = (0, 0)
    ) -> TerminalSession: ...

    def attach_terminal(self, container: str) -> TerminalSession: ...

    def exec_terminal(
        self, container: str, command: Sequence[str], *, env: Sequence[str] = (),
        workdir: str | None = None, user: str | None = None,
        console_size: tuple[int, int] = (0, 0),
    ) -> TerminalSession: ...  # fmt: skip

    def stop_container(self, container: str, timeout: float | None = None) -> str: ...

    def kill_container(self, container: str, signal: str = "KILL") -> str: ...

    def restart_container(self, container: str, timeout: float | None = None) -> str: ...

    def remove_container(
        self, container: str, *, force: bool = False, volumes: bool = False
    ) -> str: ...

    def wait_container(self, container: str) -> int: ...

    def containers(
        self, *, all: bool = False, filters: Sequence[str] = ()
    ) -> list[ContainerInfo]: ...

    def inspect_container(self, container: str) -> ContainerDetail: ...

    def logs(
        self, container: str, *, follow: bool = False, tail: int | None = None
    ) -> Iterator[LogEntry]: ...

    def top(self, container: str) -> tuple[list[str], list[list[str]]]: ...

    def diff(self, container: str) -> list[FileChange]: ...

    def commit(
        self, container: str, target: str | None = None, *, message: str = "",
        author: str = "", changes: Sequence[str] = (),
    ) -> str: ...  # fmt: skip

    def copy_from(self, container: str, path: str, out: BinaryIO) -> None: ...

    def copy_to(self, container: str, dest: str, tar: BinaryIO) -> None: ...

    def exec(
        self, container: str, command: Sequence[str], *, env: Sequence[str] = (),
        workdir: str | None = None, user: str | None = None, stdin: Any = None,
        stdout: Any = None, stderr: Any = None,
    ) -> int: ...  # fmt: skip

    def prune_containers(self) -> ContainerPrune: ...

    # volumes
    def create_volume(
        self, name: str | None = None, *, labels: dict[str, str] | None = None
    ) -> VolumeInfo: ...

    def volumes(self) -> list[VolumeInfo]: ...

    def inspect_volume(self, name: str) -> VolumeInfo: ...

    def remove_volume(self, name: str, *, force: bool = False) -> None: ...

    def prune_volumes(self, *, all: bool = False) -> ContainerPrune: ...

    def volume_files(self, name: str, path: str = "/") -> list[FileEntry]: ...

    # networks
    def networks(self, *, filters: Sequence[str] = ()) -> list[NetworkInfo]: ...

    def inspect_network(self, name: str) -> NetworkInfo: ...

    def create_network(
        self, name: str, *, driver: str = "bridge", subnet: str | None = None,
        gateway: str | None = None, internal: bool = False,
        labels: dict[str, str] | None = None, options: dict[str, str] | None = None,
    ) -> NetworkInfo: ...  # fmt: skip

    def remove_network(self, name: str) -> None: ...

    def connect_network(
        self, network: str, container: str, *, aliases: Sequence[str] = ()
    ) -> None: ...

    def disconnect_network(self, network: str, container: str, *, force: bool = False) -> None: ...

    def prune_networks(self) -> list[str]: ...

    # build
    def build(
        self, context: str, *, dockerfile: str | None = None, tags: Sequence[str] = (),
        build_args: dict[str, str | None] | None = None, target: str = "",
        no_cache: bool = False, reproducible: bool = False,
        progress: Callable[[BuildEvent], None] | None = None, stdin: BinaryIO | None = None,
        ulimits: Sequence[str] = (),
        network: str = "default",
    ) -> BuildResult: ...  # fmt: skip


def swarm_of(backend: Backend) -> Any:
    """The swarm behind ``backend`` (a Docker engine's, :class:`ipydock.docker.swarm.Swarm`);
    the bundled engine has none, and this says in one line what to switch to."""
    swarm = getattr(backend, "swarm", None)
    if swarm is None:
        from ipydock.errors import SwarmUnavailable

        raise SwarmUnavailable(
            f"the {backend.name} engine", "services, nodes and stacks run on a Docker Swarm"
        )
    return swarm
