"""A Docker Swarm through the engine's API: nodes, services, their tasks and logs, stacks.

::

    DockerBackend.swarm ──> Swarm(api, host)
        init / join / leave / join_token      the engine's membership
        nodes()                               NodeInfo rows
        create_service / update / scale / rm  docker's service words, a spec built here
        services() / tasks(service)           ServiceInfo / TaskInfo rows (node names, states,
                                              errors, addresses on the service's networks)
        service_logs(service)                 LogEntry lines, docker's "web.1.ID@node" prefix
        converge(service) / stuck(service)    wait for the tasks; ServiceStuck when they cannot
                                              run (an image no node can pull, a node down)
        deploy_stack / stacks / remove_stack  a compose file as services and networks

Everything here is the public ``docker.APIClient`` API. An image is pinned by digest when its
registry answers (``docker service create`` does the same, so every node runs the same image);
otherwise the tag stays and :attr:`Swarm.warnings` says why, as docker's warning does.
"""

from __future__ import annotations

import queue
import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from docker.types import ContainerSpec as DockerContainerSpec
from docker.types import EndpointSpec, RestartPolicy, ServiceMode, TaskTemplate

from ipydock.docker import convert
from ipydock.docker.client import errors
from ipydock.errors import ServiceStuck, UsageError
from ipydock.models import LogEntry, NodeInfo, ServiceInfo, StackInfo, TaskInfo, TransferEvent

__all__ = ["STACK_LABEL", "Swarm"]

STACK_LABEL = "com.docker.stack.namespace"  # docker's own label: `docker stack ls` sees ours


