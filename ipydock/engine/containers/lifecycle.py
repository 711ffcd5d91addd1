"""Create, start, stop, kill, remove, wait: the lifecycle commands, as functions on a store.

::

    create ---store lock---> image, name, volumes, init dir --rename--> containers/<id>  created
    start  ---container lock: settle state---> supervisor (own session): forked by the warm
             helper (kernel), by the CLI itself, or else ``python -m ...supervisor``
             <--notify pipe-- started | failed (Docker's 125/126/127 errors)
    attach: follow <id>-json.log until the notify pipe says "exited" (the exit code)
    stop/kill ---ctl fifo "stop SIG T" / "kill SIG"---> supervisor; stop waits for its pidfd
    rm     ---store lock---> rename into tmp, delete; -v: its anonymous volumes too

Public functions take the store and lock what they change; they never hold a container's lock
while waiting for its supervisor (which needs it). :func:`refresh` settles the record of a
container whose supervisor was killed: its cgroup is emptied and removed, the state becomes
``exited`` (137, "supervisor died").
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import secrets
import select
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from ipydock.commands.runflags import MountSpec, parse_mounts
from ipydock.engine.containers.config import RunOptions, container_config
from ipydock.engine.containers.logs import read_entries
from ipydock.engine.containers.records import (
    Record,
    Records,
    supervisor_alive,
    unname_record,
    validate_name,
)
from ipydock.engine.containers.specconv import parse_signal
from ipydock.engine.containers.state import State, Status, transition
from ipydock.engine.runtime.detach import detach, python_env
from ipydock.engine.runtime.process import start_error
from ipydock.engine.store.fsutil import remove_tree
from ipydock.engine.store.layerview import LayerView
from ipydock.engine.volumes import Volumes
from ipydock.errors import (
    ContainerNotFound,
    ContainerNotRunning,
    ContainerRunning,
    InvalidMountSpec,
    InvalidStateTransition,
    NameInUse,
)
from ipydock.models import ContainerPrune, DiskUsage

if TYPE_CHECKING:
    from ipydock.engine.containers.terminal import Terminal
    from ipydock.engine.runtime.process import ForkServer
    from ipydock.engine.store import Store

__all__ = [
    "Attached",
    "create",
    "disk_usage",
    "hand_spare",
    "image_users",
    "kill",
    "prune",
    "records_of",
    "refresh",
    "remove",
    "retire_handed_spare",
    "use_zygote",
    "remove_record",
    "start",
    "stop",
    "volume_users",
    "wait",
]

#: What a spare of the fork-server helper runs for a container: its supervisor.
SUPERVISOR = "ipydock.engine.containers.supervisor:run_detached"
#: A spare supervisor's socket the command server handed to this process (its worker) for the
#: first container it starts (``cli/server.py``); used once.
_handed_spare: socket.socket | None = None


def hand_spare(sock: socket.socket) -> None:
    """Give this process a spare supervisor (a socket of ``ForkServer.take_spare``) for its
    next start without a fork server."""
    global _handed_spare
    _handed_spare = sock


class _HandedSpare:
    """A handed spare with :meth:`ForkServer.detached`'s signature, for one start."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    def detached(self, target: str, args: list[object], fds: list[int]) -> None:
        from ipydock.engine.runtime import protocol

        assert target == SUPERVISOR
        with self.sock:
            protocol.send(self.sock, {"args": args}, fds)


def retire_handed_spare() -> None:
    """Let an unused handed spare go and wait until it has undone what it prepared (a
    cgroup, a waiting pid 1): when this command's exit is reported, nothing of it is left."""
    global _handed_spare
    sock, _handed_spare = _handed_spare, None
    if sock is not None:
        with sock, contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_WR)
            sock.recv(1)


#: A warm process that forks detached supervisors (``supervisor.zygote``): the command
#: server's, set in its workers by :func:`use_zygote`; None: the caller forks them itself.
_zygote: socket.socket | None = None


