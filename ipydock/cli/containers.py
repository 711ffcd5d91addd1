"""``ipydock container …`` (and docker's short forms ``run``, ``ps``, ``exec``, ``logs``, …)."""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from typing import IO, Any

from ipydock.api import Backend
from ipydock.cli import tty
from ipydock.cli.registry import (
    FORMAT,
    NO_TRUNC,
    arg,
    command,
    each,
    emit_inspect,
    emit_json,
    print_each,
    print_logs,
)
from ipydock.cli.registry import arguments as _args
from ipydock.display.text import human_ago, human_size, table
from ipydock.errors import ContainerNotRunning, StartFailed, UsageError
from ipydock.models import (
    ActionResult,
    ContainerDetail,
    ContainerInfo,
    FileChange,
    LogEntry,
    PortBinding,
    ProcessTable,
    RunOutput,
    RunResult,
    WaitResult,
)
from ipydock.models.containers import RunOptions

_RUN_FLAGS = (
    arg("--name", help="assign a name to the container"),
    arg("-e", "--env", action="append", default=[], metavar="K=V", help="set an env variable"),
    arg("--env-file", action="append", default=[], help="read env variables from a file"),
    arg("-w", "--workdir", help="working directory inside the container"),
    arg("-u", "--user", help="user name or uid[:gid]"),
    arg("--entrypoint", help="override the image's ENTRYPOINT"),
    arg("--hostname", help="container host name"),
    arg("-v", "--volume", action="append", default=[], dest="volumes",
        metavar="[SRC:]DST[:ro]", help="bind mount a host path or mount a named volume"),
    arg("--mount", action="append", default=[], metavar="type=…,source=…,target=…",
        help="attach a mount (bind, volume, tmpfs)"),
    arg("-m", "--memory", help="memory limit (e.g. 64m)"),
    arg("--pids-limit", type=int, help="limit on the number of processes"),
    arg("--cpus", type=float, help="number of CPUs"),
    arg("--network", "--net", default="default",
        help="bridge (the default), a network's name, host or none"),
    arg("--network-alias", action="append", default=[], help="another name on the network"),
    arg("--ip", help="the container's IPv4 address on its network"),
    arg("--link", action="append", default=[], metavar="NAME[:ALIAS]",
        help="hosts entry and variables of another container (default bridge)"),
    arg("-p", "--publish", action="append", default=[], metavar="[IP:][HOST:]PORT[/PROTO]",
        help="publish a container's port on the host (needs a bridge network)"),
    arg("-P", "--publish-all", action="store_true",
        help="publish every exposed port on a free host port"),
    arg("--privileged", action="store_true",
        help="give extended privileges (every capability, all devices, no masked paths)"),
    arg("--device", action="append", default=[], dest="devices",
        metavar="HOST[:CONTAINER[:PERMS]]", help="add a host device (PERMS: r, w, m; default rwm)"),
    arg("--cap-add", action="append", default=[], help="add a Linux capability"),
    arg("--cap-drop", action="append", default=[], help="drop a Linux capability"),
    arg("--security-opt", action="append", default=[], metavar="OPT",
        help="no-new-privileges[:true|false], seccomp=unconfined|PROFILE.json"),
    arg("--group-add", action="append", default=[], metavar="GROUP",
        help="add a supplementary group (name or gid)"),
    arg("--ulimit", action="append", default=[], metavar="NAME=SOFT[:HARD]",
        help="set a resource limit (e.g. nofile=1024:2048)"),
    arg("--init", action="store_true", help="run an init (tini) as pid 1: reaps, forwards signals"),
    arg("--userns", metavar="host", help="user namespace mode (docker takes only 'host')"),
    arg("--read-only", action="store_true", help="mount the root filesystem read-only"),
    arg("--restart", default="no", help="no, on-failure[:N], always"),
    arg("--rm", action="store_true", help="remove the container when it exits"),
    arg("-i", "--interactive", action="store_true", help="keep STDIN open"),
    arg("-t", "--tty", action="store_true", help="allocate a pseudo-terminal"),
    arg("-l", "--label", action="append", default=[], help="set metadata K=V"),
    arg("--stop-signal", help="signal to stop the container"),
    arg("--stop-timeout", type=int, help="seconds to wait before killing on stop"),
    arg("image"),
    arg("command", nargs=argparse.REMAINDER),
)  # fmt: skip