class Swarm:
    """The swarm of the engine at ``host``; every method is one or a few API calls."""

    def __init__(self, api: Any, host: str) -> None:
        self.api = api
        self.host = host
        self.warnings: list[str] = []

    # -- membership ------------------------------------------------------------------------------

    def init(self, advertise_addr: str | None = None, listen_addr: str = "0.0.0.0:2377") -> str:
        """``swarm init``: this engine becomes a manager of a new swarm; its node ID."""
        with errors(self.host):
            return str(self.api.init_swarm(advertise_addr=advertise_addr, listen_addr=listen_addr))

    def join(self, remote: str, token: str, advertise_addr: str | None = None,
             listen_addr: str = "0.0.0.0:2377") -> None:  # fmt: skip
        with errors(self.host):
            self.api.join_swarm([remote], token, listen_addr=listen_addr,
                                advertise_addr=advertise_addr)  # fmt: skip

    def leave(self, force: bool = False) -> None:
        with errors(self.host):
            self.api.leave_swarm(force=force)

    def join_token(self, role: str = "worker") -> str:
        if role not in ("worker", "manager"):
            raise UsageError(f"swarm join-token: unknown role {role!r}: use worker or manager")
        with errors(self.host):
            tokens = self.api.inspect_swarm()["JoinTokens"]
        return str(tokens["Worker" if role == "worker" else "Manager"])

    def manager_addr(self) -> str:
        """The address a new node joins (``host:2377``): the leader's, as ``join-token``
        prints it."""
        with errors(self.host):
            info = self.api.info()
        managers = info.get("Swarm", {}).get("RemoteManagers") or []
        return str(managers[0]["Addr"]) if managers else ""

    # -- nodes -----------------------------------------------------------------------------------

    def nodes(self) -> list[NodeInfo]:
        with errors(self.host):
            raw = self.api.nodes()
            me = self.api.info().get("Swarm", {}).get("NodeID", "")
        return sorted((_node(n, me) for n in raw), key=lambda n: n.hostname)

    def _hostnames(self) -> dict[str, str]:
        with errors(self.host):
            return {n["ID"]: n["Description"]["Hostname"] for n in self.api.nodes()}

    # -- services --------------------------------------------------------------------------------

    def create_service(
        self, image: str, command: Sequence[str] = (), *, name: str | None = None,
        replicas: int | None = None, mode: str = "replicated", networks: Sequence[str] = (),
        publish: Sequence[str] = (), env: Sequence[str] = (), labels: dict[str, str] | None = None,
        constraints: Sequence[str] = (), endpoint_mode: str | None = None,
        hostname: str | None = None, container_labels: dict[str, str] | None = None,
    ) -> str:  # fmt: skip
        """``service create``; the new service's ID."""
        if mode not in ("replicated", "global"):
            raise UsageError(f"service create: --mode {mode}: use replicated or global")
        if mode == "global" and replicas is not None:
            raise UsageError("service create: --replicas can only be used with replicated mode")
        spec = DockerContainerSpec(self._pinned(image), command=list(command) or None,
                                   env=list(env) or None, hostname=hostname,
                                   labels=container_labels)  # fmt: skip
        template = TaskTemplate(spec, restart_policy=RestartPolicy(condition="any"),
                                placement=list(constraints) or None)  # fmt: skip
        with errors(self.host, "network"):
            return str(self.api.create_service(
                template, name=name, labels=labels or None,
                mode=ServiceMode(mode, replicas if mode == "replicated" else None),
                networks=list(networks) or None,
                endpoint_spec=_endpoint(publish, endpoint_mode),
            )["ID"])  # fmt: skip

    def _pinned(self, image: str) -> str:
        """``image@sha256:…`` from its registry, so every node runs the same bytes; the image
        itself (with a warning) when no registry knows it, as docker does."""
        if "@" in image:
            return image
        try:
            digest = self.api.inspect_distribution(image)["Descriptor"]["digest"]
        except Exception as exc:  # any failure means "not on a registry": docker goes on too
            self.warnings.append(
                f"image {image} could not be accessed on a registry to record its digest "
                f"({_why(exc)}); each node uses its own {image}: push it to a registry the "
                f"nodes reach to run the same image everywhere")  # fmt: skip
            return image
        return f"{image}@{digest}"

    def services(self, filters: Sequence[str] = ()) -> list[ServiceInfo]:
        with errors(self.host):
            raw = self.api.services(filters=convert.filters(filters) or None, status=True)
            names = self._network_names()
        return sorted((_service(s, names) for s in raw), key=lambda s: s.name)

    def inspect_service(self, service: str) -> ServiceInfo:
        raw = self._raw_service(service)
        with errors(self.host):
            status = self.api.services(filters={"id": raw["ID"]}, status=True)
            names = self._network_names()
        return _service(status[0] if status else raw, names)

    def _raw_service(self, service: str) -> dict[str, Any]:
        with errors(self.host, "service", service):
            return dict(self.api.inspect_service(service))

    def _network_names(self) -> dict[str, str]:
        return {n["Id"]: n["Name"] for n in self.api.networks()}

    def tasks(self, service: str, *, all: bool = True) -> list[TaskInfo]:
        """``service ps``: the service's tasks, newest first per slot (with ``all=False`` only
        the ones meant to run)."""
        raw = self._raw_service(service)
        flt: dict[str, Any] = {"service": raw["ID"]}
        if not all:
            flt["desired-state"] = "running"
        with errors(self.host):
            tasks = self.api.tasks(filters=flt)
        hosts = self._hostnames()
        name = raw["Spec"]["Name"]
        rows = [_task(t, name, hosts) for t in tasks]
        return sorted(rows, key=lambda t: (t.slot, t.node, -(t.since.timestamp() if t.since
                                                              else 0)))  # fmt: skip

    def scale(self, service: str, replicas: int) -> None:
        raw = self._raw_service(service)
        if "Replicated" not in raw["Spec"].get("Mode", {}):
            raise UsageError(f"service scale: {service} is not a replicated service")
        self._update(raw, mode=ServiceMode("replicated", replicas))

    def update_service(self, service: str, *, image: str | None = None,
                       replicas: int | None = None, force: bool = False) -> None:  # fmt: skip
        raw = self._raw_service(service)
        template = dict(raw["Spec"]["TaskTemplate"])
        if image:
            template["ContainerSpec"] = {**template["ContainerSpec"], "Image": self._pinned(image)}
        if force:
            template["ForceUpdate"] = int(template.get("ForceUpdate") or 0) + 1
        mode = ServiceMode("replicated", replicas) if replicas is not None else None
        self._update(raw, task_template=template, mode=mode)

    def _update(self, raw: dict[str, Any], **changes: Any) -> None:
        spec = raw["Spec"]
        kw: dict[str, Any] = {
            "task_template": spec.get("TaskTemplate"),
            "name": spec.get("Name"),
            "labels": spec.get("Labels"),
            "mode": spec.get("Mode"),
            "networks": spec.get("TaskTemplate", {}).get("Networks") or spec.get("Networks"),
            "endpoint_spec": spec.get("EndpointSpec"),
            "update_config": spec.get("UpdateConfig"),
        }
        kw.update({k: v for k, v in changes.items() if v is not None})
        with errors(self.host):
            self.api.update_service(raw["ID"], raw["Version"]["Index"], **kw)

    def remove_service(self, service: str) -> None:
        raw = self._raw_service(service)
        with errors(self.host):
            self.api.remove_service(raw["ID"])

    def service_logs(self, service: str, *, follow: bool = False, tail: int | None = None
                     ) -> Iterator[LogEntry]:  # fmt: skip
        """The service's lines from every task, each with docker's ``web.1.TASKID@node``
        prefix. The SDK's public call merges stdout and stderr into one stream, so each stream
        is asked for on its own (two readers when following) to keep them apart."""
        raw = self._raw_service(service)
        tty = bool(raw["Spec"]["TaskTemplate"]["ContainerSpec"].get("TTY"))
        prefixes = {t.id: f"{t.name}.{t.id[:12]}@{t.node}" for t in self.tasks(service)}
        streams = ("stdout",) if tty else ("stdout", "stderr")
        readers = [self._log_lines(raw["ID"], s, follow, tail, tty, prefixes) for s in streams]
        if not follow:
            lines = [e for r in readers for e in r]
            yield from sorted(lines, key=lambda e: e.time)  # stable: each stream in order
            return
        yield from _merged(readers)

    def _log_lines(self, sid: str, stream: str, follow: bool, tail: int | None, tty: bool,
                   prefixes: dict[str, str]) -> Iterator[LogEntry]:  # fmt: skip
        with errors(self.host):
            chunks = self.api.service_logs(
                sid, details=True, follow=follow, stdout=stream == "stdout",
                stderr=stream == "stderr", timestamps=True,
                tail="all" if tail is None else tail, is_tty=tty,
            )  # fmt: skip
            pending = ""
            for chunk in chunks:
                pending += chunk.decode("utf-8", "replace")
                *lines, pending = pending.split("\n")
                for line in lines:
                    yield _log_line(stream, line, prefixes)
            if pending:
                yield _log_line(stream, pending, prefixes)

    def converge(self, service: str, progress: Callable[[TransferEvent], None] | None = None,
                 timeout: float = 300) -> bool:  # fmt: skip
        """Wait until the service's tasks run (docker's ``service create`` without ``-d``):
        one event per task slot as its state changes (``preparing`` is the node pulling the
        image), an overall line, and ``verify: Service converged``. :class:`ServiceStuck` as
        soon as the tasks cannot run (:meth:`stuck`), where docker's CLI would wait forever;
        False (and a warning) when it has not converged after ``timeout`` seconds. The swarm
        keeps trying either way."""
        emit = progress or (lambda event: None)
        shown: dict[str, str] = {}
        deadline = time.monotonic() + timeout
        while True:
            info = self.inspect_service(service)
            every = self.tasks(service)
            tasks = [t for t in every if t.desired_state == "Running"]
            for t in tasks:
                key = f"{t.slot or t.node}/{info.desired}"
                state = t.current_state.lower() + (f": {t.error}" if t.error else "")
                if shown.get(key) != state:
                    shown[key] = state
                    emit(TransferEvent(key, state))
            running = sum(
                t.current_state == "Running" and t.image == info.image for t in tasks
            )  # an update is done when the new image runs
            if info.desired and running >= info.desired:
                emit(TransferEvent("", "", text=f"overall progress: {running} out of "
                                   f"{info.desired} tasks"))  # fmt: skip
                emit(TransferEvent("", "", text="verify: Service converged"))
                return True
            problem = self.stuck(service, info.image, every) if any(
                t.error for t in every) else None  # fmt: skip
            if problem is not None:
                raise problem
            if time.monotonic() > deadline:
                self.warnings.append(f"service {service} has not converged after "
                                     f"{timeout:.0f} s ({running} of {info.desired} tasks "
                                     "running): see `service ps`")  # fmt: skip
                return False
            time.sleep(0.25)  # the swarm's own pace: docker's CLI polls the same way

    def stuck(self, service: str, image: str | None = None,
              tasks: Sequence[TaskInfo] | None = None) -> ServiceStuck | None:  # fmt: skip
        """Why ``service``'s tasks cannot run as things stand (see :func:`_diagnose`), or
        None while they can (or may yet)."""
        image = image or self.inspect_service(service).image
        tasks = self.tasks(service) if tasks is None else tasks
        if not any(t.error for t in tasks):
            return None
        nodes = self.nodes()
        found = _diagnose(tasks, image, [n.hostname for n in nodes if n.status == "Ready"],
                          [n.hostname for n in nodes if n.status != "Ready"])  # fmt: skip
        if found is None:
            return None
        task, why, hint = found
        return ServiceStuck(self.host, task.service, task.name, task.node, why, hint)

    # -- stacks ----------------------------------------------------------------------------------

    def stacks(self) -> list[StackInfo]:
        counts: dict[str, int] = {}
        with errors(self.host):
            for s in self.api.services(filters={"label": STACK_LABEL}):
                name = s["Spec"].get("Labels", {}).get(STACK_LABEL, "")
                counts[name] = counts.get(name, 0) + 1
        return [StackInfo(n, c) for n, c in sorted(counts.items())]

    def deploy_stack(self, name: str, compose: dict[str, Any]) -> list[str]:
        from ipydock.docker.stack import deploy

        return deploy(self, name, compose)

    def remove_stack(self, name: str) -> list[str]:
        """``stack rm``: the stack's services, then its networks; what was removed."""
        removed: list[str] = []
        flt = {"label": f"{STACK_LABEL}={name}"}
        with errors(self.host):
            for s in self.api.services(filters=flt):
                self.api.remove_service(s["ID"])
                removed.append(f"service {s['Spec']['Name']}")
            for n in self.api.networks(filters=flt):
                self.api.remove_network(n["Id"])
                removed.append(f"network {n['Name']}")
        if not removed:
            raise UsageError(f"stack rm: nothing found in stack: {name} (see `stack ls`)")
        return removed


