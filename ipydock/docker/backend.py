"""The Docker Engine API backend: the whole :class:`ipydock.api.Backend` on ``docker.APIClient``.

::

    magics / CLI ──> DockerBackend.method ──> with errors(host, kind, name): api call
                                          ──> convert.*  (the models the bundled engine returns)

Every answer goes through :mod:`ipydock.docker.convert`, so a DataFrame from this engine has the
bundled engine's columns. What Docker's API cannot do raises :class:`NotSupported` saying what
to use instead. This package never imports :mod:`ipydock.engine`.
"""

from __future__ import annotations

import codecs
import io
import json
import stat
import tarfile
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timezone
from typing import Any, BinaryIO

from docker.types import IPAMConfig, IPAMPool

from ipydock.commands.dockerignore import large_context_warning
from ipydock.docker import build as building
from ipydock.docker import convert
from ipydock.docker.client import connect, errors
from ipydock.docker.endpoint import Endpoint
from ipydock.docker.runopts import create_args
from ipydock.errors import (
    EngineError,
    ImageNotFound,
    NotSupported,
    RegistryAuthFailed,
    UsageError,
)
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

__all__ = ["DockerBackend"]

_BUNDLED = "`%ipydock engine bundled` (or the `ipydock` CLI) does it on the bundled engine"