def use_zygote(sock: socket.socket) -> None:
    """Start detached supervisors through the zygote on ``sock`` (a SOCK_SEQPACKET socket)."""
    global _zygote
    _zygote = sock


def _take_handed_spare() -> _HandedSpare | None:
    global _handed_spare
    sock, _handed_spare = _handed_spare, None
    return _HandedSpare(sock) if sock is not None else None


_HOSTS = (
    "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\n"
    "ff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n"
)
_ADJECTIVES = (
    "brave",
    "calm",
    "eager",
    "fancy",
    "gentle",
    "happy",
    "jolly",
    "keen",
    "lucid",
    "merry",
    "nifty",
    "quirky",
    "serene",
    "tender",
    "vivid",
    "witty",
    "zealous",
)
_NAMES = ("babbage", "curie", "darwin", "euler", "fermat", "gauss", "hopper", "hypatia",
          "lovelace", "noether", "pascal", "ritchie", "shannon", "turing", "wozniak")  # fmt: skip


def records_of(store: Store) -> Records:
    return Records(store.root, store.tmp_dir)


# -- create ------------------------------------------------------------------------------------


def create(store: Store, opts: RunOptions) -> Record:
    """Make a container from ``opts`` (state ``created``); volumes are made and seeded here."""
    if os.geteuid() != 0 and (opts.memory or opts.pids_limit or opts.cpus):
        import warnings

        from ipydock.errors import IPyDockWarning

        text = ("rootless mode: this user owns no cgroup here, so --memory, --pids-limit and "
                "--cpus are not applied (run as root to limit the container)")  # fmt: skip
        warnings.warn(IPyDockWarning(text), stacklevel=2)
    mounts = parse_mounts(opts.volumes, opts.mounts)
    for m in mounts:
        if m.type == "bind" and not os.path.exists(m.source):
            raise InvalidMountSpec(m.source, f"bind source path does not exist: {m.source}")
    records = records_of(store)
    with store.lock:
        image = store.resolve(opts.image)
        image_config = store.config(image)
        cid = secrets.token_hex(32)
        name = validate_name(opts.name) if opts.name else _free_name(records)
        owner = records.name_owner(name)
        if owner:
            raise NameInUse(name, owner)
        created = datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")
        config = container_config(cid, name, image.id, opts.image, image_config, opts, created)
        snapshots = [store.layers.snapshot(layer.chain_id) for layer in store.layer_chain(image)]
        lower = store.layers.driver.lower_dirs(snapshots) if snapshots else []
        anonymous = [MountSpec("volume", os.path.normpath(t))
                     for t in sorted(config["Config"]["Volumes"] or {})
                     if os.path.normpath(t) not in {m.target for m in mounts}]  # fmt: skip
        volumes = Volumes(store.root, store.tmp_dir)
        config["Mounts"] = [
            _resolve_mount(volumes, m, LayerView(lower)) for m in [*mounts, *anonymous]
        ]
        init = records.init_layer(_init_paths(config))
        config["GraphDriver"] = {
            "Name": _graph_driver(store.layers.driver.name),
            "Data": {"LowerDirs": [*lower, init], "UpperDir": os.path.join(records.dir, cid,
                     "upper"), "WorkDir": os.path.join(records.dir, cid, "work")},
        }  # fmt: skip
        return records.create(cid, config, _etc_files(config), durable=not opts.auto_remove)


def _graph_driver(driver: str) -> str:
    """The name a container records for its root: overlay (the kernel's, also on a root vfs
    store: its one lower dir), fuse-overlayfs, or vfs for an ordinary user's vfs store (the
    kernel would not mount overlayfs there: the root is a copy, see supervisor.py)."""
    if driver == "vfs" and os.geteuid() != 0:
        return "vfs"
    return "fuse-overlayfs" if driver == "fuse-overlayfs" else "overlay"


def _free_name(records: Records) -> str:
    taken = {r.name for r in records.all()}
    while True:
        name = f"{secrets.choice(_ADJECTIVES)}_{secrets.choice(_NAMES)}"
        if name not in taken:
            return name