def _endpoint(publish: Sequence[str], endpoint_mode: str | None) -> EndpointSpec | None:
    """``-p [PUBLISHED:]TARGET[/PROTO]`` (docker's short form) as an endpoint spec."""
    if not publish and not endpoint_mode:
        return None
    ports: dict[int, Any] = {}
    for item in publish:
        spec, _, proto = item.partition("/")
        published, _, target = spec.rpartition(":")
        try:
            tport, pport = int(target), int(published) if published else None
        except ValueError:
            raise UsageError(f"service create: -p {item}: use [PUBLISHED:]TARGET[/tcp|udp]"
                             ) from None  # fmt: skip
        if pport is None:
            raise UsageError(f"service create: -p {item}: a swarm publishes on a chosen port: "
                             f"use PUBLISHED:{tport}")  # fmt: skip
        ports[pport] = (tport, proto or "tcp")
    return EndpointSpec(mode=endpoint_mode, ports=ports or None)


def _node(n: dict[str, Any], me: str) -> NodeInfo:
    manager = n.get("ManagerStatus") or {}
    role = "Leader" if manager.get("Leader") else str(manager.get("Reachability", "")).title()
    return NodeInfo(
        id=n["ID"], hostname=n["Description"]["Hostname"],
        status=n["Status"]["State"].title(), availability=n["Spec"]["Availability"].title(),
        manager_status=role, engine_version=n["Description"]["Engine"]["EngineVersion"],
        addr=n["Status"].get("Addr", ""), self=n["ID"] == me,
    )  # fmt: skip


