"""Read-only views of containers: ls/ps rows, inspect, logs, top, diff.

::

    Records --refresh()--> State --+--> ContainerInfo (ls), ContainerDetail (inspect)
    <id>-json.log -----------------+--> logs (tail, follow until the supervisor exits)
    cgroup procs -> /proc/PID ------+--> top rows (UID PID PPID CMD)
    upper dir vs lower dirs --------+--> diff: ("A"|"C"|"D", path), docker's order
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
from collections.abc import Iterator, Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from ipydock.engine.containers.lifecycle import _supervisor_fd, records_of, refresh
from ipydock.engine.containers.logs import read_entries
from ipydock.engine.containers.records import Record
from ipydock.engine.containers.state import State, Status
from ipydock.engine.store.layerfmt import marker
from ipydock.engine.store.layerview import LayerView
from ipydock.errors import ContainerNotRunning, UsageError
from ipydock.models import ContainerDetail, ContainerInfo, PortBinding
from ipydock.units import human_duration

if TYPE_CHECKING:
    from ipydock.engine.store import Store

__all__ = ["diff", "info", "inspect", "list_containers", "logs", "top"]


def _parse_time(text: str) -> datetime | None:
    if not text:
        return None
    return datetime.fromisoformat(text[:26].rstrip("Z") + "+00:00")


def status_text(state: State, now: datetime | None = None) -> str:
    """Docker's STATUS column: ``Up 2 seconds``, ``Exited (0) 3 minutes ago``, ``Created``."""
    now = now or datetime.now(timezone.utc)
    if state.status in (Status.RUNNING, Status.PAUSED):
        since = _parse_time(state.started_at) or now
        paused = " (Paused)" if state.status == Status.PAUSED else ""
        return f"Up {human_duration((now - since).total_seconds())}{paused}"
    if state.status == Status.RESTARTING:
        return f"Restarting ({state.exit_code})"
    if state.status == Status.EXITED:
        ended = _parse_time(state.finished_at) or now
        return f"Exited ({state.exit_code}) {human_duration((now - ended).total_seconds())} ago"
    return state.status.value.capitalize()


def info(rec: Record, state: State) -> ContainerInfo:
    cfg = rec.config
    return ContainerInfo(
        id=rec.id,
        name=rec.name,
        image=cfg["Config"]["Image"],
        image_id=cfg["Image"],
        command=" ".join([cfg["Path"], *cfg["Args"]]),
        created=_parse_time(cfg["Created"]) or datetime.now(timezone.utc),
        status=state.status.value,
        status_text=status_text(state),
        exit_code=state.exit_code,
        pid=state.pid,
        labels=cfg["Config"].get("Labels") or {},
        ports=_published(rec) if state.is_active and cfg["HostConfig"].get("PortBindings") else [],
    )


def _published(rec: Record) -> list[PortBinding]:
    """The ports its proxy bound (``ports.json``, written at start)."""
    try:
        with open(rec.path("ports.json")) as f:
            return [PortBinding(**b) for b in json.load(f)]
    except (OSError, ValueError, TypeError):
        return []


def list_containers(
    store: Store, *, all: bool = False, filters: Sequence[str] = ()
) -> list[ContainerInfo]:
    """``ps``: running containers (``all``: every one), newest first, filtered as docker."""
    records = records_of(store)
    rows = [info(r, refresh(records, r)) for r in records.all()]
    wanted = _filters(filters)
    rows = [r for r in rows if (all or r.status in ("running", "paused", "restarting")
            or "status" in wanted) and _match(r, wanted)]  # fmt: skip
    return sorted(rows, key=lambda r: r.created, reverse=True)