def _resolve_mount(volumes: Volumes, m: MountSpec, image: LayerView) -> dict[str, Any]:
    """A mount as inspect shows it; a new (empty) volume is seeded from the image's files."""
    if m.type != "volume":
        return {"Type": m.type, "Source": m.source, "Destination": m.target, "RW": not m.readonly,
                "Options": list(m.options)}  # fmt: skip
    vol = volumes.create(m.source or None, anonymous=not m.source)
    if volumes.is_empty(vol.name) and image.exists(m.target):
        _seed(image, m.target, vol.mountpoint)
    return {"Type": "volume", "Name": vol.name, "Source": vol.mountpoint,
            "Destination": m.target, "RW": not m.readonly, "Anonymous": not m.source}  # fmt: skip


def _seed(image: LayerView, target: str, data: str) -> None:
    """Copy the image's content at ``target`` into the empty volume dir ``data``, as docker."""
    for name in image.listdir(target):
        image.copy_out(f"{target}/{name}", os.path.join(data, name))


def _etc_files(config: dict[str, Any]) -> dict[str, str]:
    hostname = config["Config"]["Hostname"]
    host_net = config["HostConfig"]["NetworkMode"] == "host"
    hosts = _read("/etc/hosts") if host_net else _HOSTS + f"{_own_address()}\t{hostname}\n"
    return {"hostname": hostname + "\n", "hosts": hosts, "resolv.conf": _read("/etc/resolv.conf")}


def _own_address() -> str:
    return "127.0.1.1"  # network none: no address of its own; bridges will set the real one


def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def _init_paths(config: dict[str, Any]) -> list[tuple[str, str]]:
    """The init layer (as Docker's ``-init``): mount points that must not show in diff/commit."""
    paths = [("proc", "dir"), ("sys", "dir"), ("dev", "dir"), ("etc/hostname", "file"),
             ("etc/hosts", "file"), ("etc/resolv.conf", "file")]  # fmt: skip
    for m in config["Mounts"]:
        kind = "dir" if m["Type"] != "bind" or os.path.isdir(m["Source"]) else "file"
        paths.append((m["Destination"].lstrip("/"), kind))
    if config["HostConfig"].get("Init"):  # --init: where the init is bound
        paths.append(("sbin/docker-init", "file"))
    return paths


# -- state -------------------------------------------------------------------------------------


def refresh(records: Records, rec: Record) -> State:
    """The container's state, settled if its supervisor died (cgroup removed, ``exited``)."""
    state = records.read_state(rec)
    if not state.is_active or supervisor_alive(state):
        return state
    with records.locked(rec):
        state = records.read_state(rec)
        if state.is_active and not supervisor_alive(state):
            _remove_cgroup(state.cgroup)
            transition(rec.id, state, Status.EXITED)
            state.exit_code = 137
            state.error = "the container's supervisor died; the container was killed with it"
            state.pid = state.supervisor_pid = state.supervisor_start = 0
            state.cgroup = []
            records.write_state(rec, state)
    return state


def _remove_cgroup(dirs: list[str]) -> None:
    from ipydock.engine.runtime import cgroups

    if dirs:
        cgroups.Cgroup("", cgroups.detect(), tuple(("?", d) for d in dirs)).remove()


def image_users(store: Store, image_id: str) -> list[tuple[str, bool]]:
    """(container id, running) of every container of ``image_id``: the store's rm/prune hook."""
    records = records_of(store)
    return [(r.id, refresh(records, r).is_active) for r in records.all()
            if r.config["Image"] == image_id]  # fmt: skip


def volume_users(store: Store, name: str) -> list[tuple[str, bool]]:
    records = records_of(store)
    return [(r.id, refresh(records, r).is_active) for r in records.all()
            if any(m.get("Name") == name for m in r.config.get("Mounts", []))]  # fmt: skip


# -- start and attach --------------------------------------------------------------------------