class DockerBackend:
    """A Docker (or Podman) engine over its API, at ``host`` (default ``$DOCKER_HOST``)."""

    name = "docker"

    def __init__(self, host: str | Endpoint | None = None, *, timeout: int = 60,
                 engine: str = "docker") -> None:  # fmt: skip
        self.api, self.host, self._close = connect(host, timeout)
        self.name = engine
        self._swarm: Any = None

    def close(self) -> None:
        self._close()

    @property
    def swarm(self) -> Any:
        """The engine's swarm (:class:`ipydock.docker.swarm.Swarm`): nodes, services, stacks."""
        from ipydock.docker.swarm import Swarm

        if self._swarm is None:  # one, so its warnings reach who asks after a call
            self._swarm = Swarm(self.api, self.host)
        return self._swarm

    def _errors(self, kind: str = "", name: str = "") -> Any:
        return errors(self.host, kind, name)

    # -- images ---------------------------------------------------------------------------------

    def images(self, *, all: bool = False, filters: Sequence[str] = ()) -> list[ImageInfo]:
        with self._errors("image"):
            raw = self.api.images(all=all, filters=convert.filters(filters) or None)
        return convert.image_rows(raw)

    def history(self, image: str) -> list[HistoryRow]:
        with self._errors("image", image):
            return [convert.history_row(h) for h in self.api.history(image)]

    def inspect_image(self, image: str) -> ImageDetail:
        with self._errors("image", image):
            return convert.image_detail(self.api.inspect_image(image), self.history(image))

    def image_layers(self, image: str) -> list[LayerFiles]:
        """The layer explorer's rows from the image's own layer tars: ``docker save`` of the
        image (spooled to a temp file: its manifest comes last), walked as the bundled
        engine walks its blobs."""
        import tempfile

        from ipydock.docker.archive import layers_of

        with self._errors("image", image):
            stream = self.api.get_image(image)
            with tempfile.TemporaryFile() as spool:
                _copy(stream, spool)
                spool.seek(0)
                return layers_of(spool)

    # -- registries: the engine pulls and pushes; credentials are docker's config.json -------

    def pull(
        self, name: str, *, platform: str | None = None,
        progress: Callable[[TransferEvent], None] | None = None,
    ) -> PullResult:  # fmt: skip
        from ipydock.docker import distribution

        with self._errors("image", name):
            return distribution.pull(self.api, name, platform, progress)

    def push(
        self, name: str, *, progress: Callable[[TransferEvent], None] | None = None
    ) -> PushResult:
        from ipydock.docker import distribution

        with self._errors("image", name):
            return distribution.push(self.api, name, progress)

    def login(self, server: str | None, username: str, password: str) -> str:
        """The engine checks the credentials; they are kept in config.json as docker's client
        keeps them (:mod:`ipydock.commands.credentials`, shared with the bundled engine)."""
        from ipydock.commands import credentials

        domain = credentials.server_domain(server)
        try:
            with self._errors():
                self.api.login(username, password, registry=credentials.server_key(domain),
                               reauth=True)  # fmt: skip
        except EngineError as exc:
            # dockerd 20.10 answers a refused login with 500 and the registry's status in text
            if exc.status in (401, 403) or "401 Unauthorized" in exc.message:
                raise RegistryAuthFailed(domain, "wrong username or password", 401) from exc
            raise
        credentials.store(domain, credentials.Credentials(username, password))
        return "Login Succeeded"

    def logout(self, server: str | None) -> str:
        from ipydock.commands.credentials import forget

        return forget(server)

    def tag(self, source: str, target: str) -> str:
        repo, tag = convert.split_name(target)
        with self._errors("image", source):
            image_id: str = self.api.inspect_image(source)["Id"]
            self.api.tag(image_id, repo, tag)
        return image_id

    def remove_image(self, image: str, *, force: bool = False) -> list[RemoveEvent]:
        with self._errors("image", image):
            return [convert.remove_event(e) for e in self.api.remove_image(image, force=force)]

    def prune_images(self, *, all: bool = False, filters: Sequence[str] = ()) -> PruneResult:
        flt = convert.filters(filters)
        flt["dangling"] = ["false" if all else "true"]
        with self._errors("image"):
            out = self.api.prune_images(filters=flt)
        events = [convert.remove_event(e) for e in out.get("ImagesDeleted") or []]
        return PruneResult(events, int(out.get("SpaceReclaimed") or 0))

    def save(self, images: Sequence[str], out: str | BinaryIO) -> None:
        # The SDK's public get_image() saves one name; docker's ``save a b`` is one archive of
        # several (``/images/get?names=a&names=b``, shared layers once), which only its
        # request helpers can ask for.
        with self._errors("image", ", ".join(images)):
            res = self.api._get(self.api._url("/images/get"), params={"names": list(images)},
                                stream=True)  # fmt: skip
            self.api._raise_for_status(res)
            if isinstance(out, str):
                with open(out, "wb") as f:
                    _copy(res.iter_content(1 << 16), f)
            else:
                _copy(res.iter_content(1 << 16), out)

    def load(self, source: str | BinaryIO) -> list[LoadedImage]:
        data = _read(source)
        names: list[str] = []
        ids: list[str] = []
        replaced: list[tuple[str, str]] = []
        with self._errors("image"):
            for chunk in self.api.load_image(data):
                text = str(chunk.get("stream") or "").strip()
                if text.startswith("Loaded image ID: "):
                    ids.append(text.split(": ", 1)[1])
                elif text.startswith("Loaded image: "):  # Podman: docker.io/me/app:1
                    names.append(convert.familiar(text.split(": ", 1)[1]))
                elif text.startswith("The image ") and "renaming the old one with ID" in text:
                    words = text.split()
                    replaced.append((words[2], words[words.index("ID") + 1]))
                if chunk.get("error"):
                    raise UsageError(f"image load: {chunk['error']}")
            by_id: dict[str, list[str]] = {i: [] for i in ids}
            for name in names:
                by_id.setdefault(self.api.inspect_image(name)["Id"], []).append(name)
        return [LoadedImage(i, tags, [r for r in replaced if r[0] in tags])
                for i, tags in by_id.items()]  # fmt: skip

    def import_image(
        self, source: str | BinaryIO, name: str | None = None, *, message: str = "",
        changes: Sequence[str] = (),
    ) -> str:  # fmt: skip
        repo, tag = convert.split_name(name) if name else (None, None)
        params: dict[str, Any] = {"fromSrc": "-", "repo": repo, "tag": tag,
                                  "message": message or None, "changes": list(changes)}  # fmt: skip
        if isinstance(source, str) and source.startswith(("http://", "https://")):
            params["fromSrc"], data = source, None
        else:
            data = _read(source)
        return self._import(params, data)

    def _import(self, params: dict[str, Any], data: Any) -> str:
        """POST /images/create?fromSrc=…: the new image's ID (``data``: bytes or a file)."""
        # The SDK's public import_image*() have no ``message`` (docker import -m): the request
        # is made with its helpers, as its own import_image_from_data makes it.
        with self._errors("image"):
            res = self.api._post(self.api._url("/images/create"), params=params, data=data,
                                 headers={"Content-Type": "application/tar"})  # fmt: skip
            self.api._raise_for_status(res)
        lines = [json.loads(text) for text in res.text.splitlines() if text.strip()]
        for line in lines:
            if line.get("error"):
                raise UsageError(f"image import: {line['error']}")
        return str(lines[-1]["status"]).strip()

    def bootstrap(
        self, name: str, *, suite: str = "bookworm", variant: str = "minbase",
        include: Sequence[str] = (), mirror: str | None = None,
        progress: Callable[[TransferEvent], None] | None = None,
    ) -> str:  # fmt: skip
        """The root made as the bundled engine makes it (mmdebstrap on this machine), spooled
        to a temp file (nothing reaches dockerd from a failed run), then ``docker import``ed
        with the same PATH, CMD and history text (dockerd records its own "created")."""
        import tempfile

        from ipydock.commands.bootstrap import ROW, BootstrapSpec, run

        spec = BootstrapSpec.parse(suite, variant, list(include), mirror)
        repo, tag = convert.split_name(name)
        emit = progress or (lambda event: None)
        with tempfile.TemporaryFile(prefix="ipydock-bootstrap-") as spool:
            with run(spec, emit) as stream:
                while chunk := stream.read(1 << 20):
                    spool.write(chunk)
            size = spool.tell()
            spool.seek(0)
            emit(TransferEvent(ROW, "Importing", 0, size))
            params = {"fromSrc": "-", "repo": repo, "tag": tag or "latest",
                      "message": spec.history,
                      "changes": [f"ENV {_PATH}", 'CMD ["bash"]']}  # fmt: skip
            image_id = self._import(params, spool)
        emit(TransferEvent(ROW, "Bootstrap complete", size, size))
        return image_id

    def info(self) -> dict[str, Any]:
        with self._errors():
            i = self.api.info()
            v = self.api.version()
        return {
            "engine": self.name,
            "host": self.host,
            "server_version": v.get("Version", ""),
            "api_version": self.api.api_version,
            "storage_driver": i.get("Driver", ""),
            "mode": "rootless" if "rootless" in (i.get("SecurityOptions") or []) else "root",
            "images": i.get("Images", 0),
            "containers": i.get("Containers", 0),
            "kernel": i.get("KernelVersion", ""),
            "architecture": i.get("Architecture", ""),
            "cgroup_version": int(i.get("CgroupVersion") or 1),
            "root": i.get("DockerRootDir", ""),
            "security_options": ", ".join(  # name=seccomp,profile=default -> seccomp profile=…
                o.replace("name=", "").replace(",", " ") for o in i.get("SecurityOptions") or ()
            ),
        }

    def disk_usage(self) -> list[DiskUsage]:
        with self._errors():
            df = self.api.df()
        images = df.get("Images") or []
        containers = df.get("Containers") or []
        volumes = df.get("Volumes") or []
        image_size = int(df.get("LayersSize") or 0)
        used = sum(int(i.get("Size") or 0) - int(i.get("SharedSize") or 0)
                   for i in images if i.get("Containers"))  # fmt: skip
        c_size = sum(int(c.get("SizeRw") or 0) for c in containers)
        c_live = sum(int(c.get("SizeRw") or 0) for c in containers if c.get("State") == "running")
        usage = [v.get("UsageData") or {} for v in volumes]
        v_sizes = [(int(u.get("Size") or 0), int(u.get("RefCount") or 0)) for u in usage]
        return [
            DiskUsage(
                "Images",
                len(images),
                sum(1 for i in images if i.get("Containers")),
                image_size,
                max(image_size - used, 0),
            ),  # fmt: skip
            DiskUsage(
                "Containers",
                len(containers),
                sum(1 for c in containers if c.get("State") == "running"),
                c_size,
                c_size - c_live,
            ),  # fmt: skip
            DiskUsage(
                "Local Volumes",
                len(volumes),
                sum(1 for _, r in v_sizes if r),
                sum(s for s, _ in v_sizes),
                sum(s for s, r in v_sizes if not r),
            ),  # fmt: skip
        ]

    def check(self, *, repair: bool = False) -> CheckReport:
        raise NotSupported("system check", self.name, "the Docker daemon keeps its own store; "
                           f"{_BUNDLED}")  # fmt: skip

    def build(
        self, context: str, *, dockerfile: str | None = None, tags: Sequence[str] = (),
        build_args: dict[str, str | None] | None = None, target: str = "",
        no_cache: bool = False, reproducible: bool = False,
        progress: Callable[[BuildEvent], None] | None = None, stdin: BinaryIO | None = None,
        ulimits: Sequence[str] = (),
        network: str = "default",
    ) -> BuildResult:  # fmt: skip
        """The classic builder (``DOCKER_BUILDKIT=0``); events as the bundled builder's."""
        if ulimits:
            raise NotSupported("build --ulimit", self.name, "the docker SDK's build does not "
                               f"send ulimits; use the docker CLI, or {_BUNDLED}")  # fmt: skip
        if reproducible:
            raise NotSupported("build --reproducible", self.name, "the classic builder stamps "
                               f"each step with the time it ran; {_BUNDLED}")  # fmt: skip
        emit = progress or (lambda event: None)
        ctx = building.open_context(context, dockerfile, stdin)
        try:
            emit(BuildEvent("context", size=ctx.size, text=large_context_warning(ctx.size)))
            before = {t: self._image_id(t) for t in tags}
            events = building.Events(emit, ctx.text, self._full_id)
            with self._errors("image"):
                args = {k: v for k, v in (build_args or {}).items() if v is not None}
                try:
                    stream = self.api.build(
                        fileobj=ctx.fileobj, custom_context=ctx.fileobj is not None,
                        path=ctx.remote, dockerfile=ctx.dockerfile, tag=tags[0] if tags else None,
                        buildargs=args or None, target=target or None, nocache=no_cache,
                        rm=True, decode=True, use_config_proxy=False,
                        network_mode=None if network == "default" else network,
                    )  # fmt: skip
                    events.consume(stream)
                except Exception as exc:
                    import docker.errors

                    if isinstance(exc, docker.errors.APIError) and exc.status_code == 400:
                        raise building.refused(str(exc.explanation)) from exc
                    raise
                image_id = events.image_id
                emit(BuildEvent("built", image_id=image_id))
                for name in tags[1:]:
                    repo, tag = convert.split_name(name)
                    self.api.tag(image_id, repo, tag)
                    events.tags.append(f"{repo}:{tag}")
            for name in events.tags:
                emit(BuildEvent("tagged", image_id=image_id, text=name))
        finally:
            ctx.close()
        untagged = [old for old in dict.fromkeys(before.values()) if old and old != image_id]
        return BuildResult(image_id, events.tags, events.total, events.cached, untagged)

    def _image_id(self, name: str) -> str:
        try:
            return self._full_id(name)
        except ImageNotFound:
            return ""

    def _full_id(self, ref: str) -> str:
        with self._errors("image", ref):
            return str(self.api.inspect_image(ref)["Id"])

    # -- containers -------------------------------------------------------------------------------

    def create_container(self, opts: RunOptions) -> str:
        with self._errors("image", opts.image):
            return str(self.api.create_container(**create_args(self.api, opts))["Id"])

    def start_attached(
        self, container: str, *, stdin: Any = None,
        output: Callable[[str, str], None] | None = None,
        on_start: Callable[[str], None] | None = None,
    ) -> int:  # fmt: skip
        """``start -a``: attach first, then start (no output missed); its exit code."""
        with self._errors("container", container):
            out = self.api.attach(container, stream=True, demux=True)
            self.api.start(container)
            if on_start is not None:
                on_start(container)
            decoders = {s: codecs.getincrementaldecoder("utf-8")("replace")
                        for s in ("stdout", "stderr")}  # fmt: skip
            for chunk in out:
                for stream, data in zip(("stdout", "stderr"), chunk, strict=True):
                    if data and output is not None:
                        output(stream, decoders[stream].decode(data))
            return int(self.api.wait(container).get("StatusCode", 0))

    # Terminals: the docker CLI does them against this engine (`docker run -it`).
    def run_terminal(self, opts: RunOptions, *, console_size: tuple[int, int] = (0, 0)) -> Any:
        raise _no_terminal("run -t")

    def start_terminal(self, container: str, *, console_size: tuple[int, int] = (0, 0)) -> Any:
        raise _no_terminal("start -a")

    def attach_terminal(self, container: str) -> Any:
        raise _no_terminal("attach")

    def exec_terminal(
        self, container: str, command: Sequence[str], *, env: Sequence[str] = (),
        workdir: str | None = None, user: str | None = None,
        console_size: tuple[int, int] = (0, 0),
    ) -> Any:  # fmt: skip
        raise _no_terminal("exec -t")

    def start_container(self, container: str) -> None:
        with self._errors("container", container):
            self.api.start(container)

    def run(
        self, opts: RunOptions, *, detach: bool = False, stdin: Any = None,
        output: Callable[[str, str], None] | None = None,
        on_start: Callable[[str], None] | None = None,
    ) -> RunResult:  # fmt: skip
        """create + start; attached: stream the output, wait, and (``--rm``) remove it after
        (from here, not by the daemon: its exit code must be read first)."""
        args = create_args(self.api, opts)
        if detach and opts.auto_remove:
            args["host_config"]["AutoRemove"] = True
        if stdin is not None and opts.interactive:
            args["stdin_open"] = args["stdin_once"] = True
        with self._errors("image", opts.image):
            cid = str(self.api.create_container(**args)["Id"])
        try:
            with self._errors("container", cid):
                send = (
                    self._send_stdin(cid, stdin) if stdin is not None and opts.interactive else None
                )
                # Attached: attach first, then start, so no output is missed (as docker run).
                out = None if detach else self.api.attach(cid, stream=True, demux=True)
                self.api.start(cid)
                if send is not None:
                    send()
                if out is None:
                    return RunResult(cid)
                if on_start is not None:
                    on_start(cid)
                decoders = {s: codecs.getincrementaldecoder("utf-8")("replace")
                            for s in ("stdout", "stderr")}  # fmt: skip
                for chunk in out:
                    for stream, data in zip(("stdout", "stderr"), chunk, strict=True):
                        if data and output is not None:
                            output(stream, decoders[stream].decode(data))
                code = int(self.api.wait(cid).get("StatusCode", 0))
        except BaseException:
            if opts.auto_remove:
                self._remove_quietly(cid)
            raise
        if opts.auto_remove:
            self._remove_quietly(cid)
        return RunResult(cid, code)

    def _send_stdin(self, cid: str, stdin: Any) -> Callable[[], None]:
        """Attach to ``cid``'s stdin before it starts; the returned function sends ``stdin``
        (a file or bytes) and closes it, once the container runs."""
        sock = self.api.attach_socket(cid, params={"stdin": 1, "stream": 1})

        def send() -> None:
            from ipydock.docker import hijack

            data = stdin if isinstance(stdin, bytes) else _read(getattr(stdin, "buffer", stdin))
            hijack.send_all(sock, data)
            hijack.close_write(sock)  # the container sees end of input
            sock.close()

        return send

    def _remove_quietly(self, cid: str) -> None:
        import contextlib

        from ipydock.errors import IPyDockError

        with contextlib.suppress(IPyDockError), self._errors("container", cid):
            self.api.remove_container(cid, force=True, v=True)

    def _id(self, container: str) -> str:
        with self._errors("container", container):
            return str(self.api.inspect_container(container)["Id"])

    def stop_container(self, container: str, timeout: float | None = None) -> str:
        cid = self._id(container)
        with self._errors("container", container):
            self.api.stop(cid, timeout=int(timeout) if timeout is not None else None)
        return cid

    def kill_container(self, container: str, signal: str = "KILL") -> str:
        cid = self._id(container)
        with self._errors("container", container):
            self.api.kill(cid, signal=signal)
        return cid

    def restart_container(self, container: str, timeout: float | None = None) -> str:
        cid = self._id(container)
        with self._errors("container", container):
            self.api.restart(cid, timeout=int(timeout) if timeout is not None else 10)
        return cid

    def remove_container(self, container: str, *, force: bool = False, volumes: bool = False
                         ) -> str:  # fmt: skip
        cid = self._id(container)
        with self._errors("container", container):
            self.api.remove_container(cid, force=force, v=volumes)
        return cid

    def wait_container(self, container: str) -> int:
        with self._errors("container", container):
            return int(self.api.wait(container).get("StatusCode", 0))

    def containers(self, *, all: bool = False, filters: Sequence[str] = ()) -> list[ContainerInfo]:
        with self._errors("container"):
            raw = self.api.containers(all=all, filters=convert.filters(filters) or None)
            pids = {c["Id"]: self._pid(c["Id"]) for c in raw if c.get("State") == "running"}
        rows = [convert.container_row(c, pids.get(c["Id"], 0)) for c in raw]
        if self.name == "podman":  # its full name (docker.io/me/app:latest): docker's short one
            import dataclasses

            rows = [dataclasses.replace(r, image=convert.familiar(r.image.removesuffix(
                ":latest"))) for r in rows]  # fmt: skip
        return sorted(rows, key=lambda r: r.created, reverse=True)

    def _pid(self, cid: str) -> int:
        try:
            return int(self.api.inspect_container(cid)["State"].get("Pid") or 0)
        except Exception:  # gone meanwhile
            return 0

    def inspect_container(self, container: str) -> ContainerDetail:
        with self._errors("container", container):
            return convert.container_detail(self.api.inspect_container(container))

    def logs(self, container: str, *, follow: bool = False, tail: int | None = None
             ) -> Iterator[LogEntry]:  # fmt: skip
        """Docker's log entries with their stream and time (``timestamps=1``, demultiplexed)."""
        with self._errors("container", container):
            tty = bool(self.api.inspect_container(container)["Config"].get("Tty"))
            params = {"stdout": 1, "stderr": 1, "timestamps": 1, "follow": int(follow),
                      "tail": "all" if tail is None else tail}  # fmt: skip
            # The SDK's public logs() merges stdout and stderr into one stream; the entries
            # keep which stream each line came from, so the frames are read here.
            res = self.api._get(self.api._url("/containers/{0}/logs", container), params=params,
                                stream=True)  # fmt: skip
            self.api._raise_for_status(res)
            frames = _frames(res, tty)
            pending = {"stdout": "", "stderr": ""}
            for chunk in frames:
                for stream, data in zip(("stdout", "stderr"), chunk, strict=True):
                    if not data:
                        continue
                    pending[stream] += data.decode("utf-8", "replace")
                    *lines, pending[stream] = pending[stream].split("\n")
                    for line in lines:
                        yield _log_entry(stream, line + "\n")
            for stream, rest in pending.items():
                if rest:
                    yield _log_entry(stream, rest)

    def top(self, container: str) -> tuple[list[str], list[list[str]]]:
        """dockerd runs the host's ``ps`` on the container's processes; Podman runs ``ps`` in
        the container (busybox's knows no ``uid`` column: ``user`` instead, the container's
        own PIDs) and answers each row, and the titles, as one unsplit string."""
        args = "-o user,pid,ppid,args" if self.name == "podman" else "-o uid,pid,ppid,args"
        with self._errors("container", container):
            out = self.api.top(container, ps_args=args)
        raw_titles = list(out.get("Titles") or [])
        procs = [list(p) for p in out.get("Processes") or []]
        if len(raw_titles) == 1 and " " in raw_titles[0].strip():  # Podman's one string
            raw_titles = raw_titles[0].split()
            procs = [p[0].split(None, len(raw_titles) - 1) if len(p) == 1 else p for p in procs]
        names = {"COMMAND": "CMD", "ARGS": "CMD", "USER": "UID"}
        return [names.get(t, t) for t in raw_titles], procs

    def diff(self, container: str) -> list[FileChange]:
        with self._errors("container", container):
            return [convert.file_change(c) for c in self.api.diff(container) or []]

    def commit(
        self, container: str, target: str | None = None, *, message: str = "", author: str = "",
        changes: Sequence[str] = (),
    ) -> str:  # fmt: skip
        repo, tag = convert.split_name(target) if target else (None, None)
        with self._errors("container", container):
            out = self.api.commit(container, repository=repo, tag=tag, message=message or None,
                                  author=author or None, changes=list(changes) or None)  # fmt: skip
        return str(out["Id"])

    def copy_from(self, container: str, path: str, out: BinaryIO) -> None:
        with self._errors("container", container):
            stream, _stat = self.api.get_archive(container, path)
            _copy(stream, out)

    def copy_to(self, container: str, dest: str, tar: BinaryIO) -> None:
        with self._errors("container", container):
            if not self.api.put_archive(container, dest, tar.read()):
                raise UsageError(f"cannot copy to {container}:{dest}")

    def exec(
        self, container: str, command: Sequence[str], *, env: Sequence[str] = (),
        workdir: str | None = None, user: str | None = None, stdin: Any = None,
        stdout: Any = None, stderr: Any = None,
    ) -> int:  # fmt: skip
        """Run ``command`` in ``container``; its output goes to ``stdout``/``stderr`` (files,
        text or binary, or descriptors; None: this process's). ``stdin`` as on the bundled
        engine: None is this process's standard input, ``subprocess.DEVNULL`` none, else bytes,
        a file or a descriptor. Input goes over the exec's hijacked connection (the SDK's
        ``exec_start(socket=True)``) until it ends, then the process sees end of input."""
        import subprocess
        import sys

        source = None if stdin == subprocess.DEVNULL else (0 if stdin is None else stdin)
        targets = (stdout or sys.stdout, stderr or sys.stderr)
        with self._errors("container", container):
            ex = self.api.exec_create(container, list(command), environment=list(env) or None,
                                      workdir=workdir, user=user or "",
                                      stdin=source is not None)  # fmt: skip
            if source is None:
                for chunk in self.api.exec_start(ex["Id"], stream=True, demux=True):
                    for target, data in zip(targets, chunk, strict=True):
                        if data:
                            _write(target, data)
            else:
                self._exec_with_input(ex["Id"], source, targets)
            return int(self.api.exec_inspect(ex["Id"]).get("ExitCode") or 0)

    def _exec_with_input(self, exec_id: str, source: Any, targets: tuple[Any, Any]) -> None:
        """Feed ``source`` to the exec while its output frames are read, until it ends."""
        from docker.utils.socket import STDERR, frames_iter

        from ipydock.docker import hijack

        sock = self.api.exec_start(exec_id, socket=True)
        thread, stop = hijack.pump(sock, source)
        try:
            for stream, data in frames_iter(sock, False):
                if data:
                    _write(targets[1] if stream == STDERR else targets[0], data)
        finally:
            stop.set()
            thread.join(timeout=5)
            sock.close()

    def prune_containers(self) -> ContainerPrune:
        with self._errors("container"):
            out = self.api.prune_containers()
        return ContainerPrune(list(out.get("ContainersDeleted") or []),
                              int(out.get("SpaceReclaimed") or 0))  # fmt: skip

    # -- volumes ----------------------------------------------------------------------------------

    def create_volume(self, name: str | None = None, *, labels: dict[str, str] | None = None
                      ) -> VolumeInfo:  # fmt: skip
        with self._errors("volume", name or ""):
            return convert.volume(self.api.create_volume(name, labels=labels or None))

    def volumes(self) -> list[VolumeInfo]:
        with self._errors("volume"):
            raw = self.api.volumes().get("Volumes") or []
        return sorted((convert.volume(v) for v in raw), key=lambda v: v.name)

    def inspect_volume(self, name: str) -> VolumeInfo:
        with self._errors("volume", name):
            return convert.volume(self.api.inspect_volume(name))

    def remove_volume(self, name: str, *, force: bool = False) -> None:
        with self._errors("volume", name):
            self.api.remove_volume(name, force=force)

    def prune_volumes(self, *, all: bool = False) -> ContainerPrune:
        """Unused anonymous volumes (``all``: every unused one), decided here: Docker 20.10's
        own prune takes named volumes too, 23+ only with ``all=true``."""
        with self._errors("volume"):
            unused = self.api.volumes(filters={"dangling": True}).get("Volumes") or []
            sizes = {v["Name"]: int((v.get("UsageData") or {}).get("Size") or 0)
                     for v in self.api.df().get("Volumes") or []}  # fmt: skip
            doomed = [v["Name"] for v in unused if all or convert.volume(v).anonymous]
            for name in doomed:
                self.api.remove_volume(name)
        return ContainerPrune(doomed, sum(max(sizes.get(n, 0), 0) for n in doomed))

    def volume_files(self, name: str, path: str = "/") -> list[FileEntry]:
        """Read through a container that is created, never started, with the volume mounted:
        ``GET /containers/{id}/archive`` works on those, also on a remote engine."""
        self.inspect_volume(name)
        with self._errors("volume", name):
            image = self._reader_image()
            cid = self.api.create_container(
                image, command=["none"], network_disabled=True,
                host_config=self.api.create_host_config(binds=[f"{name}:/v:ro"]),
            )["Id"]  # fmt: skip
            try:
                target = "/v/" + path.strip("/") if path.strip("/") else "/v/"
                try:
                    stream, _ = self.api.get_archive(cid, target)
                except Exception as exc:
                    from ipydock.docker.client import translate

                    err = translate(exc, self.host)
                    raise UsageError(f"no such path in volume {name}: {path}") from err
                return _tar_entries(_read_chunks(stream), path)
            finally:
                self.api.remove_container(cid, force=True)
                self.api.remove_image(image, force=True)

    def _reader_image(self) -> str:
        """A one-directory image to create the reader container from (removed after use)."""
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tf:
            info = tarfile.TarInfo("v")
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            tf.addfile(info)
        return self.import_image(io.BytesIO(buf.getvalue()), message="ipydock volume reader")

    # -- networks ---------------------------------------------------------------------------------

    def networks(self, *, filters: Sequence[str] = ()) -> list[NetworkInfo]:
        with self._errors("network"):
            raw = self.api.networks(filters=convert.filters(filters) or None)
            return sorted((self._network(n["Id"]) for n in raw), key=lambda n: n.name)

    def _network(self, ref: str) -> NetworkInfo:
        """One network with its containers' aliases (from each container's own inspect)."""
        n = self.api.inspect_network(ref)
        aliases: dict[str, list[str]] = {}
        for cid in n.get("Containers") or {}:
            try:
                nets = self.api.inspect_container(cid)["NetworkSettings"]["Networks"]
            except Exception:  # gone meanwhile
                continue
            aliases[cid] = list((nets.get(n["Name"]) or {}).get("Aliases") or [])
        return convert.network(n, aliases)

    def inspect_network(self, name: str) -> NetworkInfo:
        with self._errors("network", name):
            return self._network(name)

    def create_network(
        self, name: str, *, driver: str = "bridge", subnet: str | None = None,
        gateway: str | None = None, internal: bool = False,
        labels: dict[str, str] | None = None, attachable: bool = False,
        options: dict[str, str] | None = None,
    ) -> NetworkInfo:  # fmt: skip
        if gateway and not subnet:
            raise UsageError("--gateway needs --subnet")
        ipam = (
            IPAMConfig(pool_configs=[IPAMPool(subnet=subnet, gateway=gateway)]) if subnet else None
        )
        with self._errors("network", name):
            out = self.api.create_network(name, driver=driver, ipam=ipam, internal=internal,
                                          labels=labels or None, options=options or None,
                                          check_duplicate=True,
                                          attachable=attachable or None)  # fmt: skip
            return self._network(out["Id"])

    def remove_network(self, name: str) -> None:
        with self._errors("network", name):
            self.api.remove_network(name)

    def connect_network(self, network: str, container: str, *, aliases: Sequence[str] = ()
                        ) -> None:  # fmt: skip
        self.inspect_network(network)
        with self._errors("container", container):
            self.api.connect_container_to_network(container, network,
                                                  aliases=list(aliases) or None)  # fmt: skip

    def disconnect_network(self, network: str, container: str, *, force: bool = False) -> None:
        self.inspect_network(network)
        with self._errors("container", container):
            self.api.disconnect_container_from_network(container, network, force=force)

    def prune_networks(self) -> list[str]:
        with self._errors("network"):
            return list(self.api.prune_networks().get("NetworksDeleted") or [])