def _options(a: argparse.Namespace) -> RunOptions:
    labels = dict(item.partition("=")[::2] for item in a.label)
    return RunOptions(
        image=a.image, command=tuple(a.command), name=a.name, env=tuple(a.env),
        env_file=tuple(a.env_file), workdir=a.workdir, user=a.user, entrypoint=a.entrypoint,
        hostname=a.hostname, volumes=tuple(a.volumes), mounts=tuple(a.mount), memory=a.memory,
        pids_limit=a.pids_limit, cpus=a.cpus, network=a.network, publish=tuple(a.publish),
        network_aliases=tuple(a.network_alias), ip=a.ip, links=tuple(a.link),
        publish_all=a.publish_all,
        privileged=a.privileged, devices=tuple(a.devices), cap_add=tuple(a.cap_add),
        cap_drop=tuple(a.cap_drop), read_only=a.read_only,
        security_opt=tuple(a.security_opt), group_add=tuple(a.group_add),
        ulimits=tuple(a.ulimit), init=a.init, userns=a.userns,
        restart=a.restart, auto_remove=a.rm, interactive=a.interactive, tty=a.tty, labels=labels,
        stop_signal=a.stop_signal, stop_timeout=a.stop_timeout,
    )  # fmt: skip


#: Where there is no terminal (a notebook's cell), ``-it`` says where to go instead.
NO_TERMINAL = (
    "a notebook has no terminal: run this command in a JupyterLab terminal (`ipydock …`), "
    "or start the container with -d and use `%container exec`"
)
#: run/start/attach/exec's flags of docker's attached terminals
DETACH_KEYS = arg("--detach-keys", metavar="KEYS",
                  help="keys that detach from the container (default ctrl-p,ctrl-q)")  # fmt: skip
SIG_PROXY = arg("--sig-proxy", type=lambda v: v.lower() not in ("false", "0", "no"),
                default=True, nargs="?", const=True, metavar="true|false",
                help="pass received signals to the process (without -t; default true)")  # fmt: skip


def _run_call(backend: Backend, a: argparse.Namespace) -> RunResult | RunOutput:
    """Detached: the container's ID; attached: what it printed, with its exit code."""
    if a.tty and not a.detach:
        raise UsageError(NO_TERMINAL)
    chunks: list[tuple[str, str]] = []
    result = backend.run(_options(a), detach=a.detach, output=lambda s, t: chunks.append((s, t)))
    return result if a.detach else RunOutput(chunks, result)


@command("container", "run", "Create and run a new container from an image", top=["run"],
         call=_run_call)  # fmt: skip
@_args(arg("-d", "--detach", action="store_true", help="run in the background, print the ID"),
       DETACH_KEYS, SIG_PROXY, *_RUN_FLAGS)  # fmt: skip
def container_run(backend: Backend, a: argparse.Namespace, out: IO[str]) -> int:
    def output(stream: str, text: str) -> None:
        target = sys.stderr if stream == "stderr" else out
        target.write(text)
        target.flush()

    if a.tty and a.interactive and not a.detach:
        tty.require_terminal(0)
    # -di: the container's stdin stays open and empty (the supervisor's), never ours: a
    # detached container must not read the terminal the user goes on typing in
    stdin = sys.stdin if a.interactive and not a.tty and not a.detach else None
    try:
        if a.tty and not a.detach:
            out.flush()
            session = backend.run_terminal(_options(a), console_size=tty.console_size(1, 0))
            return _code(tty.interact(session, stdin=a.interactive, detach_keys=a.detach_keys))
        with _signals_while_attached(backend, a) as proxy:
            result = backend.run(_options(a), detach=a.detach, stdin=stdin, output=output,
                                 on_start=proxy.started if proxy else None)  # fmt: skip
    except StartFailed as exc:  # docker run exits with 125/126/127 and says why
        print(f"ipydock: Error: {exc}.", file=sys.stderr)
        return exc.exit_code
    except tty.ForceExit as exc:  # the container goes on, as with docker
        print(f"\n{exc}", file=sys.stderr)
        return 1
    if a.detach:
        out.write(result.id + "\n")
        return 0
    return int(result.exit_code or 0)