def _service(s: dict[str, Any], network_names: dict[str, str]) -> ServiceInfo:
    spec = s["Spec"]
    mode = "global" if "Global" in spec.get("Mode", {}) else "replicated"
    status = s.get("ServiceStatus") or {}
    running, desired = int(status.get("RunningTasks", 0)), int(status.get("DesiredTasks", 0))
    if mode == "replicated" and "ServiceStatus" not in s:
        desired = int(spec["Mode"]["Replicated"].get("Replicas", 0))
    image = spec["TaskTemplate"]["ContainerSpec"]["Image"].split("@", 1)[0]
    ports = [f"*:{p['PublishedPort']}->{p['TargetPort']}/{p.get('Protocol', 'tcp')}"
             for p in (s.get("Endpoint") or {}).get("Ports") or []]  # fmt: skip
    nets = spec.get("TaskTemplate", {}).get("Networks") or spec.get("Networks") or []
    return ServiceInfo(
        id=s["ID"], name=spec["Name"], mode=mode, replicas=f"{running}/{desired}",
        running=running, desired=desired, image=image, ports=ports,
        networks=[network_names.get(n["Target"], n["Target"]) for n in nets],
        created=convert.time(s.get("CreatedAt")), updated=convert.time(s.get("UpdatedAt")),
        labels=dict(spec.get("Labels") or {}),
    )  # fmt: skip


