"""Container records on disk: one directory per container, found by ID, ID prefix or name.

::

    ROOT/containers/<id>/
      config.json        Docker-like: Id, Name, Image, Created, Config, HostConfig, Mounts
      state.json         see state.py; replaced atomically, under ``lock``
      lock               flock: one writer of this container's state at a time
      upper/ work/       the writable layer (overlayfs upper and work dirs)
      merged/            where pid 1 mounts its root (inside its own mount namespace)
      hostname hosts resolv.conf
      <id>-json.log      stdout/stderr, Docker's json-file format
    ROOT/init/<key>/     an init layer (mount points), shared by the containers that need it

A container is made in ``ROOT/tmp`` and renamed into place (the commit point), and removed by
renaming it back into ``ROOT/tmp`` first, so a crash never leaves half a container that looks
whole. Creating and removing also hold the store lock (names are unique, images in use).

Locking order: store lock, then container lock. A waiter on a container's lock re-checks that
the container still exists once it holds the lock.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ipydock.engine.containers.state import State, Status
from ipydock.engine.store.fsutil import atomic_write_json, owned_name, remove_tree
from ipydock.errors import ContainerNotFound, UsageError

__all__ = [
    "ACTIVE",
    "Record",
    "Records",
    "process_start",
    "read_small",
    "supervisor_alive",
    "unname_record",
    "validate_name",
]

_NAME = re.compile(r"^/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$")


@dataclass(frozen=True)
class Record:
    """One container's directory and its (immutable) config."""

    id: str
    dir: str
    config: dict[str, Any]

    @property
    def name(self) -> str:
        return str(self.config["Name"]).lstrip("/")

    def path(self, *parts: str) -> str:
        return os.path.join(self.dir, *parts)

    @property
    def log_path(self) -> str:
        return self.path(f"{self.id}-json.log")