def _signals_while_attached(backend: Backend, a: argparse.Namespace) -> Any:
    """sig-proxy (its :meth:`~ipydock.cli.tty.SigProxy.started` takes the container), or with
    ``--sig-proxy=false`` signals ignored (None); detached: nothing to do (None)."""
    if getattr(a, "detach", False):
        return contextlib.nullcontext()
    if not a.sig_proxy:
        return tty.no_sig_proxy()
    return tty.SigProxy(backend.kill_container)


def _code(code: int | None) -> int:
    """The exit code of an attached terminal; 0 when the user detached from it."""
    return 0 if code is None else code


def _create_call(backend: Backend, a: argparse.Namespace) -> str:
    return backend.create_container(_options(a))


@command("container", "create", "Create a new container", top=["create"], call=_create_call)
@_args(*_RUN_FLAGS)
def container_create(backend: Backend, a: argparse.Namespace, out: IO[str]) -> int:
    out.write(_create_call(backend, a) + "\n")
    return 0


def many(
    name: str, help: str, action: Callable[[Backend, argparse.Namespace], Callable[[str], object]],
    *flags: tuple, top: tuple[str, ...] = (), aliases: tuple[str, ...] = (),
) -> None:  # fmt: skip
    """Register ``container NAME … CONTAINER…``: its call runs ``action`` on each name."""

    def call(backend: Backend, a: argparse.Namespace) -> list[ActionResult]:
        return each(a.containers, action(backend, a))

    def run(backend: Backend, a: argparse.Namespace, out: IO[str]) -> int:
        return print_each(call(backend, a), out)

    _args(*flags, CONTAINERS)(run)
    command("container", name, help, top=top or (name,), aliases=aliases, call=call)(run)


CONTAINERS = arg("containers", nargs="+", metavar="CONTAINER")


def _start_call(backend: Backend, a: argparse.Namespace) -> list[ActionResult] | RunOutput:
    """Started containers; with ``-a``: what it printed, with its exit code (as ``run``)."""
    if not (a.attach or a.interactive):
        return each(a.containers, backend.start_container)
    detail = _one_to_attach(backend, a)
    if detail.config.get("Tty"):
        raise UsageError(NO_TERMINAL)
    chunks: list[tuple[str, str]] = []
    code = backend.start_attached(detail.id, output=lambda s, t: chunks.append((s, t)))
    return RunOutput(chunks, RunResult(detail.id, code))


def _one_to_attach(backend: Backend, a: argparse.Namespace) -> ContainerDetail:
    if len(a.containers) > 1:
        raise UsageError("you cannot start and attach multiple containers at once")
    return backend.inspect_container(a.containers[0])


@command("container", "start", "Start one or more stopped containers", top=["start"],
         call=_start_call)  # fmt: skip
@_args(arg("-a", "--attach", action="store_true", help="attach to the container's terminal"),
       arg("-i", "--interactive", action="store_true", help="attach its STDIN"),
       DETACH_KEYS, CONTAINERS)  # fmt: skip
def container_start(backend: Backend, a: argparse.Namespace, out: IO[str]) -> int:
    if not (a.attach or a.interactive):
        return print_each(each(a.containers, backend.start_container), out)
    detail = _one_to_attach(backend, a)
    if not detail.config.get("Tty"):
        return _start_output(backend, a, detail.id, out)
    if a.interactive:
        tty.require_terminal(0)
    out.flush()
    session = backend.start_terminal(detail.id, console_size=tty.console_size(1, 0))
    return _code(tty.interact(session, stdin=a.interactive, detach_keys=a.detach_keys))


