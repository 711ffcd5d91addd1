"""The one place that picks an engine: ``connect("bundled")`` or ``connect("docker", host=URL)``."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timezone
from types import ModuleType
from typing import IO, TYPE_CHECKING, Any, BinaryIO

from ipydock import models
from ipydock.api import Backend
from ipydock.engine.store import Store, images
from ipydock.errors import (
    CgroupError,
    ContainerNotFound,
    ContainerNotRunning,
    NotSupported,
    UsageError,
)

if TYPE_CHECKING:
    from ipydock.engine.containers.terminal import TerminalSession
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

Output = Callable[[str, str], None]  # (stream, text) of an attached container

__all__ = ["BundledBackend", "connect"]


def connect(
    kind: str = "bundled", *, root: str | None = None, driver: str | None = None,
    warm: bool = True, host: str | None = None, context: str | None = None,
    tls: dict[str, Any] | None = None,
) -> Backend:  # fmt: skip
    """The bundled engine on ``root``; the Docker engine at ``host`` or of docker context
    ``context`` (default ``$DOCKER_HOST``, ``$DOCKER_CONTEXT``, the config's current context,
    else the local socket; ``tls``: ``tlsverify``/``tlscacert``/``tlscert``/``tlskey`` as
    docker's flags); or Podman's Docker-compatible service (started for the user when it
    does not answer). Raises ``EngineUnavailable`` when the engine does not answer.
    ``root``/``driver``/``warm`` concern the bundled engine only."""
    if kind == "bundled":
        return BundledBackend(Store(root, driver), warm=warm)
    if kind not in ("docker", "podman"):
        raise UsageError(f"unknown engine {kind!r}: use 'bundled', 'docker' or 'podman'")
    try:
        from ipydock.docker import DockerBackend
        from ipydock.docker.endpoint import resolve
    except ModuleNotFoundError as exc:
        raise NotSupported(f"engine {kind}", "bundled", "the Docker engine API client is not "
                           "installed: pip install 'ipydock[docker]' (the `docker` package), "
                           "then switch again") from exc  # fmt: skip
    if kind == "podman":
        from ipydock.docker.podman import service_socket

        return DockerBackend(host or service_socket(), engine="podman")
    return DockerBackend(resolve(host, context, **(tls or {})))


class BundledBackend:
    """The bundled engine in this process: an adapter from :class:`~ipydock.api.Backend` to
    the store, the builder and the container layer."""

    name = "bundled"

    def __init__(self, store: Store, *, warm: bool = True) -> None:
        self.store = store
        # A long-lived caller (a kernel) forks container supervisors from a warm helper; a
        # one-shot CLI starts them as new processes instead of starting a helper first.
        self.warm = warm
        self._forkserver: Any = None
        self._mode: dict[str, str] | None = None

    def images(self, *, all: bool = False, filters: Sequence[str] = ()) -> list[ImageInfo]:
        return images.list_images(self.store, all=all, filters=filters)

    def history(self, image: str) -> list[HistoryRow]:
        return images.history(self.store, image)

    def inspect_image(self, image: str) -> ImageDetail:
        return images.inspect(self.store, image)

    def image_layers(self, image: str) -> list[LayerFiles]:
        from ipydock.layerwalk import Layer, walk

        rec = self.store.resolve(image)
        layers = [Layer(x.diff_id, x.size, self.store.layer_tar(x))
                  for x in self.store.layer_chain(rec)]  # fmt: skip
        return walk(layers, self.store.config(rec).get("history") or [])

    def tag(self, source: str, target: str) -> str:
        return images.tag(self.store, source, target)

    def remove_image(self, image: str, *, force: bool = False) -> list[RemoveEvent]:
        return images.remove(self.store, image, force=force)

    def prune_images(self, *, all: bool = False, filters: Sequence[str] = ()) -> PruneResult:
        return images.prune(self.store, all=all, filters=filters)

    # archive and check import tarfile, compressors and the snapshot drivers: loaded on use,
    # so that `image ls` from the CLI starts fast.

    def save(self, images: Sequence[str], out: str | BinaryIO) -> None:
        from ipydock.engine.store import archive

        archive.save(self.store, images, out)

    def load(self, source: str | BinaryIO) -> list[LoadedImage]:
        from ipydock.engine.store import archive

        return archive.load(self.store, source)

    def import_image(
        self,
        source: str | BinaryIO,
        name: str | None = None,
        *,
        message: str = "",
        changes: Sequence[str] = (),
    ) -> str:
        from ipydock.engine.store import archive

        rec = archive.import_tarball(self.store, source, name, message=message, changes=changes)
        return rec.id

    # registries: the client imports httpx, loaded on use

    def pull(
        self, name: str, *, platform: str | None = None,
        progress: Callable[[TransferEvent], None] | None = None,
    ) -> PullResult:  # fmt: skip
        from ipydock.engine.registry.pull import pull

        return pull(self.store, name, platform=platform, progress=progress)

    def push(
        self, name: str, *, progress: Callable[[TransferEvent], None] | None = None
    ) -> PushResult:
        from ipydock.engine.registry.push import push

        return push(self.store, name, progress=progress)

    def bootstrap(
        self, name: str, *, suite: str = "bookworm", variant: str = "minbase",
        include: Sequence[str] = (), mirror: str | None = None,
        progress: Callable[[TransferEvent], None] | None = None,
    ) -> str:  # fmt: skip
        from ipydock.commands.bootstrap import BootstrapSpec
        from ipydock.engine.store.bootstrap import bootstrap

        spec = BootstrapSpec.parse(suite, variant, list(include), mirror)
        return bootstrap(self.store, name, spec, progress)

    def login(self, server: str | None, username: str, password: str) -> str:
        from ipydock.engine.registry.login import login

        return login(server, username, password)

    def logout(self, server: str | None) -> str:
        from ipydock.commands.credentials import forget

        return forget(server)

    def info(self) -> dict[str, Any]:
        import platform

        index = self.store.index()
        runtime = _runtime_mode()
        return {
            "engine": self.name,
            "root": self.store.root,
            "storage_driver": self.store.layers.driver.name,
            "storage_driver_reason": self.store.driver_reason(),
            **runtime,
            "images": len(index.images),
            "tags": len(index.tags),
            "kernel": platform.release(),
            "architecture": platform.machine(),
            "cgroup_version": 2 if os.path.exists("/sys/fs/cgroup/cgroup.controllers") else 1,
            "security_options": _security_options(runtime["mode"]),
        }

    def disk_usage(self) -> list[DiskUsage]:
        return _lifecycle().disk_usage(self.store)

    def build(
        self,
        context: str,
        *,
        dockerfile: str | None = None,
        tags: Sequence[str] = (),
        build_args: dict[str, str | None] | None = None,
        target: str = "",
        no_cache: bool = False,
        reproducible: bool = False,
        progress: Callable[[BuildEvent], None] | None = None,
        stdin: BinaryIO | None = None,
        ulimits: Sequence[str] = (),
        network: str = "default",
    ) -> BuildResult:
        from ipydock.commands.security import parse_ulimit
        from ipydock.engine import builder
        from ipydock.engine.builder.runstep import build_network

        limits = [parse_ulimit(u) for u in ulimits]  # --ulimit: every RUN step's limits
        options = builder.BuildOptions(
            tags=tuple(tags),
            build_args=dict(build_args or {}),
            target=target,
            no_cache=no_cache,
            reproducible=reproducible,
            ulimits=tuple((u["Name"], u["Soft"], u["Hard"]) for u in limits),
            network=build_network(network),
        )
        ctx = builder.open_context(context, self.store.tmp_dir, dockerfile=dockerfile, stdin=stdin)
        try:
            # RUN steps fork from this backend's warm helper (root: the same kind of helper;
            # an ordinary user's builds need one in a user namespace of their own)
            warm = self._helper() if os.geteuid() == 0 else None
            return builder.build(self.store, ctx, options, progress, warm)
        finally:
            ctx.close()

    def check(self, *, repair: bool = False) -> CheckReport:
        from ipydock.engine.store import check

        report = check.check(self.store, repair=repair)
        if os.geteuid() == 0:  # networks: bridges and addresses (root only)
            problems, repaired = self._bridges().check(repair=repair)
            report.problems.extend(problems)
            report.repaired.extend(repaired)
            _check_cgroups(report, repair)
        return report

    # -- containers (ipydock.engine.containers) -------------------------------------------------

    def create_container(self, opts: RunOptions) -> str:
        _no_ports(opts)
        _check_network(self, opts)
        return _lifecycle().create(self.store, opts).id

    def _helper(self) -> Any:
        if not self.warm:
            return None
        if self._forkserver is None:
            from ipydock.engine.runtime import ForkServer

            self._forkserver = ForkServer()
        return self._forkserver

    def close(self) -> None:
        """Stop the warm helper (detached containers and their supervisors keep running)."""
        if self._forkserver is not None:
            self._forkserver.close()
            self._forkserver = None

    def _can_run(self, operation: str) -> None:
        """Refuse at once, and say what to do, where containers cannot run (no namespaces:
        e.g. an unprivileged user without user namespaces); found out once per backend."""
        if self._mode is None:
            self._mode = _runtime_mode()
        if self._mode["mode"] == "none":
            raise NotSupported(
                operation, "bundled",
                f"this machine cannot run containers ({self._mode['mode_reason']}); use a "
                "Docker engine (`%ipydock engine docker --host URL`) or a machine where "
                "namespaces work (images, builds without RUN and volumes still work here)",
            )  # fmt: skip

    def start_container(self, container: str) -> None:
        self._can_run("container start")
        _lifecycle().start(self.store, container, forkserver=self._helper())

    def run(
        self, opts: RunOptions, *, detach: bool = False, stdin: IO[Any] | int | None = None,
        output: Output | None = None, on_start: Callable[[str], None] | None = None,
    ) -> RunResult:  # fmt: skip
        """create + start; attached (not ``detach``): stream output, wait, honour ``--rm``.
        ``on_start(id)`` once it runs (the CLI passes signals on from then)."""
        cid, attached = self._create_and_start(opts, attach=not detach, stdin=stdin)
        if detach or attached is None:
            return models.RunResult(cid)
        if on_start is not None:
            on_start(cid)
        for stream, text, _time in attached.output():
            if output is not None:
                output(stream, text)
        return models.RunResult(cid, attached.wait(_lifecycle().records_of(self.store)))

    def _create_and_start(
        self, opts: RunOptions, *, attach: bool, stdin: Any = None,
        console_size: tuple[int, int] = (0, 0),
    ) -> tuple[str, Any]:  # fmt: skip
        _no_ports(opts)
        self._can_run("container run")
        _check_network(self, opts)
        cid = _lifecycle().create(self.store, opts).id
        try:
            attached = _lifecycle().start(self.store, cid, attach=attach, stdin=stdin,
                                       forkserver=self._helper(),
                                       console_size=console_size)  # fmt: skip
        except Exception:
            if opts.auto_remove:  # the supervisor removed it already, unless it never ran
                with contextlib.suppress(ContainerNotFound):
                    _lifecycle().remove(self.store, cid, force=True, volumes=True)
            raise
        return cid, attached

    def start_attached(
        self, container: str, *, stdin: Any = None, output: Output | None = None,
        on_start: Callable[[str], None] | None = None,
    ) -> int:  # fmt: skip
        """``start -a`` of a container without a terminal: its output until it exits (if it
        already runs: from now on, as ``attach``), its exit code."""
        self._can_run("container start")
        attached = _lifecycle().start(self.store, container, attach=True, stdin=stdin,
                                      forkserver=self._helper())  # fmt: skip
        cid = attached.record.id if attached is not None else self._id(container)
        if on_start is not None:
            on_start(cid)
        if attached is None:
            for entry in self.logs(cid, follow=True, tail=0):
                if output is not None:
                    output(entry.stream, entry.text)
            return self.wait_container(cid)
        for stream, text, _time in attached.output():
            if output is not None:
                output(stream, text)
        return attached.wait(_lifecycle().records_of(self.store))

    def _id(self, container: str) -> str:
        return str(_lifecycle().records_of(self.store).find(container).id)

    # -- terminals (ipydock.engine.containers.terminal) ----------------------------------------

    def run_terminal(
        self, opts: RunOptions, *, console_size: tuple[int, int] = (0, 0)
    ) -> TerminalSession:
        """``run -t`` attached: create, start with the terminal connected first."""
        if not opts.tty:
            raise UsageError("run_terminal needs a container with a terminal (-t)")
        cid, attached = self._create_and_start(opts, attach=True, console_size=console_size)
        return self._session(cid, attached)

    def start_terminal(
        self, container: str, *, console_size: tuple[int, int] = (0, 0)
    ) -> TerminalSession:
        """``start -a`` of a terminal container; attach if it already runs, as docker."""
        self._can_run("container start")
        attached = _lifecycle().start(self.store, container, attach=True,
                                      forkserver=self._helper(),
                                      console_size=console_size)  # fmt: skip
        if attached is None:
            session = self.attach_terminal(container)
            session.terminal.resize(*console_size)
            return session
        return self._session(attached.record.id, attached)

    def _session(self, cid: str, attached: Any) -> TerminalSession:
        from ipydock.engine.containers.terminal import TerminalSession

        records = _lifecycle().records_of(self.store)
        return TerminalSession(cid, attached.terminal, lambda: attached.wait(records),
                               attached.close)  # fmt: skip

    def attach_terminal(self, container: str) -> TerminalSession:
        """The running terminal container's terminal (``attach``); ``wait`` waits for it."""
        from ipydock.engine.containers import terminal

        rec = _lifecycle().records_of(self.store).find(container)
        if not rec.config["Config"].get("Tty"):
            raise UsageError(f"container {rec.name} has no terminal (it was not made with -t)")
        if not _lifecycle().refresh(_lifecycle().records_of(self.store), rec).is_active:
            raise ContainerNotRunning(rec.id)
        term = terminal.connect(rec.dir, rec.id)
        return terminal.TerminalSession(rec.id, term, lambda: _lifecycle().wait(self.store, rec.id))

    def exec_terminal(
        self, container: str, command: Sequence[str], *, env: Sequence[str] = (),
        workdir: str | None = None, user: str | None = None,
        console_size: tuple[int, int] = (0, 0),
    ) -> TerminalSession:  # fmt: skip
        from ipydock.engine.containers.execute import exec_terminal

        return exec_terminal(self.store, container, list(command), env=tuple(env),
                             workdir=workdir, user=user, console_size=console_size)  # fmt: skip

    def resize_container(self, container: str, rows: int, cols: int) -> None:
        """docker's ``/resize``: the running terminal container's window size."""
        from ipydock.engine.containers import terminal

        rec = _lifecycle().records_of(self.store).find(container)
        terminal.resize_container(rec.dir, rec.id, rows, cols)

    def start_following(self, container: str, *, stdin: int | None = None) -> _Following | None:
        """Start ``container`` and follow it, as the API service's attach needs: its output
        from this start on and its exit code (also of a ``--rm`` container, gone by then);
        ``stdin``: a descriptor the container reads. None: it was running already."""
        self._can_run("container start")
        attached = _lifecycle().start(self.store, container, attach=True, stdin=stdin,
                                      forkserver=self._helper())  # fmt: skip
        if attached is None:
            return None
        return _Following(attached, _lifecycle().records_of(self.store))

    def stop_container(self, container: str, timeout: float | None = None) -> str:
        return _lifecycle().stop(self.store, container, timeout)

    def kill_container(self, container: str, signal: str = "KILL") -> str:
        return _lifecycle().kill(self.store, container, signal)

    def restart_container(self, container: str, timeout: float | None = None) -> str:
        self._can_run("container restart")
        cid = _lifecycle().stop(self.store, container, timeout)
        _lifecycle().start(self.store, cid, forkserver=self._helper())
        return cid

    def remove_container(
        self, container: str, *, force: bool = False, volumes: bool = False
    ) -> str:
        return _lifecycle().remove(self.store, container, force=force, volumes=volumes)

    def wait_container(self, container: str) -> int:
        return _lifecycle().wait(self.store, container)

    def containers(self, *, all: bool = False, filters: Sequence[str] = ()) -> list[ContainerInfo]:
        from ipydock.engine.containers import views

        return views.list_containers(self.store, all=all, filters=filters)

    def inspect_container(self, container: str) -> ContainerDetail:
        from ipydock.engine.containers import views

        return views.inspect(self.store, container)

    def logs(
        self, container: str, *, follow: bool = False, tail: int | None = None
    ) -> Iterator[LogEntry]:
        from ipydock.engine.containers import views

        for stream, text, time in views.logs(self.store, container, follow=follow, tail=tail):
            yield models.LogEntry(stream, text, time)

    def top(self, container: str) -> tuple[list[str], list[list[str]]]:
        from ipydock.engine.containers import views

        return views.top(self.store, container)

    def diff(self, container: str) -> list[FileChange]:
        from ipydock.engine.containers import views

        return [models.FileChange(k, p) for k, p in views.diff(self.store, container)]

    def commit(
        self, container: str, target: str | None = None, *, message: str = "", author: str = "",
        changes: Sequence[str] = (),
    ) -> str:  # fmt: skip
        from ipydock.engine.containers import changes as container_changes

        return container_changes.commit(
            self.store, container, target, message=message, author=author, changes=tuple(changes)
        )

    def copy_from(self, container: str, path: str, out: BinaryIO) -> None:
        from ipydock.engine.containers import changes

        changes.copy_from(self.store, container, path, out)

    def export_container(self, container: str, out: BinaryIO) -> None:
        """``docker export``: the container's filesystem as a tar (the API service's)."""
        from ipydock.engine.containers import changes

        changes.export(self.store, container, out)

    def copy_to(self, container: str, dest: str, tar: BinaryIO) -> None:
        from ipydock.engine.containers import changes

        changes.copy_to(self.store, container, dest, tar)

    def exec(
        self, container: str, command: Sequence[str], *, env: Sequence[str] = (),
        workdir: str | None = None, user: str | None = None, stdin: Any = None,
        stdout: Any = None, stderr: Any = None,
    ) -> int:  # fmt: skip
        from ipydock.engine.containers.execute import exec_in

        return exec_in(self.store, container, list(command), env=tuple(env), workdir=workdir,
                       user=user, stdin=stdin, stdout=stdout, stderr=stderr)  # fmt: skip

    def prune_containers(self) -> ContainerPrune:
        return _lifecycle().prune(self.store)

    # -- volumes (ipydock.engine.volumes) -------------------------------------------------------

    def _volumes(self) -> Any:
        from ipydock.engine.volumes import Volumes

        return Volumes(self.store.root, self.store.tmp_dir)

    def _volume_users(self, name: str) -> list[tuple[str, bool]]:
        return _lifecycle().volume_users(self.store, name)

    def create_volume(
        self, name: str | None = None, *, labels: dict[str, str] | None = None
    ) -> VolumeInfo:
        with self.store.lock:
            return self._volumes().create(name, labels=labels)

    def volumes(self) -> list[VolumeInfo]:
        return self._volumes().list()

    def inspect_volume(self, name: str) -> VolumeInfo:
        return self._volumes().get(name)

    def remove_volume(self, name: str, *, force: bool = False) -> None:
        with self.store.lock:
            self._volumes().remove(name, self._volume_users, force=force)

    def prune_volumes(self, *, all: bool = False) -> ContainerPrune:
        with self.store.lock:
            names, freed = self._volumes().prune(self._volume_users, all=all)
        return models.ContainerPrune(names, freed)

    def volume_files(self, name: str, path: str = "/") -> list[FileEntry]:
        return self._volumes().files(name, path)

    # -- networks (ipydock.engine.network: built-in host and none, bridges) -------------------

    def _bridges(self) -> Any:
        from ipydock.engine.network.bridge import Networks

        return Networks(self.store.root)

    def networks(self, *, filters: Sequence[str] = ()) -> list[NetworkInfo]:
        from ipydock.engine.network import builtin

        users = [(c.id, c.name, self.inspect_container(c.id).host_config.get("NetworkMode", ""))
                 for c in self.containers()]  # fmt: skip
        layout = os.path.join(self.store.root, "oci-layout")
        created = None
        with contextlib.suppress(OSError):
            created = datetime.fromtimestamp(os.stat(layout).st_mtime, timezone.utc)
        bridges = [builtin.bridge_info(n, self._bridges().endpoints(n))
                   for n in self._bridges().all()]  # fmt: skip
        return builtin.networks(users, created, filters, bridges)

    def inspect_network(self, name: str) -> NetworkInfo:
        from ipydock.engine.network import builtin

        return builtin.find(self.networks(), name)

    def create_network(
        self, name: str, *, driver: str = "bridge", subnet: str | None = None,
        gateway: str | None = None, internal: bool = False,
        labels: dict[str, str] | None = None, ip_range: str | None = None,
        options: dict[str, str] | None = None,
    ) -> NetworkInfo:  # fmt: skip
        from ipydock.engine.network import builtin

        if name in builtin.BUILTIN:
            raise builtin.refuse("network create", name)
        self._can_run("network create")
        if os.geteuid() != 0:
            from ipydock.engine.network.bridge import rootless_refusal

            raise rootless_refusal("network create")
        net = self._bridges().create(
            name, driver=driver, subnet=subnet, gateway=gateway, ip_range=ip_range,
            internal=internal, labels=labels, options=options,
        )  # fmt: skip
        return builtin.bridge_info(net, {})

    def remove_network(self, name: str) -> None:
        from ipydock.engine.network import builtin

        found = self.inspect_network(name)
        if found.name in builtin.BUILTIN:
            raise builtin.refuse(f"network rm {name}", found.name)
        self._bridges().remove(found.id)

    def _running(self, container: str) -> tuple[str, dict[str, Any], int]:
        records = _lifecycle().records_of(self.store)
        rec = records.find(container)
        state = _lifecycle().refresh(records, rec)
        return rec.id, rec.config, state.pid if state.is_active else 0

    def connect_network(
        self, network: str, container: str, *, aliases: Sequence[str] = (), ip: str = ""
    ) -> None:
        from ipydock.engine.network import builtin

        if self.inspect_network(network).name in builtin.BUILTIN:
            raise builtin.refuse("network connect", network)
        if os.geteuid() != 0:
            from ipydock.engine.network.bridge import rootless_refusal

            raise rootless_refusal("network connect")
        cid, config, pid = self._running(container)
        self._bridges().connect(network, cid, config, pid, aliases=tuple(aliases), ip=ip)

    def disconnect_network(self, network: str, container: str, *, force: bool = False) -> None:
        from ipydock.engine.network import builtin

        if self.inspect_network(network).name in builtin.BUILTIN:
            raise builtin.refuse("network disconnect", network)
        cid, config, pid = self._running(container)
        self._bridges().disconnect(network, cid, config, pid)

    def prune_networks(self) -> list[str]:
        return list(self._bridges().prune())


class _Following:
    """A started container seen by its starter: ``output()`` yields (stream, text, time) until
    it exits, ``wait()`` gives its exit code, ``close()`` lets go of it without waiting."""

    def __init__(self, attached: Any, records: Any) -> None:
        self._attached = attached
        self._records = records
        self.id: str = attached.record.id
        self.pid: int = attached.pid

    def output(self) -> Iterator[tuple[str, str, str]]:
        return self._attached.output()  # type: ignore[no-any-return]

    def wait(self) -> int:
        return int(self._attached.wait(self._records))

    def close(self) -> None:
        self._attached.close()


def _check_cgroups(report: CheckReport, repair: bool) -> None:
    """Containers' cgroups left empty (a supervisor killed before it removed its ``--rm``
    container's): garbage."""
    from ipydock.engine.containers.supervisor import cgroup_parent
    from ipydock.engine.runtime import cgroups

    for cgroup in cgroups.leftovers(cgroup_parent()):
        label = f"leftover cgroup {cgroup_parent()}/{cgroup.name[:12]}"
        report.garbage.append(label)
        if repair:
            try:
                cgroup.remove()
            except CgroupError:  # filled meanwhile, or not ours to remove: left as it is
                continue
            report.repaired.append(f"removed {label}")


def _no_ports(opts: RunOptions) -> None:
    """``-p`` needs a bridge network (docker drops it on host, we say so); values checked."""
    if opts.publish or opts.publish_all:
        from ipydock.engine.network import ports
        from ipydock.errors import InvalidNetworkConfig

        ports.parse(opts.publish)
        if opts.network in ("host", "none"):
            raise InvalidNetworkConfig("-p", f"published ports need a bridge network, not "
                                       f"--network {opts.network}")  # fmt: skip


def _check_network(backend: BundledBackend, opts: RunOptions) -> None:
    """Bridge flags checked before anything is made; host and none need no bridge code (its
    imports are a CLI start's cost)."""
    if opts.network in ("none", "host") and not opts.ip and not opts.network_aliases:
        return
    backend._bridges().check_run(opts.network, opts.ip, opts.network_aliases)


def _lifecycle() -> ModuleType:
    """The container engine, imported on first use: listing images from the CLI never needs
    it, and its imports (runtime, cgroups, ctypes) are a large part of start-up time."""
    from ipydock.engine.containers import lifecycle

    return lifecycle


def _runtime_mode() -> dict[str, str]:
    """``mode``: root (all namespaces, cgroups), rootless (user namespaces) or none (neither
    works here); ``mode_reason``: why."""
    from ipydock.engine.runtime.rootless import runtime_mode

    mode, reason = runtime_mode()
    found = {"mode": mode, "mode_reason": reason}
    if mode == "rootless":  # which ids a container gets (see engine/runtime/idranges.py)
        from ipydock.engine.runtime.idranges import find

        found["id_mapping"] = find().describe()
    return found


def _security_options(mode: str) -> str:
    """What every container gets unless its flags lift it, as ``docker info`` lists it."""
    if mode in ("proot", "none"):  # PRoot traces the command: no namespaces, no filter
        return "none"
    rootless = ", rootless" if mode == "rootless" else ""
    return "seccomp profile=default, no-new-privileges" + rootless