@dataclass
class Attached:
    """A started container seen by its starter: the notify pipe and (attached) its log."""

    record: Record
    pid: int
    notify: Any  # file object of the notify pipe
    log_fd: int = -1
    _exit: dict[str, Any] | None = None
    #: A terminal container started attached: its terminal (``terminal.py``), not its log.
    terminal: Terminal | None = None

    def _done(self) -> bool:
        if self._exit is None and select.select([self.notify], [], [], 0)[0]:
            line = self.notify.readline()
            self._exit = json.loads(line) if line else {"event": "lost"}
        return self._exit is not None

    def output(self) -> Iterator[tuple[str, str, str]]:
        """(stream, text, time) until the container exits (its last run, with restarts)."""
        yield from read_entries(
            self.log_fd, follow=True, done=self._done, watch=self.record.log_path,
            wake=(self.notify.fileno(),),
        )  # fmt: skip

    def wait(self, records: Records) -> int:
        """The exit code (from the supervisor; from the record if the supervisor died)."""
        while not self._done():
            select.select([self.notify], [], [])
        self.notify.read()  # EOF: the supervisor has exited (and removed a --rm container)
        self.close()
        if self._exit and "exit_code" in self._exit:
            return int(self._exit["exit_code"])
        return refresh(records, self.record).exit_code

    def close(self) -> None:
        if self.log_fd >= 0:
            os.close(self.log_fd)
            self.log_fd = -1
        self.notify.close()


def start(
    store: Store, ref: str, *, attach: bool = False, stdin: Any = None,
    forkserver: ForkServer | None = None, console_size: tuple[int, int] = (0, 0),
) -> Attached | None:  # fmt: skip
    """Start a created or exited container under a new supervisor; None if already running.

    With a warm ``forkserver`` (a kernel's), the supervisor is forked from it (milliseconds);
    otherwise (the CLI) it is a new ``python -m`` process. A terminal container started with
    ``attach`` gets its terminal connected before pid 1 exists (``Attached.terminal``, of
    ``console_size`` rows and columns): nothing it shows first is missed.

    Raises CommandNotFound (127) etc. when pid 1 fails to start; the record keeps the error.
    """
    records = records_of(store)
    rec = records.find(ref)
    state = refresh(records, rec)
    if state.is_active:
        return None
    if state.status == Status.DEAD:
        raise InvalidStateTransition(rec.id, state.status.value, Status.RUNNING.value)
    tty = bool(rec.config["Config"].get("Tty"))
    starter = None
    if tty and attach:  # the supervisor's fd 0 (ttyhub.py): first message, the size
        starter, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        starter.send(b"size %d %d" % console_size)
        stdin = theirs
    elif tty:
        stdin = None
    null = None
    if attach and stdin is None and not tty:
        # attached without input: a -i container's stdin ends at once (detached, it gets an
        # open, empty one from its supervisor, as docker's)
        null = stdin = open(os.devnull, "rb")  # noqa: SIM115 - closed below
    log_fd = os.open(rec.log_path, os.O_RDONLY | os.O_CLOEXEC) if attach and not tty else -1
    if log_fd >= 0:
        os.lseek(log_fd, 0, os.SEEK_END)
    r, w = os.pipe2(os.O_CLOEXEC)
    zygote = not attach and forkserver is None and _zygote is not None
    launcher: ForkServer | _HandedSpare | None = forkserver or (
        None if zygote else _take_handed_spare()
    )
    try:
        if launcher is not None:
            stdin_fd = _fileno(stdin)
            launcher.detached(SUPERVISOR, [store.root, rec.id],
                                [w, *([] if stdin_fd is None else [stdin_fd])])  # fmt: skip
        elif zygote and _from_zygote(store.root, rec, w, stdin):
            pass
        else:
            _launch(store.root, rec, w, stdin)
    finally:
        os.close(w)
        if starter is not None or null is not None:
            stdin.close()
    notify = os.fdopen(r, "rb")
    line = notify.readline()
    message: dict[str, Any] = (
        json.loads(line)
        if line
        else {
            "event": "failed",
            "error": {
                "step": "supervisor",
                "detail": "the supervisor exited early (see supervisor.log)",
            },
        }
    )
    if message["event"] != "started":
        notify.read()  # EOF: the supervisor has exited (and removed a --rm container)
        notify.close()
        if log_fd >= 0:
            os.close(log_fd)
        if starter is not None:
            starter.close()
        raise start_error(message["error"], rec.config["Path"])
    attached = Attached(rec, int(message["pid"]), notify, log_fd)
    if starter is not None:
        from ipydock.engine.containers.terminal import Terminal

        attached.terminal = Terminal.from_socket(starter)
    if not attach:
        attached.close()
    return attached