def _start_output(backend: Backend, a: argparse.Namespace, cid: str, out: IO[str]) -> int:
    """``start -a`` without a terminal: its output, signals passed on, its exit code."""

    def output(stream: str, text: str) -> None:
        target = sys.stderr if stream == "stderr" else out
        target.write(text)
        target.flush()

    try:
        with tty.SigProxy(backend.kill_container) as proxy:
            return backend.start_attached(cid, stdin=sys.stdin if a.interactive else None,
                                          output=output, on_start=proxy.started)  # fmt: skip
    except StartFailed as exc:
        print(f"ipydock: Error: {exc}.", file=sys.stderr)
        return exc.exit_code
    except tty.ForceExit as exc:
        print(f"\n{exc}", file=sys.stderr)
        return 1


def _attach_call(backend: Backend, a: argparse.Namespace) -> None:
    raise UsageError(NO_TERMINAL)


@command("container", "attach", "Attach to a running container's terminal or output",
         top=["attach"], call=_attach_call)  # fmt: skip
@_args(DETACH_KEYS, arg("--no-stdin", action="store_true", help="do not attach STDIN"),
       SIG_PROXY, arg("container"))  # fmt: skip
def container_attach(backend: Backend, a: argparse.Namespace, out: IO[str]) -> int:
    """A terminal container: its terminal (the same one, after a detach); any other: its
    output from now on, with signals passed on (sig-proxy); the exit code when it ends."""
    detail = backend.inspect_container(a.container)
    if not detail.state.get("Running"):
        raise ContainerNotRunning(detail.id)
    if detail.config.get("Tty"):
        if not a.no_stdin:
            tty.require_terminal(0)
        out.flush()
        session = backend.attach_terminal(detail.id)
        rows, cols = tty.console_size(1, 0)
        session.terminal.resize(rows, cols)
        return _code(tty.interact(session, stdin=not a.no_stdin, detach_keys=a.detach_keys))
    try:
        with _signals_while_attached(backend, a) as p:
            if p:
                p.started(detail.id)
            for entry in backend.logs(detail.id, follow=True, tail=0):
                target = sys.stderr if entry.stream == "stderr" else out
                target.write(entry.text)
                target.flush()
            return backend.wait_container(detail.id)
    except tty.ForceExit as exc:
        print(f"\n{exc}", file=sys.stderr)
        return 1


many(
    "stop",
    "Stop one or more running containers",
    lambda b, a: lambda c: b.stop_container(c, a.time),
    arg("-t", "--time", type=int, help="seconds to wait before killing it (default 10)"),
)
many(
    "kill",
    "Kill one or more running containers",
    lambda b, a: lambda c: b.kill_container(c, a.signal),
    arg("-s", "--signal", default="KILL", help="signal to send (default KILL)"),
)
many(
    "restart",
    "Restart one or more containers",
    lambda b, a: lambda c: b.restart_container(c, a.time),
    arg("-t", "--time", type=int, help="seconds to wait for stop (default 10)"),
)
many("rm", "Remove one or more containers",
     lambda b, a: lambda c: b.remove_container(c, force=a.force, volumes=a.volumes),
     arg("-f", "--force", action="store_true", help="kill and remove a running container"),
     arg("-v", "--volumes", action="store_true", help="remove its anonymous volumes"),
     aliases=("remove",))  # fmt: skip


def _wait_call(backend: Backend, a: argparse.Namespace) -> Iterator[WaitResult]:
    """Each container's exit code as it stops (in the order given)."""
    for name in a.containers:
        yield WaitResult(name, backend.wait_container(name))


@command("container", "wait", "Block until containers stop, then print their exit codes",
         top=["wait"], call=lambda b, a: list(_wait_call(b, a)))  # fmt: skip
