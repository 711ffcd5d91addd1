"""``ipydock network …``: create, ls, inspect, connect, disconnect, rm, prune."""

from __future__ import annotations

import argparse
from typing import IO

from ipydock.api import Backend
from ipydock.cli.registry import (
    FORMAT,
    NO_TRUNC,
    arg,
    command,
    each,
    emit_inspect,
    emit_json,
    print_each,
)
from ipydock.cli.registry import arguments as _args
from ipydock.display.network import NetworkGraph, network_graph  # no pandas: cheap
from ipydock.display.text import table
from ipydock.errors import SwarmUnavailable
from ipydock.models import ActionResult, NetworkInfo, TaskInfo


def _create_call(backend: Backend, a: argparse.Namespace) -> NetworkInfo:
    labels = dict(item.partition("=")[::2] for item in a.label)
    extra: dict[str, object] = {"ip_range": a.ip_range} if a.ip_range else {}  # bundled's
    if a.attachable:  # swarm-scoped networks (overlay), the Docker engine's
        extra["attachable"] = True
    options = dict(item.partition("=")[::2] for item in a.opt) or None
    return backend.create_network(a.name, driver=a.driver, subnet=a.subnet, gateway=a.gateway,
                                  internal=a.internal, labels=labels, options=options,
                                  **extra)  # fmt: skip


@command("network", "create", "Create a network", call=_create_call)
@_args(
    arg("-d", "--driver", default="bridge", help="driver (default bridge)"),
    arg("--subnet", help="subnet in CIDR form, e.g. 172.28.0.0/16"),
    arg("--gateway", help="gateway address of the subnet"),
    arg("--ip-range", help="allocate container addresses from this sub-range"),
    arg("--internal", action="store_true", help="no access to the outside"),
    arg(
        "--attachable",
        action="store_true",
        help="let standalone containers join a swarm (overlay) network",
    ),
    arg(
        "-o",
        "--opt",
        action="append",
        default=[],
        metavar="K=V",
        help="driver options, e.g. parent=eth0 for macvlan",
    ),
    arg("-l", "--label", action="append", default=[], metavar="K=V", help="set metadata"),
    arg("name", metavar="NETWORK"),
)
def network_create(backend: Backend, a: argparse.Namespace, out: IO[str]) -> int:
    out.write(_create_call(backend, a).id + "\n")
    return 0


def _ls_call(backend: Backend, a: argparse.Namespace) -> list[NetworkInfo] | NetworkGraph:
    """The rows, or with ``--graph`` the picture of them and the running containers."""
    rows = backend.networks(filters=a.filter)
    if not a.graph:
        return rows
    return network_graph(rows, backend.containers(), _swarm_tasks(backend))


def _swarm_tasks(backend: Backend) -> list[TaskInfo]:
    """The tasks of every service when the engine is a swarm manager (none otherwise)."""
    swarm = getattr(backend, "swarm", None)
    if swarm is None:
        return []
    try:
        return [t for s in swarm.services() for t in swarm.tasks(s.id)]
    except SwarmUnavailable:
        return []


@command("network", "ls", "List networks", aliases=["list"], call=_ls_call)
@_args(
    arg("-q", "--quiet", action="store_true", help="only show network IDs"),
    arg("-f", "--filter", action="append", default=[], metavar="KEY=VALUE",
        help="filter output (driver, id, name, label, scope, type=custom|builtin)"),
    NO_TRUNC,
    FORMAT,
    arg("--graph", action="store_true",
        help="draw networks, containers, addresses and published ports (SVG in a notebook)"),
)  # fmt: skip
def network_ls(backend: Backend, a: argparse.Namespace, out: IO[str]) -> int:
    result = _ls_call(backend, a)
    if not isinstance(result, list):
        out.write(result.text() + "\n")
        return 0
    ids = [n.id if a.no_trunc else n.id[:12] for n in result]
    if a.quiet:
        out.write("".join(f"{i}\n" for i in ids))
    elif a.format == "json":
        emit_json(result, out)
    else:
        cells = [[i, n.name, n.driver, n.scope] for i, n in zip(ids, result, strict=True)]
        out.write(table(["NETWORK ID", "NAME", "DRIVER", "SCOPE"], cells) + "\n")
    return 0


def _inspect_call(backend: Backend, a: argparse.Namespace) -> list[NetworkInfo]:
    return [backend.inspect_network(n) for n in a.names]


@command("network", "inspect", "Display detailed information on one or more networks",
         call=_inspect_call)  # fmt: skip
@_args(FORMAT, arg("names", nargs="+", metavar="NETWORK"))
def network_inspect(backend: Backend, a: argparse.Namespace, out: IO[str]) -> int:
    emit_inspect(_inspect_call(backend, a), a.format, out)
    return 0


@command(
    "network",
    "connect",
    "Connect a container to a network",
    call=lambda b, a: b.connect_network(a.network, a.container, aliases=a.alias),
)
@_args(arg("--alias", action="append", default=[], help="another name of the container there"),
       arg("--ip", help="its IPv4 address there"),
       arg("network", metavar="NETWORK"), arg("container", metavar="CONTAINER"))  # fmt: skip
def network_connect(backend: Backend, a: argparse.Namespace, out: IO[str]) -> int:
    extra = {"ip": a.ip} if a.ip else {}  # the bundled engine's
    backend.connect_network(a.network, a.container, aliases=a.alias, **extra)
    return 0


@command(
    "network",
    "disconnect",
    "Disconnect a container from a network",
    call=lambda b, a: b.disconnect_network(a.network, a.container, force=a.force),
)
@_args(arg("-f", "--force", action="store_true", help="force the container to disconnect"),
       arg("network", metavar="NETWORK"), arg("container", metavar="CONTAINER"))  # fmt: skip
def network_disconnect(backend: Backend, a: argparse.Namespace, out: IO[str]) -> int:
    backend.disconnect_network(a.network, a.container, force=a.force)
    return 0


def _rm_call(backend: Backend, a: argparse.Namespace) -> list[ActionResult]:
    return each(a.names, backend.remove_network)


@command("network", "rm", "Remove one or more networks", aliases=["remove"], call=_rm_call)
@_args(arg("names", nargs="+", metavar="NETWORK"))
def network_rm(backend: Backend, a: argparse.Namespace, out: IO[str]) -> int:
    return print_each(_rm_call(backend, a), out)


def _prune_call(backend: Backend, a: argparse.Namespace) -> list[str]:
    return backend.prune_networks()


@command("network", "prune", "Remove all unused networks", call=_prune_call)
@_args(arg("-f", "--force", action="store_true", help="do not prompt (ipydock never prompts)"))
def network_prune(backend: Backend, a: argparse.Namespace, out: IO[str]) -> int:
    deleted = backend.prune_networks()
    if deleted:
        out.write("Deleted Networks:\n" + "".join(f"{n}\n" for n in deleted))
    return 0