def _task(t: dict[str, Any], service: str, hosts: dict[str, str]) -> TaskInfo:
    status = t.get("Status") or {}
    slot = int(t.get("Slot") or 0)
    node = hosts.get(t.get("NodeID", ""), t.get("NodeID", ""))
    attached = [(a, att.get("Network", {}).get("Spec", {}).get("Name", ""))
                for att in t.get("NetworksAttachments") or []
                for a in att.get("Addresses") or []]  # fmt: skip
    return TaskInfo(
        id=t["ID"], name=f"{service}.{slot}" if slot else f"{service}.{t.get('NodeID', '')}",
        service=service, slot=slot,
        image=t["Spec"]["ContainerSpec"]["Image"].split("@", 1)[0], node=node,
        desired_state=str(t.get("DesiredState", "")).title(),
        current_state=str(status.get("State", "")).title(),
        since=convert.time(status.get("Timestamp")), error=str(status.get("Err", "")),
        addresses=[a for a, _ in attached], networks=[n for _, n in attached],
        container_id=str((status.get("ContainerStatus") or {}).get("ContainerID", "")),
    )  # fmt: skip


_PULL_FAILED = re.compile(
    r"No such image|pull access denied|manifest unknown|not found|"
    r"repository does not exist|error pulling|failed to resolve",
    re.I,
)


def _diagnose(tasks: Sequence[TaskInfo], image: str, ready: Sequence[str], down: Sequence[str]
              ) -> tuple[TaskInfo, str, str] | None:  # fmt: skip
    """The task that shows why the service cannot run, the engine's words and what to do.

    - its image could not be pulled (tasks ``Rejected`` with "No such image" and the like) as
      many times as there are ready nodes: each could have had its try (the swarm retries
      forever, docker's CLI waits forever);
    - a task meant to run stays ``Pending`` with "no suitable node": the scheduler found no
      node it may use (the one its constraint names is down, or none matches).
    A failing command is not here: its tasks run and exit, as the user asked.
    """
    current = [t for t in tasks if t.image == image]
    rejected = [t for t in current if t.current_state == "Rejected" and _PULL_FAILED.search(
        t.error)]  # fmt: skip
    if rejected and len(rejected) >= max(len(ready), 1):  # as many tries as nodes to try on
        nodes = ", ".join(sorted({t.node for t in rejected if t.node}))
        hint = (f"{nodes or 'no node'} cannot pull {image}: push it to a registry every node "
                f"reaches (`image push`), then `service update --image`")  # fmt: skip
        return rejected[0], rejected[0].error, hint
    for t in current:
        if t.desired_state == "Running" and t.current_state == "Pending" and \
                "no suitable node" in t.error:  # fmt: skip
            if down:
                hint = (f"node {', '.join(down)} is down: start its engine, or change the "
                        "service's --constraint (see `node ls`)")  # fmt: skip
            else:
                hint = "no node matches the service's --constraint (see `node ls`)"
            return t, t.error, hint
    return None


def _log_line(stream: str, line: str, prefixes: dict[str, str]) -> LogEntry:
    """``TIME com.docker.swarm.node.id=…,…task.id=ID TEXT`` (``timestamps`` and ``details``)
    as a LogEntry whose text starts with docker's ``web.1.ID@node    | ``."""
    when, _, rest = line.partition(" ")
    details, _, text = rest.partition(" ")
    task = dict(kv.partition("=")[::2] for kv in details.split(",")).get(
        "com.docker.swarm.task.id", "")  # fmt: skip
    prefix = prefixes.get(task, task[:12])
    return LogEntry(stream, f"{prefix}    | {text}\n", when)


def _merged(readers: list[Iterator[LogEntry]]) -> Iterator[LogEntry]:
    """Lines from several followed streams as they come (one thread per stream)."""
    q: queue.Queue[LogEntry | BaseException | None] = queue.Queue()

    def pump(reader: Iterator[LogEntry]) -> None:
        try:
            for entry in reader:
                q.put(entry)
        except BaseException as exc:  # handed to the consumer
            q.put(exc)
        finally:
            q.put(None)

    for r in readers:
        threading.Thread(target=pump, args=(r,), daemon=True).start()
    left = len(readers)
    while left:
        item = q.get()
        if item is None:
            left -= 1
        elif isinstance(item, BaseException):
            raise item
        else:
            yield item


def _why(exc: BaseException) -> str:
    text = str(getattr(exc, "explanation", "") or exc).strip()
    return text.splitlines()[0][:160] if text else type(exc).__name__