@_args(CONTAINERS)
def container_wait(backend: Backend, a: argparse.Namespace, out: IO[str]) -> int:
    for row in _wait_call(backend, a):
        out.write(f"{row.status_code}\n")
        out.flush()
    return 0


def _tail(a: argparse.Namespace) -> int | None:
    if a.tail != "all" and not a.tail.isdigit():
        raise UsageError(f"invalid --tail {a.tail!r}: a number or 'all'")
    return None if a.tail == "all" else int(a.tail)


def _logs_call(backend: Backend, a: argparse.Namespace) -> Iterator[LogEntry]:
    """The log lines as they come (with ``-f``, until the container stops)."""
    return backend.logs(a.container, follow=a.follow, tail=_tail(a))


@command("container", "logs", "Fetch the logs of a container", top=["logs"], call=_logs_call)
@_args(arg("-f", "--follow", action="store_true", help="follow log output"),
       arg("-n", "--tail", default="all", help="lines from the end (default all)"),
       arg("-t", "--timestamps", action="store_true", help="show timestamps"),
       arg("container"))  # fmt: skip
def container_logs(backend: Backend, a: argparse.Namespace, out: IO[str]) -> int:
    return print_logs(_logs_call(backend, a), out, a.timestamps)


def _inspect_call(backend: Backend, a: argparse.Namespace) -> list[ContainerDetail]:
    return [backend.inspect_container(c) for c in a.containers]


@command("container", "inspect", "Display detailed information on one or more containers",
         call=_inspect_call)  # fmt: skip
@_args(FORMAT, CONTAINERS)
def container_inspect(backend: Backend, a: argparse.Namespace, out: IO[str]) -> int:
    details = _inspect_call(backend, a)
    emit_inspect(details, a.format, out)
    return 0


def _top_call(backend: Backend, a: argparse.Namespace) -> ProcessTable:
    titles, rows = backend.top(a.container)
    return ProcessTable(list(titles), [list(r) for r in rows])


@command("container", "top", "Display the running processes of a container", top=["top"],
         call=_top_call)  # fmt: skip
@_args(arg("container"))
def container_top(backend: Backend, a: argparse.Namespace, out: IO[str]) -> int:
    result = _top_call(backend, a)
    out.write(table(result.titles, result.processes) + "\n")
    return 0


def _port_call(backend: Backend, a: argparse.Namespace) -> list[PortBinding]:
    """docker's ``port``: the container's published ports, or those of one private port."""
    cid = backend.inspect_container(a.container).id
    (row,) = [c for c in backend.containers(all=True) if c.id == cid]
    found = [p for p in row.ports if p.host_port]
    if a.private_port:
        number, _, proto = a.private_port.partition("/")
        found = [p for p in found if str(p.container_port) == number
                 and p.protocol == (proto or "tcp")]  # fmt: skip
        if not found:
            raise UsageError(f"No public port '{number}/{proto or 'tcp'}' published for "
                             f"{a.container}")  # fmt: skip
    return found


@command("container", "port", "List port mappings or a specific mapping for the container",
         top=["port"], call=_port_call)  # fmt: skip
@_args(arg("container"), arg("private_port", nargs="?", metavar="PRIVATE_PORT[/PROTO]"))
def container_port(backend: Backend, a: argparse.Namespace, out: IO[str]) -> int:
    for p in _port_call(backend, a):
        where = f"{p.host_ip or '0.0.0.0'}:{p.host_port}"
        out.write(where + "\n" if a.private_port else
                  f"{p.container_port}/{p.protocol} -> {where}\n")  # fmt: skip
    return 0


def _diff_call(backend: Backend, a: argparse.Namespace) -> list[FileChange]:
    return backend.diff(a.container)


@command("container", "diff", "Inspect changes to files on a container's filesystem",
         top=["diff"], call=_diff_call)  # fmt: skip
@_args(FORMAT, arg("container"))
def container_diff(backend: Backend, a: argparse.Namespace, out: IO[str]) -> int:
    changes = _diff_call(backend, a)
    if a.format == "json":
        emit_json(changes, out)
    else:
        out.write("".join(f"{c.kind} {c.path}\n" for c in changes))
    return 0


