"""``ipydock swarm|node|service|stack …``: a Docker Swarm through the docker engine.

Each command asks :func:`ipydock.api.swarm_of` for the backend's swarm: on a Docker engine
that is :class:`ipydock.docker.swarm.Swarm`; on the bundled engine it raises one line saying
to switch engines. Warnings the swarm gives (an image no registry knows, compose keys a swarm
ignores) go to stderr, as docker prints them.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from typing import IO, Any

from ipydock.api import Backend, swarm_of
from ipydock.cli.registry import FORMAT, NO_TRUNC, arg, command, emit_inspect, emit_json, print_logs
from ipydock.cli.registry import arguments as _args
from ipydock.display.text import human_ago, table
from ipydock.models import LogEntry, NodeInfo, ServiceInfo, StackInfo, TaskInfo


def _swarm(backend: Backend) -> Any:
    return swarm_of(backend)


def _warn(swarm: Any) -> None:
    for text in swarm.warnings:
        sys.stderr.write(f"WARNING: {text}\n")
    swarm.warnings.clear()


# -- swarm ----------------------------------------------------------------------------------------


LISTEN = arg("--listen-addr", default="0.0.0.0:2377", help="listen address (default "
             "0.0.0.0:2377)")  # fmt: skip


@command("swarm", "init", "Initialize a swarm",
         call=lambda b, a: _swarm(b).init(a.advertise_addr, a.listen_addr))  # fmt: skip
@_args(arg("--advertise-addr", help="address other nodes reach this one at (ADDR[:PORT])"),
       LISTEN)  # fmt: skip
def swarm_init(backend: Backend, a: argparse.Namespace, out: IO[str]) -> int:
    node = _swarm(backend).init(a.advertise_addr, a.listen_addr)
    out.write(f"Swarm initialized: current node ({node}) is now a manager.\n")
    return 0


def _join_call(backend: Backend, a: argparse.Namespace) -> None:
    _swarm(backend).join(a.remote, a.token, a.advertise_addr, a.listen_addr)


@command("swarm", "join", "Join a swarm as a node and/or manager", call=_join_call)
@_args(arg("--token", required=True, help="token for entry into the swarm"),
       arg("--advertise-addr", help="address other nodes reach this one at"),
       LISTEN,
       arg("remote", metavar="HOST:PORT"))  # fmt: skip
def swarm_join(backend: Backend, a: argparse.Namespace, out: IO[str]) -> int:
    _join_call(backend, a)
    out.write("This node joined a swarm as a worker.\n")
    return 0


@command("swarm", "leave", "Leave the swarm",
         call=lambda b, a: _swarm(b).leave(force=a.force))  # fmt: skip
@_args(arg("-f", "--force", action="store_true", help="leave even as the last manager"))
def swarm_leave(backend: Backend, a: argparse.Namespace, out: IO[str]) -> int:
    _swarm(backend).leave(force=a.force)
    out.write("Node left the swarm.\n")
    return 0


@command("swarm", "join-token", "Manage join tokens",
         call=lambda b, a: _swarm(b).join_token(a.role))  # fmt: skip
@_args(arg("-q", "--quiet", action="store_true", help="only display the token"),
       arg("role", choices=["worker", "manager"]))  # fmt: skip
def swarm_join_token(backend: Backend, a: argparse.Namespace, out: IO[str]) -> int:
    swarm = _swarm(backend)
    token = swarm.join_token(a.role)
    if a.quiet:
        out.write(token + "\n")
    else:
        out.write(f"To add a {a.role} to this swarm, run the following command:\n\n"
                  f"    ipydock swarm join --token {token} {swarm.manager_addr()}\n\n")  # fmt: skip
    return 0


# -- node -----------------------------------------------------------------------------------------


def _node_ls_call(backend: Backend, a: argparse.Namespace) -> list[NodeInfo]:
    return list(_swarm(backend).nodes())


@command("node", "ls", "List nodes in the swarm", aliases=["list"], call=_node_ls_call)
@_args(arg("-q", "--quiet", action="store_true", help="only display IDs"), FORMAT)
def node_ls(backend: Backend, a: argparse.Namespace, out: IO[str]) -> int:
    rows = _node_ls_call(backend, a)
    if a.quiet:
        out.write("".join(f"{n.id}\n" for n in rows))
    elif a.format == "json":
        emit_json(rows, out)
    else:
        cells = [[n.id + (" *" if n.self else ""), n.hostname, n.status, n.availability,
                  n.manager_status, n.engine_version] for n in rows]  # fmt: skip
        out.write(table(["ID", "HOSTNAME", "STATUS", "AVAILABILITY", "MANAGER STATUS",
                         "ENGINE VERSION"], cells) + "\n")  # fmt: skip
    return 0


# -- service --------------------------------------------------------------------------------------


def _converge(swarm: Any, service: str, a: argparse.Namespace) -> None:
    """Unless ``-d``: wait for the tasks, with progress (the notebook's widget, or lines)."""
    if a.detach:
        return
    progress = getattr(a, "progress", None)
    if progress is None and not a.quiet:
        from ipydock.cli.distribution import text_progress

        progress = text_progress(sys.stdout)
    swarm.converge(service, progress)


def _create_call(backend: Backend, a: argparse.Namespace) -> str:
    labels = dict(item.partition("=")[::2] for item in a.label)
    swarm = _swarm(backend)
    try:
        sid = str(swarm.create_service(
            a.image, a.command, name=a.name, replicas=a.replicas, mode=a.mode,
            networks=a.network, publish=a.publish, env=a.env, labels=labels,
            constraints=a.constraint, endpoint_mode=a.endpoint_mode, hostname=a.hostname,
        ))  # fmt: skip
        _converge(swarm, sid, a)
        return sid
    finally:
        _warn(swarm)


@command("service", "create", "Create a new service", call=_create_call)
@_args(
    arg("--name", help="service name"),
    arg("--replicas", type=int, help="number of tasks"),
    arg("--mode", default="replicated", choices=["replicated", "global"], help="service mode"),
    arg("--network", action="append", default=[], help="network to attach to"),
    arg("-p", "--publish", action="append", default=[], metavar="PUBLISHED:TARGET[/PROTO]",
        help="publish a port as a node port (the routing mesh)"),
    arg("-e", "--env", action="append", default=[], metavar="K=V", help="set an environment "
        "variable"),
    arg("-l", "--label", action="append", default=[], metavar="K=V", help="service label"),
    arg("--constraint", action="append", default=[], help="placement constraint "
        "(node.role==worker, node.hostname==NAME, …)"),
    arg("--endpoint-mode", choices=["vip", "dnsrr"], help="vip (default) or dnsrr"),
    arg("--hostname", help="container hostname (templates such as {{.Task.Slot}} work)"),
    arg("-d", "--detach", action="store_true", help="return at once, without waiting for the "
        "tasks to run"),
    arg("-q", "--quiet", action="store_true", help="suppress progress output"),
    arg("image", metavar="IMAGE"),
    arg("command", nargs=argparse.REMAINDER, metavar="COMMAND"),
)  # fmt: skip
def service_create(backend: Backend, a: argparse.Namespace, out: IO[str]) -> int:
    out.write(_create_call(backend, a) + "\n")
    return 0


def _ls_call(backend: Backend, a: argparse.Namespace) -> list[ServiceInfo]:
    return list(_swarm(backend).services(a.filter))


@command("service", "ls", "List services", aliases=["list"], call=_ls_call)
@_args(arg("-q", "--quiet", action="store_true", help="only display IDs"),
       arg("-f", "--filter", action="append", default=[], metavar="KEY=VALUE",
           help="filter output (id, label, mode, name)"),
       FORMAT)  # fmt: skip
def service_ls(backend: Backend, a: argparse.Namespace, out: IO[str]) -> int:
    rows = _ls_call(backend, a)
    if a.quiet:
        out.write("".join(f"{s.id}\n" for s in rows))
    elif a.format == "json":
        emit_json(rows, out)
    else:
        cells = [[s.id[:12], s.name, s.mode, s.replicas, s.image, ", ".join(s.ports)]
                 for s in rows]  # fmt: skip
        out.write(table(["ID", "NAME", "MODE", "REPLICAS", "IMAGE", "PORTS"], cells) + "\n")
    return 0


def _inspect_call(backend: Backend, a: argparse.Namespace) -> list[ServiceInfo]:
    swarm = _swarm(backend)
    return [swarm.inspect_service(s) for s in a.services]


@command("service", "inspect", "Display detailed information on one or more services",
         call=_inspect_call)  # fmt: skip
@_args(FORMAT, arg("services", nargs="+", metavar="SERVICE"))
def service_inspect(backend: Backend, a: argparse.Namespace, out: IO[str]) -> int:
    emit_inspect(_inspect_call(backend, a), a.format, out)
    return 0


def _ps_call(backend: Backend, a: argparse.Namespace) -> list[TaskInfo]:
    """The tasks; a service whose tasks cannot run gets one warning line saying why and what
    to do (the rows keep the engine's own error text)."""
    swarm = _swarm(backend)
    rows: list[TaskInfo] = []
    for s in a.services:
        tasks = swarm.tasks(s, all=not a.running)
        problem = swarm.stuck(s, tasks=tasks) if any(t.error for t in tasks) else None
        if problem is not None:
            swarm.warnings.append(str(problem))
        rows += tasks
    _warn(swarm)
    return rows


@command("service", "ps", "List the tasks of one or more services", call=_ps_call)
@_args(arg("-q", "--quiet", action="store_true", help="only display task IDs"),
       arg("--running", action="store_true", help="only the tasks meant to run "
           "(docker's -f desired-state=running)"),
       NO_TRUNC, FORMAT, arg("services", nargs="+", metavar="SERVICE"))  # fmt: skip
def service_ps(backend: Backend, a: argparse.Namespace, out: IO[str]) -> int:
    rows = _ps_call(backend, a)
    if a.quiet:
        out.write("".join(f"{t.id}\n" for t in rows))
    elif a.format == "json":
        emit_json(rows, out)
    else:
        cells = [[t.id if a.no_trunc else t.id[:12], t.name, t.image, t.node, t.desired_state,
                  f"{t.current_state} {human_ago(t.since)}", t.error if a.no_trunc
                  else t.error[:40]] for t in rows]  # fmt: skip
        out.write(table(["ID", "NAME", "IMAGE", "NODE", "DESIRED STATE", "CURRENT STATE",
                         "ERROR"], cells) + "\n")  # fmt: skip
    return 0


def _logs_call(backend: Backend, a: argparse.Namespace) -> Iterator[LogEntry]:
    tail = None if a.tail == "all" else int(a.tail)
    return _swarm(backend).service_logs(a.service, follow=a.follow, tail=tail)


@command("service", "logs", "Fetch the logs of a service", call=_logs_call)
@_args(arg("-f", "--follow", action="store_true", help="follow log output"),
       arg("-n", "--tail", default="all", help="lines from the end of each task's log"),
       arg("-t", "--timestamps", action="store_true", help="show timestamps"),
       arg("service", metavar="SERVICE"))  # fmt: skip
def service_logs(backend: Backend, a: argparse.Namespace, out: IO[str]) -> int:
    return print_logs(_logs_call(backend, a), out, a.timestamps)


def _scale_call(backend: Backend, a: argparse.Namespace) -> list[str]:
    swarm = _swarm(backend)
    done = []
    for item in a.pairs:
        name, sep, count = item.partition("=")
        if not sep or not count.isdigit():
            from ipydock.errors import UsageError

            raise UsageError(f"service scale: {item!r}: use SERVICE=REPLICAS, e.g. web=3")
        swarm.scale(name, int(count))
        done.append(f"{name} scaled to {count}")
    for item in a.pairs:
        _converge(swarm, item.partition("=")[0], a)
    _warn(swarm)
    return done


@command("service", "scale", "Scale one or more replicated services", call=_scale_call)
@_args(arg("-d", "--detach", action="store_true", help="return at once, without waiting for "
           "the tasks"),
       arg("-q", "--quiet", action="store_true", help="suppress progress output"),
       arg("pairs", nargs="+", metavar="SERVICE=REPLICAS"))  # fmt: skip
def service_scale(backend: Backend, a: argparse.Namespace, out: IO[str]) -> int:
    out.write("".join(f"{line}\n" for line in _scale_call(backend, a)))
    return 0


def _update_call(backend: Backend, a: argparse.Namespace) -> str:
    swarm = _swarm(backend)
    try:
        swarm.update_service(a.service, image=a.image, replicas=a.replicas, force=a.force)
        _converge(swarm, a.service, a)
    finally:
        _warn(swarm)
    return str(a.service)


@command("service", "update", "Update a service", call=_update_call)
@_args(arg("--image", help="service image tag"),
       arg("--replicas", type=int, help="number of tasks"),
       arg("--force", action="store_true", help="restart the tasks even without a change"),
       arg("-d", "--detach", action="store_true", help="return at once, without waiting for "
           "the tasks"),
       arg("-q", "--quiet", action="store_true", help="suppress progress output"),
       arg("service", metavar="SERVICE"))  # fmt: skip
def service_update(backend: Backend, a: argparse.Namespace, out: IO[str]) -> int:
    out.write(_update_call(backend, a) + "\n")
    return 0


def _rm_call(backend: Backend, a: argparse.Namespace) -> list[str]:
    swarm = _swarm(backend)
    for s in a.services:
        swarm.remove_service(s)
    return list(a.services)


@command("service", "rm", "Remove one or more services", aliases=["remove"], call=_rm_call)
@_args(arg("services", nargs="+", metavar="SERVICE"))
def service_rm(backend: Backend, a: argparse.Namespace, out: IO[str]) -> int:
    out.write("".join(f"{s}\n" for s in _rm_call(backend, a)))
    return 0


# -- stack ----------------------------------------------------------------------------------------


def _deploy_call(backend: Backend, a: argparse.Namespace) -> list[str]:
    from ipydock.docker.stack import load

    swarm = _swarm(backend)
    try:
        return list(swarm.deploy_stack(a.stack, load(a.compose_file)))
    finally:
        _warn(swarm)


@command("stack", "deploy", "Deploy a new stack or update an existing stack", call=_deploy_call)
@_args(arg("-c", "--compose-file", required=True, help="path to a compose file"),
       arg("stack", metavar="STACK"))  # fmt: skip
def stack_deploy(backend: Backend, a: argparse.Namespace, out: IO[str]) -> int:
    out.write("".join(f"{line}\n" for line in _deploy_call(backend, a)))
    return 0


def _stack_ls_call(backend: Backend, a: argparse.Namespace) -> list[StackInfo]:
    return list(_swarm(backend).stacks())


@command("stack", "ls", "List stacks", aliases=["list"], call=_stack_ls_call)
@_args(FORMAT)
def stack_ls(backend: Backend, a: argparse.Namespace, out: IO[str]) -> int:
    rows = _stack_ls_call(backend, a)
    if a.format == "json":
        emit_json(rows, out)
    else:
        out.write(table(["NAME", "SERVICES"], [[s.name, str(s.services)] for s in rows]) + "\n")
    return 0


def _stack_ps_call(backend: Backend, a: argparse.Namespace) -> list[TaskInfo]:
    swarm = _swarm(backend)
    services = swarm.services([f"label=com.docker.stack.namespace={a.stack}"])
    return [t for s in services for t in swarm.tasks(s.id)]


@command("stack", "ps", "List the tasks in the stack", call=_stack_ps_call)
@_args(FORMAT, arg("stack", metavar="STACK"))
def stack_ps(backend: Backend, a: argparse.Namespace, out: IO[str]) -> int:
    rows = _stack_ps_call(backend, a)
    if a.format == "json":
        emit_json(rows, out)
    else:
        cells = [[t.id[:12], t.name, t.image, t.node, t.desired_state, t.current_state]
                 for t in rows]  # fmt: skip
        out.write(table(["ID", "NAME", "IMAGE", "NODE", "DESIRED STATE", "CURRENT STATE"],
                        cells) + "\n")  # fmt: skip
    return 0


def _stack_rm_call(backend: Backend, a: argparse.Namespace) -> list[str]:
    swarm = _swarm(backend)
    return [line for s in a.stacks for line in swarm.remove_stack(s)]


@command("stack", "rm", "Remove one or more stacks", aliases=["remove"], call=_stack_rm_call)
@_args(arg("stacks", nargs="+", metavar="STACK"))
def stack_rm(backend: Backend, a: argparse.Namespace, out: IO[str]) -> int:
    out.write("".join(f"Removing {line}\n" for line in _stack_rm_call(backend, a)))
    return 0