class Records:
    """The containers of one store root."""

    def __init__(self, root: str, tmp_dir: str) -> None:
        self.dir = os.path.join(root, "containers")
        self.init_dir = os.path.join(root, "init")
        self.tmp_dir = tmp_dir
        os.makedirs(self.dir, exist_ok=True)

    # -- finding -----------------------------------------------------------------------------

    def ids(self) -> list[str]:
        return sorted(n for n in os.listdir(self.dir) if not n.startswith("."))

    def load(self, container_id: str) -> Record:
        path = os.path.join(self.dir, container_id)
        try:
            config = json.loads(read_small(path + "/config.json"))
        except (FileNotFoundError, NotADirectoryError, ValueError) as exc:
            raise ContainerNotFound(container_id) from exc  # ValueError: torn, never durable
        return Record(container_id, path, config)

    def all(self) -> list[Record]:
        out = []
        for cid in self.ids():
            with contextlib.suppress(ContainerNotFound):  # removed meanwhile
                out.append(self.load(cid))
        return out

    def find(self, ref: str) -> Record:
        """By full ID, exact name, then unique ID prefix, as docker does."""
        if not ref:
            raise ContainerNotFound(ref)
        if os.path.isdir(os.path.join(self.dir, ref)) and len(ref) == 64:
            return self.load(ref)
        records = self.all()
        for rec in records:
            if rec.name == ref.lstrip("/"):
                return rec
        found = [r for r in records if r.id.startswith(ref)]
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            raise UsageError(f"container ID prefix {ref!r} is ambiguous; use more digits")
        raise ContainerNotFound(ref)

    def name_owner(self, name: str) -> str | None:
        for rec in self.all():
            if rec.name == name:
                return rec.id
        return None

    # -- writing -----------------------------------------------------------------------------

    def create(
        self, container_id: str, config: dict[str, Any], files: dict[str, str], *,
        durable: bool = True,
    ) -> Record:  # fmt: skip
        """Lay out a new container (dirs, config, created state, ``files``); the caller holds
        the store lock. The rename into ``containers/`` is the commit point.

        Not ``durable`` (a ``--rm`` container, which dies with its run): no fsync of config and
        state; after a power loss such a record may be torn, and :meth:`all` skips it."""
        tmp = os.path.join(self.tmp_dir, owned_name(f"container-{container_id}-"))
        os.makedirs(tmp)
        try:
            for sub in ("upper", "work", "merged"):
                os.mkdir(os.path.join(tmp, sub))
            for name, text in {**files, f"{container_id}-json.log": ""}.items():
                with open(os.path.join(tmp, name), "w") as f:
                    f.write(text)
            os.mkfifo(os.path.join(tmp, "ctl"), 0o600)
            for name, obj in (("state.json", State().to_dict()), ("config.json", config)):
                if durable:
                    atomic_write_json(os.path.join(tmp, name), obj, self.tmp_dir)
                else:
                    with open(os.path.join(tmp, name), "w") as f:
                        json.dump(obj, f, separators=(",", ":"))
            final = os.path.join(self.dir, container_id)
            os.rename(tmp, final)
        except BaseException:
            remove_tree(tmp)
            raise
        return Record(container_id, final, config)

    def init_layer(self, paths: list[tuple[str, str]]) -> str:
        """The init layer (as Docker's ``-init``) with ``paths``' empty dirs and files: made
        once under ``ROOT/init/`` and shared by every container with the same paths
        (it never changes), so a start creates and a removal deletes a few files less."""
        key = hashlib.sha256(json.dumps(sorted(paths)).encode()).hexdigest()[:16]
        final = os.path.join(self.init_dir, key)
        if os.path.isdir(final):
            return final
        tmp = os.path.join(self.tmp_dir, owned_name("init-"))
        try:
            os.makedirs(tmp)
            for rel, kind in paths:
                path = os.path.join(tmp, rel)
                os.makedirs(path if kind == "dir" else os.path.dirname(path), 0o755, exist_ok=True)
                if kind != "dir" and not os.path.exists(path):
                    open(path, "w").close()
            os.makedirs(os.path.dirname(final), exist_ok=True)
            try:
                os.rename(tmp, final)
            except OSError as exc:  # made by another meanwhile: the same
                if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                    raise
        finally:
            remove_tree(tmp)
        return final

    def remove(self, rec: Record) -> None:
        """Unname the container (atomic rename into tmp), then delete its files."""
        remove_tree(self.unname(rec))

    def unname(self, rec: Record) -> str:
        """Rename the container into tmp (no longer found, its name free); the caller holds
        the store lock and deletes the returned path, possibly later (outside the lock)."""
        doomed = os.path.join(self.tmp_dir, owned_name(f"gone-container-{rec.id}-"))
        with contextlib.suppress(FileNotFoundError):
            os.rename(rec.dir, doomed)
        return doomed

    # -- state -------------------------------------------------------------------------------

    @contextlib.contextmanager
    def locked(self, rec: Record) -> Iterator[None]:
        """Hold the container's lock; raises ContainerNotFound if it was removed meanwhile."""
        try:
            fd = os.open(rec.path("lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except FileNotFoundError as exc:
            raise ContainerNotFound(rec.id) from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            if not os.path.exists(rec.path("config.json")):
                raise ContainerNotFound(rec.id)
            yield
        finally:
            os.close(fd)

    def read_state(self, rec: Record) -> State:
        try:
            return State.from_dict(json.loads(read_small(rec.dir + "/state.json")))
        except FileNotFoundError as exc:
            raise ContainerNotFound(rec.id) from exc

    def write_state(self, rec: Record, state: State) -> None:
        """Replace state.json atomically (temp file + rename), without fsync: readers and a
        crashed writer see a whole old or new state, and after a power loss every container
        is stopped anyway (``refresh`` settles it), so durability would only cost start time.
        """
        tmp = rec.path(f".state-{os.getpid()}.tmp")
        data = json.dumps(state.to_dict(), separators=(",", ":")).encode()  # dump(): in Python
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o666)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
        finally:
            os.close(fd)
        os.rename(tmp, rec.path("state.json"))


def unname_record(root: str, rec: Record, *, volumes: bool, lock: Any = None) -> str:
    """Under the store lock (``lock``, else one on ``ROOT/lock``): unname the container and,
    with ``volumes``, remove its anonymous volumes. Returns the renamed dir for the caller
    to delete: a supervisor of a ``--rm`` container lets its starter go on first."""
    from ipydock.engine.store.lock import StoreLock

    tmp = os.path.join(root, "tmp")
    with lock if lock is not None else StoreLock(os.path.join(root, "lock")):
        doomed = Records(root, tmp).unname(rec)
        anonymous = [m["Name"] for m in rec.config.get("Mounts", []) if m.get("Anonymous")]
        if volumes and anonymous:
            from ipydock.engine.volumes import Volumes  # imports models: only when needed

            vols = Volumes(root, tmp)
            for name in anonymous:
                with contextlib.suppress(Exception):
                    vols.remove(name, lambda _name: [])
    return doomed


def validate_name(name: str) -> str:
    if not _NAME.match(name):
        raise UsageError(
            f"Invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
        )
    return name.lstrip("/")


def read_small(path: str) -> bytes:
    """A small file's bytes: ``ls`` reads two per container, and ``open()``'s buffered file
    object costs more than the reading (``os.read`` until EOF)."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        data = os.read(fd, 65536)
        if len(data) < 65536:
            return data
        chunks = [data]
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def _stat_fields(pid: int) -> list[bytes] | None:
    """The fields of ``/proc/PID/stat`` after the command name (state first), or None."""
    try:
        data = read_small(f"/proc/{pid}/stat")
    except (FileNotFoundError, ProcessLookupError):
        return None
    return data[data.rindex(b")") + 2 :].split()


def process_start(pid: int) -> int | None:
    """The start time of ``pid`` (clock ticks since boot), or None if it does not exist."""
    fields = _stat_fields(pid)
    return None if fields is None else int(fields[19])


def supervisor_alive(state: State) -> bool:
    """The recorded supervisor still runs (same pid *and* start time: not a recycled pid, not
    a zombie); one read of its ``stat``."""
    if not state.supervisor_pid:
        return False
    fields = _stat_fields(state.supervisor_pid)
    return fields is not None and int(fields[19]) == state.supervisor_start and fields[0] != b"Z"


#: The statuses whose owner must be alive; anything else is settled.
ACTIVE = (Status.RUNNING, Status.PAUSED, Status.RESTARTING)
