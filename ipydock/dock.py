"""ipydock from plain Python: the magics' operations as functions returning the same objects.

::

    import ipydock.dock as dock
    h = dock.build("FROM busybox\\nRUN echo hi", tags=["demo"])   # HistoryFrame (attrs: image_id)
    dock.images()                     # ImagesFrame          = %image ls
    out = dock.run("demo", "echo", "hi")   # RunOutput: a str with .exit_code
    web = dock.run("demo", "sleep", "60", detach=True)   # Container: .logs() .stop() .remove()
    dock.containers(all=True)         # ContainersFrame      = %container ls -a
    dock.container_list()             # the widget with Stop / Remove buttons
    dock.volume_files("data")         # VolumeFilesFrame (tree + previews in a notebook)
    dock.networks()                   # DataFrame            = %network ls
    dock.network_graph()              # the SVG picture      = %network ls --graph
    dock.capabilities()               # what this machine can show (from %ipydock info)

Every function takes ``backend=`` (any :class:`ipydock.api.Backend`); without it they use one
bundled engine on ``$IPYDOCK_ROOT``, connected on first use (:func:`default_backend`).
"""

from __future__ import annotations

import io
import os
import stat
from collections.abc import Callable, Sequence
from typing import Any

import pandas as pd

from ipydock.api import Backend
from ipydock.display.containers import ContainerList, ContainersFrame, LogText, stream_logs
from ipydock.display.frames import HistoryFrame, ImagesFrame, frame
from ipydock.display.network import NetworkGraph
from ipydock.display.network import network_graph as network_graph_of
from ipydock.display.volumes import VolumeFilesFrame  # noqa: F401  (registers its frame)
from ipydock.models import (
    BuildEvent,
    ContainerInfo,
    FileEntry,
    HistoryRow,
    ImageInfo,
    NetworkInfo,
    RunOutput,
    RunResult,
    VolumeInfo,
    to_record,
)

__all__ = [
    "Container",
    "build",
    "capabilities",
    "container_list",
    "with_buttons",
    "containers",
    "default_backend",
    "history",
    "images",
    "logs",
    "network_graph",
    "networks",
    "run",
    "volume_files",
    "volume_previews",
    "volumes",
]

PREVIEW_BYTES = 4096  # files up to this size get a preview
PREVIEW_FILES = 50  # and at most this many of them

_default: Backend | None = None


def default_backend() -> Backend:
    """The bundled engine on ``$IPYDOCK_ROOT`` (connected once per process)."""
    global _default
    if _default is None:
        from ipydock import backends

        _default = backends.connect("bundled")
    return _default


def _b(backend: Backend | None) -> Backend:
    return backend if backend is not None else default_backend()


def capabilities(
    info: dict[str, Any] | None = None, *, backend: Backend | None = None
) -> pd.DataFrame:
    """What this machine can show, one row per feature (``feature``, ``here``, ``why``): from
    the dict ``%ipydock info`` returned, or the backend's own ``info()``."""
    from ipydock.display.capabilities import capabilities as table

    return table(info if info is not None else _b(backend).info())


# -- images -------------------------------------------------------------------------------------


def build(
    dockerfile: str,
    context: str = ".",
    *,
    tags: Sequence[str] = (),
    build_args: dict[str, str | None] | None = None,
    target: str = "",
    no_cache: bool = False,
    reproducible: bool = False,
    progress: Callable[[BuildEvent], None] | None = None,
    backend: Backend | None = None,
    network: str = "default",
) -> HistoryFrame:
    """Build ``dockerfile`` (its text) in ``context``; the new image's history, with
    ``attrs["image_id"]`` and ``attrs["tags"]``. ``progress`` gets the builder's events (a
    :class:`ipydock.display.progress.BuildProgress` ``.handle`` draws them)."""
    b = _b(backend)
    if "://" not in context:
        context = os.path.abspath(os.path.expanduser(context))
    result = b.build(
        context, dockerfile="-", stdin=io.BytesIO(dockerfile.encode("utf-8", "surrogateescape")),
        tags=list(tags), build_args=build_args, target=target, no_cache=no_cache,
        reproducible=reproducible, progress=progress, network=network,
    )  # fmt: skip
    h = history(result.image_id, backend=b)
    h.attrs.update(image_id=result.image_id, tags=list(result.tags))
    return h


def images(*, all: bool = False, filters: Sequence[str] = (), backend: Backend | None = None
           ) -> ImagesFrame:  # fmt: skip
    return frame(_b(backend).images(all=all, filters=filters), ImageInfo)  # type: ignore[return-value]


def history(image: str, *, backend: Backend | None = None) -> HistoryFrame:
    return frame(_b(backend).history(image), HistoryRow)  # type: ignore[return-value]


# -- containers ---------------------------------------------------------------------------------


class Container:
    """A container by ID, as ``%container run -d`` returns it: its operations as methods."""

    def __init__(self, backend: Backend, id: str) -> None:
        self.backend, self.id = backend, id

    @property
    def name(self) -> str:
        return self.backend.inspect_container(self.id).name.lstrip("/")

    def inspect(self) -> dict[str, Any]:
        return to_record(self.backend.inspect_container(self.id))

    def logs(self, *, follow: bool = False, tail: int | None = None) -> LogText | None:
        return logs(self.id, follow=follow, tail=tail, backend=self.backend)

    def stop(self, timeout: float | None = None) -> None:
        self.backend.stop_container(self.id, timeout)

    def wait(self) -> int:
        return self.backend.wait_container(self.id)

    def remove(self, *, force: bool = False) -> None:
        self.backend.remove_container(self.id, force=force)

    def __repr__(self) -> str:
        return f"<Container {self.id[:12]}>"

    def _repr_html_(self) -> str:
        return f"Container <code title='{self.id}'>{self.id[:12]}</code>"