def _filters(filters: Sequence[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for item in filters:
        key, eq, value = item.partition("=")
        if not eq or key not in ("id", "name", "status", "label", "ancestor", "exited"):
            raise UsageError(f"invalid filter {item!r} (id, name, status, label, ancestor, exited)")
        out.setdefault(key, []).append(value)
    return out


def _match(row: ContainerInfo, wanted: dict[str, list[str]]) -> bool:
    checks = {
        "id": lambda v: row.id.startswith(v),
        "name": lambda v: v in row.name,
        "status": lambda v: row.status == v,
        "exited": lambda v: row.status == "exited" and str(row.exit_code) == v,
        "ancestor": lambda v: v in (row.image, row.image_id) or row.image_id[7:].startswith(v),
        "label": lambda v: _label(row.labels, v),
    }
    return all(any(checks[k](v) for v in values) for k, values in wanted.items())


def _label(labels: dict[str, str], want: str) -> bool:
    key, eq, value = want.partition("=")
    return key in labels and (not eq or labels[key] == value)


def inspect(store: Store, ref: str) -> ContainerDetail:
    records = records_of(store)
    rec = records.find(ref)
    state = refresh(records, rec)
    cfg = rec.config
    docker_state = {
        "Status": state.status.value,
        "Running": state.status in (Status.RUNNING, Status.PAUSED),
        "Paused": state.status == Status.PAUSED,
        "Restarting": state.status == Status.RESTARTING,
        "OOMKilled": state.oom_killed,
        "Dead": state.status == Status.DEAD,
        "Pid": state.pid,
        "ExitCode": state.exit_code,
        "Error": state.error,
        "StartedAt": state.started_at or "0001-01-01T00:00:00Z",
        "FinishedAt": state.finished_at or "0001-01-01T00:00:00Z",
    }
    return ContainerDetail(
        id=rec.id,
        name=cfg["Name"],
        image=cfg["Image"],
        created=_parse_time(cfg["Created"]) or datetime.now(timezone.utc),
        path=cfg["Path"],
        args=list(cfg["Args"]),
        state=docker_state,
        config=cfg["Config"],
        host_config=cfg["HostConfig"],
        mounts=cfg.get("Mounts", []),
        log_path=rec.log_path,
        restart_count=state.restart_count,
    )


def logs(
    store: Store, ref: str, *, follow: bool = False, tail: int | None = None
) -> Iterator[tuple[str, str, str]]:
    """(stream, text, time) entries; ``follow`` waits for more until the supervisor exits."""
    records = records_of(store)
    rec = records.find(ref)
    state = refresh(records, rec)
    fd = os.open(rec.log_path, os.O_RDONLY | os.O_CLOEXEC)
    sup = _supervisor_fd(state) if follow and state.supervisor_pid else None
    try:
        if sup is None:
            yield from read_entries(fd, tail=tail)
            return

        def done() -> bool:
            import select

            return bool(select.select([sup], [], [], 0)[0])

        yield from read_entries(fd, tail=tail, follow=True, done=done, watch=rec.log_path,
                                wake=(sup,))  # fmt: skip
    finally:
        os.close(fd)
        if sup is not None:
            os.close(sup)


def top(store: Store, ref: str) -> tuple[list[str], list[list[str]]]:
    """``top``: the container's processes (from its cgroup) as ``ps -ef`` columns."""
    records = records_of(store)
    rec = records.find(ref)
    state = refresh(records, rec)
    if state.status != Status.RUNNING:
        raise ContainerNotRunning(rec.id)
    pids: set[int] = set() if state.cgroup else _pid_namespace_members(state.pid)
    for d in state.cgroup:
        try:
            with open(os.path.join(d, "cgroup.procs")) as f:
                pids.update(int(x) for x in f.read().split())
        except FileNotFoundError:
            continue
    rows = []
    for pid in sorted(pids):
        row = _ps_row(pid)
        if row:
            rows.append(row)
    return ["UID", "PID", "PPID", "CMD"], rows


def _pid_namespace_members(pid1: int) -> set[int]:
    """Host pids of the processes in ``pid1``'s pid namespace (a container with no cgroup)."""
    try:
        ns = os.readlink(f"/proc/{pid1}/ns/pid")
    except OSError:
        return set()
    found = set()
    for name in os.listdir("/proc"):
        if name.isdigit():
            with contextlib.suppress(OSError):
                if os.readlink(f"/proc/{name}/ns/pid") == ns:
                    found.add(int(name))
    return found


def _ps_row(pid: int) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            fields = dict(line.split(":\t", 1) for line in f.read().splitlines() if ":\t" in line)
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmd = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except (FileNotFoundError, ProcessLookupError):
        return None
    uid = fields["Uid"].split()[0]
    return [uid, str(pid), fields["PPid"].strip(), cmd or f"[{fields['Name'].strip()}]"]


# -- diff --------------------------------------------------------------------------------------


def diff(store: Store, ref: str) -> list[tuple[str, str]]:
    """The writable layer's changes: ``A`` added, ``C`` changed, ``D`` deleted, sorted by path."""
    rec = records_of(store).find(ref)
    tracked(rec, "container diff")
    lower_dirs = rec.config["GraphDriver"]["Data"]["LowerDirs"]
    try:
        return upper_changes(rec.path("upper"), lower_dirs)
    except PermissionError:  # rootless with id ranges: a dir of another owner (apt's partial/)
        from ipydock.engine.store import userns

        if not userns.delegates():
            raise
        found = userns.call("ipydock.engine.containers.views:upper_changes", rec.path("upper"),
                            lower_dirs)  # fmt: skip
        return [(kind, path) for kind, path in found]


def tracked(rec: Record, operation: str) -> None:
    """Refuse ``diff``/``commit`` of a container whose root is a plain copy (PRoot mode, an
    ordinary user's vfs store): its changes are not kept apart from the image's files."""
    copied = rec.config["GraphDriver"]["Name"] == "vfs" or os.path.exists(rec.path("proot"))
    if copied:
        from ipydock.errors import NotSupported

        raise NotSupported(operation, "bundled", "this container's root is a copy of its image "
                           "(PRoot mode, or the vfs driver without overlayfs), so its changes "
                           "are not tracked; install fuse-overlayfs for a new store, or use "
                           "cp or a volume to get files out")  # fmt: skip


def upper_changes(upper: str, lower_dirs: list[str]) -> list[tuple[str, str]]:
    """The changes of overlay upper dir ``upper`` over ``lower_dirs``, sorted by path."""
    out: list[tuple[str, str]] = []
    _diff_dir(upper, "", LayerView(lower_dirs), out)
    return sorted(out, key=lambda c: c[1])


def _diff_dir(upper: str, rel: str, lower: LayerView, out: list[tuple[str, str]]) -> None:
    base = os.path.join(upper, rel)
    for name in sorted(os.listdir(base)):
        child = f"{rel}/{name}" if rel else name
        st = os.lstat(os.path.join(base, name))
        mark = marker(name, st)
        if mark is not None:  # a whiteout (overlayfs's or fuse-overlayfs's), or an opaque mark
            if mark[0] == "whiteout":
                out.append(("D", "/" + (f"{rel}/{mark[1]}" if rel else mark[1])))
            continue
        existed = lower.exists(child)
        out.append(("C" if existed else "A", "/" + child))
        if stat.S_ISDIR(st.st_mode):
            if existed:
                _diff_dir(upper, child, lower, out)
            else:
                _added(upper, child, out)


def _added(upper: str, rel: str, out: list[tuple[str, str]]) -> None:
    for dirpath, dirs, names in os.walk(os.path.join(upper, rel), onerror=_raise):
        for n in dirs + names:
            out.append(("A", "/" + os.path.relpath(os.path.join(dirpath, n), upper)))


def _raise(error: OSError) -> None:
    raise error  # a directory it cannot read: not silently left out


def _unused(_: Any) -> None:  # pragma: no cover - keeps Any imported for type comments
    return None