def _commit_call(backend: Backend, a: argparse.Namespace) -> str:
    return backend.commit(a.container, a.target, message=a.message, author=a.author,
                          changes=a.change)  # fmt: skip


@command("container", "commit", "Create a new image from a container's changes", top=["commit"],
         call=_commit_call)  # fmt: skip
@_args(arg("-m", "--message", default="", help="commit message"),
       arg("-a", "--author", default="", help='author (e.g. "Jane <jane@example.com>")'),
       arg("-c", "--change", action="append", default=[], help="apply a Dockerfile instruction"),
       arg("container"), arg("target", nargs="?", metavar="REPOSITORY[:TAG]"))  # fmt: skip
def container_commit(backend: Backend, a: argparse.Namespace, out: IO[str]) -> int:
    out.write(_commit_call(backend, a) + "\n")
    return 0


def _cp_call(backend: Backend, a: argparse.Namespace) -> None:
    src_c, _, src_path = a.source.partition(":") if _remote(a.source) else ("", "", a.source)
    dst_c, _, dst_path = a.dest.partition(":") if _remote(a.dest) else ("", "", a.dest)
    if bool(src_c) == bool(dst_c):
        raise UsageError("copying between containers or host paths is not supported: "
                         "use CONTAINER:SRC DEST or SRC CONTAINER:DEST")  # fmt: skip
    if src_c:
        _copy_out(backend, src_c, src_path, dst_path)
    else:
        _copy_in(backend, src_path, dst_c, dst_path)


@command("container", "cp", "Copy files between a container and the host", top=["cp"],
         call=_cp_call)  # fmt: skip
@_args(arg("source", metavar="SRC"), arg("dest", metavar="DEST"))
def container_cp(backend: Backend, a: argparse.Namespace, out: IO[str]) -> int:
    _cp_call(backend, a)
    return 0


def _remote(text: str) -> bool:
    head = text.split(":", 1)[0]
    return ":" in text and "/" not in head and head not in ("", ".")


def _copy_out(backend: Backend, container: str, path: str, dest: str) -> None:
    import tempfile

    from ipydock.engine.store.layertar import apply_tar

    if dest == "-":
        backend.copy_from(container, path, sys.stdout.buffer)
        return
    with tempfile.TemporaryFile() as buf:
        backend.copy_from(container, path, buf)  # type: ignore[arg-type]
        buf.seek(0)
        if os.path.isdir(dest):
            apply_tar(buf, dest, source=f"{container}:{path}", whiteouts="delete")
            return
        with tempfile.TemporaryDirectory(dir=os.path.dirname(os.path.abspath(dest))) as tmp:
            apply_tar(buf, tmp, source=f"{container}:{path}", whiteouts="delete")
            (only,) = os.listdir(tmp)
            os.rename(os.path.join(tmp, only), dest)


def _copy_in(backend: Backend, src: str, container: str, dest: str) -> None:
    import tarfile
    import tempfile

    if src == "-":
        backend.copy_to(container, dest, sys.stdin.buffer)
        return
    if not os.path.lexists(src):
        raise UsageError(f"no such file or directory: {src}")
    with tempfile.TemporaryFile() as buf:
        with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
            tar.add(src, arcname=os.path.basename(os.path.normpath(src)))
        buf.seek(0)
        backend.copy_to(container, dest, buf)  # type: ignore[arg-type]


_EXEC_FLAGS = (
    arg("-e", "--env", action="append", default=[], metavar="K=V"),
    arg("-w", "--workdir"), arg("-u", "--user"),
    arg("-i", "--interactive", action="store_true", help="keep STDIN open"),
    arg("-t", "--tty", action="store_true", help="allocate a pseudo-terminal"),
    DETACH_KEYS,
    arg("container"), arg("command", nargs=argparse.REMAINDER),
)  # fmt: skip