def _fileno(stdin: Any) -> int | None:
    if stdin is None or stdin == subprocess.DEVNULL:
        return None
    return stdin if isinstance(stdin, int) else stdin.fileno()


def _from_zygote(root: str, rec: Record, notify_w: int, stdin: Any) -> bool:
    """A detached start's supervisor forked by the zygote: it stays small (see
    ``supervisor.zygote``); False if the zygote does not answer (then: fork it here)."""
    from ipydock.engine.runtime import protocol

    assert _zygote is not None
    umask = os.umask(0)
    os.umask(umask)
    stdin_fd = _fileno(stdin)
    message = {"args": [root, rec.id], "env": dict(os.environ), "umask": umask}
    try:
        protocol.send(_zygote, message, [notify_w, *([] if stdin_fd is None else [stdin_fd])])
    except OSError:
        return False
    return True


def _launch(root: str, rec: Record, notify_w: int, stdin: Any) -> None:
    """Start a detached supervisor without a warm helper (the CLI). A single-threaded caller
    forks itself (its imports are done: ~100 ms less than a new interpreter); a threaded one
    must not fork, so it starts ``python -m ...supervisor``."""
    import threading

    if threading.active_count() == 1:
        _fork_supervisor(root, rec.id, notify_w, _fileno(stdin))
        return
    env = python_env()
    with open(rec.path("supervisor.log"), "ab") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "ipydock.engine.containers.supervisor", root, rec.id,
             str(notify_w), *([] if stdin is not None else ["no-stdin"])],
            pass_fds=[notify_w], stdin=stdin if stdin is not None else subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=err, start_new_session=True, env=env,
        )  # fmt: skip
    proc.wait()  # it forks the real supervisor and exits: nothing for us to reap later


def _fork_supervisor(root: str, cid: str, notify_w: int, stdin_fd: int | None) -> None:
    """The supervisor detached (:func:`~ipydock.engine.runtime.detach.detach`): nobody's
    child here, it outlives us."""
    from ipydock.engine.containers import supervisor

    stdin = -1 if stdin_fd is None else stdin_fd
    detach(lambda: supervisor.run_detached(root, cid, notify_w, stdin))


# -- stop, kill, wait, rm ----------------------------------------------------------------------


def _supervisor_fd(state: State) -> int | None:
    """A pidfd of the live supervisor (pid *and* start time checked), or None."""
    try:
        fd = os.pidfd_open(state.supervisor_pid)
    except OSError:
        return None
    if not supervisor_alive(state):
        os.close(fd)
        return None
    return fd