# -- helpers ------------------------------------------------------------------------------------


_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def _read(source: str | BinaryIO) -> bytes:
    if isinstance(source, str):
        if source == "-":
            import sys

            return sys.stdin.buffer.read()
        with open(source, "rb") as f:
            return f.read()
    return source.read()


def _copy(chunks: Any, out: BinaryIO) -> None:
    for chunk in chunks:
        out.write(chunk)


def _read_chunks(chunks: Any) -> bytes:
    return b"".join(chunks)


def _write(target: Any, data: bytes) -> None:
    """``data`` to a binary or text file (or a file descriptor)."""
    import os

    if isinstance(target, int):
        os.write(target, data)
    elif isinstance(target, io.TextIOBase) or hasattr(target, "encoding"):
        target.write(data.decode("utf-8", "replace"))
        target.flush()
    else:
        target.write(data)


def _frames(res: Any, tty: bool) -> Iterator[tuple[bytes | None, bytes | None]]:
    """A streamed HTTP body of Docker's multiplexed frames (8-byte header: stream, length) as
    (stdout, stderr) pairs; a TTY container's body is plain stdout."""
    import struct

    if tty:
        for chunk in res.iter_content(4096):
            yield chunk, None
        return
    while True:
        header = res.raw.read(8)
        if len(header) < 8:
            return
        kind, length = struct.unpack(">BxxxL", header)
        data = res.raw.read(length) if length else b""
        yield (data, None) if kind != 2 else (None, data)