def from_run(backend: Backend, result: RunResult | RunOutput) -> Container | RunOutput:
    """What a magic returns for ``container run``: the output, or (``-d``) a Container."""
    return Container(backend, result.id) if isinstance(result, RunResult) else result


def run(
    image: str, *command: str, detach: bool = False, backend: Backend | None = None, **options: Any
) -> RunOutput | Container:
    """``docker run``: ``options`` are :class:`ipydock.models.RunOptions` fields
    (``name=``, ``env=(...)``, ``volumes=("data:/data",)``, ``auto_remove=True``, …)."""
    from ipydock.models import RunOptions

    b = _b(backend)
    opts = RunOptions(image=image, command=tuple(command), **options)
    chunks: list[tuple[str, str]] = []
    result = b.run(opts, detach=detach, output=lambda s, t: chunks.append((s, t)))
    return from_run(b, result if detach else RunOutput(chunks, result))


def containers(*, all: bool = False, filters: Sequence[str] = (), backend: Backend | None = None
               ) -> ContainersFrame:  # fmt: skip
    return frame(_b(backend).containers(all=all, filters=filters), ContainerInfo)  # type: ignore[return-value]


def logs(
    container: str, *, follow: bool = False, tail: int | None = None,
    backend: Backend | None = None,
) -> LogText | None:  # fmt: skip
    """The logs as text; with ``follow`` they stream into the cell (None at the end)."""
    entries = _b(backend).logs(container, follow=follow, tail=tail)
    if follow:
        stream_logs(entries)
        return None
    return LogText("".join(e.text for e in entries))


def container_list(*, all: bool = True, backend: Backend | None = None) -> ContainerList:
    """A widget listing the containers with Stop and Remove buttons."""
    b = _b(backend)
    return ContainerList(
        containers(all=all, backend=b), _actions(b), lambda: containers(all=all, backend=b)
    )


def with_buttons(
    backend: Backend, frame: ContainersFrame, *, all: bool = False, filters: Sequence[str] = ()
) -> ContainersFrame:
    """``frame`` (``%container ls``) drawn as the list widget, bound to ``backend``."""
    return frame.with_buttons(
        _actions(backend), lambda: containers(all=all, filters=filters, backend=backend)
    )


def _actions(backend: Backend) -> dict[str, Callable[[str], Any]]:
    return {"stop": backend.stop_container, "remove": backend.remove_container}


# -- networks -----------------------------------------------------------------------------------


def networks(*, filters: Sequence[str] = (), backend: Backend | None = None) -> pd.DataFrame:
    return frame(_b(backend).networks(filters=filters), NetworkInfo)


def network_graph(*, backend: Backend | None = None) -> NetworkGraph:
    """Containers, networks, addresses and published ports as a picture (SVG in a notebook)."""
    b = _b(backend)
    return network_graph_of(b.networks(), b.containers())


# -- volumes ------------------------------------------------------------------------------------


def volumes(*, backend: Backend | None = None) -> pd.DataFrame:
    return frame(_b(backend).volumes(), VolumeInfo)


def volume_files(
    name: str, path: str = "/", *, previews: bool = True, backend: Backend | None = None
) -> pd.DataFrame:
    b = _b(backend)
    rows = b.volume_files(name, path)
    return files_frame(b, name, rows, previews=previews)


def files_frame(
    backend: Backend, name: str, rows: list[FileEntry], *, previews: bool = True
) -> pd.DataFrame:
    """``rows`` as a VolumeFilesFrame with the previews of its small text files."""
    df = frame(rows, FileEntry)
    df.attrs.update(volume=name, previews=volume_previews(backend, name, rows) if previews else {})
    return df


def volume_previews(backend: Backend, name: str, rows: list[FileEntry]) -> dict[str, str]:
    """The text of small regular files (up to :data:`PREVIEW_BYTES`, :data:`PREVIEW_FILES` of
    them), read from the volume's host directory; binary files and anything that would leave
    the volume (a symlink on the way) are left out.

    Only for engines whose volumes are local directories (the bundled one); others get none.
    """
    mountpoint = getattr(backend.inspect_volume(name), "mountpoint", "")
    if backend.name != "bundled" or not os.path.isdir(mountpoint):
        return {}
    base = os.path.realpath(mountpoint)
    out: dict[str, str] = {}
    for r in rows:
        if len(out) >= PREVIEW_FILES:
            break
        if r.type == "file" and r.size <= PREVIEW_BYTES:
            text = _read_small(base, r.path)
            if text is not None:
                out[r.path] = text
    return out


def _read_small(base: str, path: str) -> str | None:
    full = os.path.join(base, path.lstrip("/"))
    if os.path.realpath(full) != full:  # a symlinked directory on the way
        return None
    try:
        fd = os.open(full, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            return None
        data = f.read(PREVIEW_BYTES + 1)
    if b"\0" in data:
        return None
    try:
        return data[:PREVIEW_BYTES].decode("utf-8")
    except UnicodeDecodeError:
        return None