def _tell(rec: Record, message: str) -> bool:
    """Write to the supervisor's ctl fifo; False if nobody reads it (no supervisor)."""
    try:
        fd = os.open(rec.path("ctl"), os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno in (errno.ENXIO, errno.ENOENT):
            return False
        raise
    try:
        os.write(fd, message.encode() + b"\n")
    finally:
        os.close(fd)
    return True


def _signal_and_wait(records: Records, rec: Record, message: str, timeout: float | None) -> State:
    state = refresh(records, rec)
    fd = _supervisor_fd(state) if state.supervisor_pid else None
    if fd is None:
        return refresh(records, rec)
    try:
        if _tell(rec, message):
            select.select([fd], [], [], timeout)
    finally:
        os.close(fd)
    return refresh(records, rec)


def stop(store: Store, ref: str, timeout: float | None = None) -> str:
    """Docker's stop: the stop signal, SIGKILL after ``timeout`` (default 10 s); waits."""
    records = records_of(store)
    rec = records.find(ref)
    if not refresh(records, rec).is_active:
        return rec.id
    cfg = rec.config["Config"]
    if timeout is None:
        timeout = cfg.get("StopTimeout") if cfg.get("StopTimeout") is not None else 10
    sig = parse_signal(cfg.get("StopSignal") or "SIGTERM")
    _signal_and_wait(records, rec, f"stop {sig} {timeout}", None)
    return rec.id


def kill(store: Store, ref: str, sig: str | int = "KILL", *, wait: bool = False) -> str:
    records = records_of(store)
    rec = records.find(ref)
    state = refresh(records, rec)
    if not state.is_active:
        raise ContainerNotRunning(rec.id)
    number = parse_signal(sig)
    if wait:
        _signal_and_wait(records, rec, f"kill {number}", None)
    else:
        _tell(rec, f"kill {number}")
    return rec.id


def wait(store: Store, ref: str) -> int:
    """Block until the container is not running; its exit code."""
    records = records_of(store)
    rec = records.find(ref)
    state = refresh(records, rec)
    fd = _supervisor_fd(state) if state.supervisor_pid else None
    if fd is not None:
        try:
            select.select([fd], [], [])
        finally:
            os.close(fd)
    return refresh(records, rec).exit_code


def remove(store: Store, ref: str, *, force: bool = False, volumes: bool = False) -> str:
    """``rm``: refused for a running container unless ``force`` (then SIGKILL, wait, remove)."""
    records = records_of(store)
    rec = records.find(ref)
    try:
        state = refresh(records, rec)
        if state.is_active or state.supervisor_pid:
            if not force and state.is_active:
                raise ContainerRunning(rec.id)
            _signal_and_wait(records, rec, f"kill {int(signal.SIGKILL)}", None)
        remove_record(store.root, rec, volumes=volumes, store=store)
    except ContainerNotFound:
        if not rec.config["HostConfig"].get("AutoRemove"):
            raise
        # --rm: its supervisor removed it on the way out, as docker's daemon would
    return rec.id


def remove_record(root: str, rec: Record, *, volumes: bool, store: Store | None = None) -> None:
    """Delete the container's files (and with ``volumes`` its anonymous volumes)."""
    remove_tree(unname_record(root, rec, volumes=volumes, lock=store.lock if store else None))


def prune(store: Store) -> ContainerPrune:
    """``container prune``: remove every container that is not running; the bytes their
    writable layers held."""
    from ipydock.engine.containers.views import list_containers
    from ipydock.engine.store.layertar import diff_size

    records = records_of(store)
    deleted, freed = [], 0
    for row in list_containers(store, all=True):
        if row.status in ("exited", "created", "dead"):
            freed += diff_size(records.find(row.id).path("upper"))
            remove(store, row.id)
            deleted.append(row.id)
    return ContainerPrune(deleted, freed)


def disk_usage(store: Store) -> list[DiskUsage]:
    """``system df``: images (shared layers once), containers' writable layers, volumes."""
    from ipydock.engine.containers.views import list_containers
    from ipydock.engine.store import check
    from ipydock.engine.store.layertar import diff_size

    records = records_of(store)
    sizes = {c.id: (c.status == "running", diff_size(records.find(c.id).path("upper")))
             for c in list_containers(store, all=True)}  # fmt: skip
    volumes = {v.name: (bool(volume_users(store, v.name)), diff_size(v.mountpoint))
               for v in Volumes(store.root, store.tmp_dir).list()}  # fmt: skip
    return [check.disk_usage(store), _usage("Containers", sizes),
            _usage("Local Volumes", volumes)]  # fmt: skip


def _usage(kind: str, items: dict[str, tuple[bool, int]]) -> DiskUsage:
    """A ``system df`` row from {name: (in use, bytes)}."""
    size = sum(b for _, b in items.values())
    in_use = sum(b for used, b in items.values() if used)
    return DiskUsage(kind, len(items), sum(used for used, _ in items.values()), size, size - in_use)