def _log_entry(stream: str, line: str) -> LogEntry:
    """``2024-05-01T10:00:00.123456789Z text`` (Docker's ``timestamps=1``) as a LogEntry."""
    when, _, text = line.partition(" ")
    return LogEntry(stream, text, when)


_TYPES = {tarfile.DIRTYPE: ("dir", stat.S_IFDIR), tarfile.SYMTYPE: ("symlink", stat.S_IFLNK),
          tarfile.FIFOTYPE: ("fifo", stat.S_IFIFO), tarfile.CHRTYPE: ("char", stat.S_IFCHR),
          tarfile.BLKTYPE: ("block", stat.S_IFBLK)}  # fmt: skip


def _tar_entries(data: bytes, path: str) -> list[FileEntry]:
    """A ``GET …/archive`` tar of ``/v/PATH`` as ``volume files`` rows, in the bundled
    engine's order: a directory's entries, then those of each subdirectory in turn."""
    base = "/" + path.strip("/") if path.strip("/") else ""
    by_parent: dict[str, list[FileEntry]] = {}
    root: FileEntry | None = None
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        for m in tf:
            rel = m.name.split("/", 1)[1] if "/" in m.name else ""
            full = (base + "/" + rel).rstrip("/") if rel else (base or "/")
            kind, bits = _TYPES.get(m.type, ("file", stat.S_IFREG))
            entry = FileEntry(
                path=full or "/", type=kind, size=m.size if kind == "file" else 0,
                mode=stat.filemode(bits | (m.mode & 0o7777)),
                mtime=datetime.fromtimestamp(m.mtime, timezone.utc),
                link_target=m.linkname if kind == "symlink" else "",
            )  # fmt: skip
            if not rel:
                root = entry
            else:
                by_parent.setdefault(full.rsplit("/", 1)[0] or "/", []).append(entry)
    out: list[FileEntry] = [root] if root else []

    def walk(d: str) -> None:
        kids = sorted(by_parent.get(d, []), key=lambda e: e.path.rsplit("/", 1)[1])
        out.extend(kids)
        for k in kids:
            if k.type == "dir":
                walk(k.path)

    walk(root.path if root else "/")
    return out


def _no_terminal(operation: str) -> NotSupported:
    hint = "not yet through ipydock: use the docker CLI (`docker run -it`) on the same engine"
    return NotSupported(operation, "docker", hint)