def _exec_command(a: argparse.Namespace) -> list[str]:
    if not a.command:
        raise UsageError("exec needs a command: ipydock exec CONTAINER COMMAND [ARG...]")
    return list(a.command)


def _exec_call(backend: Backend, a: argparse.Namespace) -> RunOutput:
    """What the command printed (stdout, stderr apart) and its exit code; nothing is read from
    this process's stdin or written to its stdout, so it works in a kernel as well."""
    import tempfile

    if a.tty:
        raise UsageError(NO_TERMINAL)
    with tempfile.TemporaryFile() as stdout, tempfile.TemporaryFile() as stderr:
        code = backend.exec(a.container, _exec_command(a), env=a.env, workdir=a.workdir,
                            user=a.user, stdin=subprocess.DEVNULL, stdout=stdout,
                            stderr=stderr)  # fmt: skip
        chunks = []
        for stream, f in (("stdout", stdout), ("stderr", stderr)):
            f.seek(0)
            chunks.append((stream, f.read().decode(errors="replace")))
    return RunOutput(chunks, RunResult(a.container, code))


@command("container", "exec", "Execute a command in a running container", top=["exec"],
         call=_exec_call)  # fmt: skip
@_args(*_EXEC_FLAGS)
def container_exec(backend: Backend, a: argparse.Namespace, out: IO[str]) -> int:
    command = _exec_command(a)
    out.flush()
    if a.tty:
        if a.interactive:
            tty.require_terminal(0)
        size = tty.console_size(1, 0)
        session = backend.exec_terminal(a.container, command, env=a.env, workdir=a.workdir,
                                        user=a.user, console_size=size)  # fmt: skip
        return _code(tty.interact(session, stdin=a.interactive, detach_keys=a.detach_keys))
    return backend.exec(a.container, command, env=a.env, workdir=a.workdir, user=a.user,
                        stdin=None if a.interactive else subprocess.DEVNULL,
                        stdout=None if out is sys.stdout else out)  # fmt: skip


def _ls_call(backend: Backend, a: argparse.Namespace) -> list[ContainerInfo]:
    return backend.containers(all=a.all, filters=a.filter)


@command("container", "ls", "List containers", aliases=["list", "ps"], top=["ps"],
         call=_ls_call)  # fmt: skip
@_args(arg("-a", "--all", action="store_true", help="show all containers (default: running)"),
       arg("-f", "--filter", action="append", default=[], metavar="KEY=VALUE",
           help="filter (id, name, status, label, ancestor, exited)"),
       arg("-q", "--quiet", action="store_true", help="only show container IDs"),
       NO_TRUNC, FORMAT)  # fmt: skip
def container_ls(backend: Backend, a: argparse.Namespace, out: IO[str]) -> int:
    rows = _ls_call(backend, a)
    if a.quiet:
        out.write("".join(f"{r.id if a.no_trunc else r.id[:12]}\n" for r in rows))
    elif a.format == "json":
        emit_json(rows, out)
    else:
        cells = [[r.id if a.no_trunc else r.id[:12], r.image, _cmd(r.command, a.no_trunc),
                  human_ago(r.created), r.status_text, r.name] for r in rows]  # fmt: skip
        cols = ["CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "NAMES"]
        out.write(table(cols, cells) + "\n")
    return 0


def _cmd(command: str, no_trunc: bool) -> str:
    text = f'"{command}"'
    return text if no_trunc or len(text) <= 22 else text[:20] + '…"'


@command("container", "prune", "Remove all stopped containers",
         call=lambda backend, a: backend.prune_containers())  # fmt: skip
@_args(arg("-f", "--force", action="store_true", help="do not prompt (ipydock never prompts)"))
def container_prune(backend: Backend, a: argparse.Namespace, out: IO[str]) -> int:
    result = backend.prune_containers()
    if result.deleted:
        out.write("Deleted Containers:\n" + "".join(f"{c}\n" for c in result.deleted) + "\n")
    out.write(f"Total reclaimed space: {human_size(result.space_reclaimed)}\n")
    return 0
