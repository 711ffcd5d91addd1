"""One cgroup per container: limits, device rules, OOM-kill detection, removal; v1 and v2.

::

    v2 (unified):  /sys/fs/cgroup/ipydock/<id>/{memory.max,pids.max,cpu.max,memory.events}
                   + an eBPF device filter attached to the dir (devfilter.py)
    v1 (legacy):   /sys/fs/cgroup/{memory,pids,cpu,devices}/ipydock/<id>/{memory.limit_in_bytes,
                   devices.deny, devices.allow, ...}: only the hierarchies a limit needs

:func:`detect` picks the version from the mount table (a hybrid host whose controllers sit on
v1 mounts, like this project's CI, counts as v1). The container joins by writing ``0`` to every
``cgroup.procs`` of :meth:`Cgroup.procs_files` before it execs (see ``spawn``), so its first
instruction already runs under the limits. :meth:`Cgroup.remove` kills stragglers (there are
none once pid 1 is reaped: the kernel empties a pid namespace first) and removes the dirs.
"""

from __future__ import annotations

import contextlib
import errno
import os
import select
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

from ipydock.engine.runtime import devfilter
from ipydock.engine.runtime.spec import DOCKER_DEVICE_RULES as DEFAULT_DEVICE_RULES
from ipydock.engine.runtime.spec import DeviceRule, Resources
from ipydock.errors import CgroupError

__all__ = [
    "CGROUP_ROOT", "Cgroup", "adopt", "create", "create_spare", "detect", "remove_parent",
    "v1_mounts",
]  # fmt: skip

CGROUP_ROOT = "/sys/fs/cgroup"
_V1_CONTROLLERS = ("memory", "pids", "cpu", "devices")
_CPU_PERIOD = 100_000


def v1_mounts(mountinfo: str = "/proc/self/mounts") -> dict[str, str]:
    """Controller -> mount point of each v1 hierarchy that carries one we use."""
    found: dict[str, str] = {}
    with open(mountinfo) as f:
        for line in f:
            _src, target, fstype, options, *_ = line.split()
            if fstype != "cgroup":
                continue
            for option in options.split(","):
                if option in _V1_CONTROLLERS:
                    found.setdefault(option, target)
    return found


def detect() -> Literal["v1", "v2"]:
    """``v2`` on a unified host, else ``v1`` (also for hybrid hosts)."""
    if os.path.exists(os.path.join(CGROUP_ROOT, "cgroup.controllers")):
        return "v2"
    return "v1"


@dataclass(frozen=True)
class Cgroup:
    """The directories of one container's cgroup (one per v1 controller, or one on v2)."""

    name: str
    version: Literal["v1", "v2"]
    #: (controller, directory) pairs; v2 has one pair, ``("unified", dir)``.
    placed: tuple[tuple[str, str], ...]

    @property
    def dirs(self) -> tuple[str, ...]:
        return tuple(path for _controller, path in self.placed)

    def procs_files(self) -> tuple[str, ...]:
        return tuple(os.path.join(d, "cgroup.procs") for d in self.dirs)

    def oom_killed(self) -> bool:
        """True once the kernel's OOM killer has killed a process of this cgroup."""
        if self.version == "v2":
            return _counter(os.path.join(self.dirs[0], "memory.events"), "oom_kill") > 0
        memory = self._v1_dir("memory")
        return memory is not None and _counter(f"{memory}/memory.oom_control", "oom_kill") > 0

    def pids(self) -> list[int]:
        found: set[int] = set()
        for path in self.procs_files():
            with contextlib.suppress(FileNotFoundError), open(path) as f:
                found.update(int(line) for line in f if line.strip())
        return sorted(found)

    def remove(self) -> None:
        """Kill what is left inside, then remove the directories; idempotent."""
        _kill_and_wait(self.pids())
        for path in reversed(self.dirs):
            try:
                os.rmdir(path)
            except FileNotFoundError:
                pass
            except OSError as exc:
                raise CgroupError(path, f"cannot remove: {exc.strerror}") from exc

    def _v1_dir(self, controller: str) -> str | None:
        return dict(self.placed).get(controller)


def create(name: str, resources: Resources) -> Cgroup:
    """Make the cgroup ``name`` (e.g. ``ipydock/<id>``) and write the limits of ``resources``.

    Device rules are enforced before anything joins: on v1 by the ``devices`` controller
    (``devices.deny`` then each ``devices.allow``), on v2 by an eBPF program attached to the
    directory. A host where neither exists is refused rather than run unguarded.
    """
    v2 = detect() == "v2"
    cgroup = _create_v2(name) if v2 else _create_v1(name, _v1_controllers(resources))
    try:
        for path, value in _limit_files(cgroup, resources):
            _write(path, value)
        if resources.devices is not None:
            _restrict_devices(cgroup, resources.devices)
    except BaseException:
        cgroup.remove()
        raise
    return cgroup


def create_spare(name: str) -> Cgroup:
    """A v1 cgroup made ahead of need (a spare supervisor's, see ``spawn.Prepared``): every
    hierarchy ipydock uses, with docker's default device rules; :func:`adopt` gives it to a
    container. v2 hosts are not prepared this way (CgroupError)."""
    if detect() == "v2":
        raise CgroupError(name, "spare cgroups are made on cgroup v1 only")
    cgroup = _create_v1(name)
    try:
        _restrict_devices(cgroup, DEFAULT_DEVICE_RULES)
    except BaseException:
        cgroup.remove()
        raise
    return cgroup


def adopt(spare: Cgroup, name: str, resources: Resources) -> Cgroup:
    """The spare cgroup renamed to ``name`` (a rename within the parent: no one joins, no
    grace period), with the limits and device rules of ``resources``."""
    placed = []
    for controller, path in spare.placed:
        target = os.path.join(os.path.dirname(path), os.path.basename(name))
        if os.path.dirname(path) != os.path.dirname(target) or not path.endswith(spare.name):
            raise CgroupError(name, "a spare cgroup can only be renamed within its parent")
        try:
            os.rename(path, target)
        except OSError as exc:
            raise CgroupError(path, f"cannot rename to {target}: {exc.strerror}") from exc
        placed.append((controller, target))
    cgroup = Cgroup(name, spare.version, tuple(placed))
    for path, value in _limit_files(cgroup, resources):
        _write(path, value)
    if resources.devices is None:  # privileged: every device, as the parent allows
        devices = cgroup._v1_dir("devices")
        if devices is not None:
            _write(f"{devices}/devices.allow", "a")
    elif resources.devices != DEFAULT_DEVICE_RULES:
        _restrict_devices(cgroup, resources.devices)
    return cgroup


def _v1_controllers(res: Resources) -> tuple[str, ...]:
    """The v1 hierarchies a container joins: each join costs an RCU grace period, so only
    those whose files are written (memory also for ``oom_killed``)."""
    wanted = {
        "memory": res.memory is not None,
        "pids": res.pids_limit is not None,
        "cpu": res.cpus is not None,
        "devices": res.devices is not None,
    }
    return tuple(c for c in _V1_CONTROLLERS if wanted[c])


def _restrict_devices(cgroup: Cgroup, rules: tuple[DeviceRule, ...]) -> None:
    if cgroup.version == "v2":
        try:
            devfilter.attach(cgroup.dirs[0], rules)
        except OSError as exc:
            raise CgroupError(cgroup.dirs[0], f"cannot attach the device filter: {exc}") from exc
        return
    devices = cgroup._v1_dir("devices")
    if devices is None:
        raise CgroupError(
            cgroup.name,
            "the cgroup v1 'devices' controller is not mounted: containers could open host "
            "devices (mount it on /sys/fs/cgroup/devices, or use --privileged knowingly)",
        )
    for rule in rules:
        _write(f"{devices}/devices.{'allow' if rule.allow else 'deny'}", rule.v1_line())


def remove_parent(parent: str) -> None:
    """Remove the (empty) parent dirs, e.g. ``ipydock-test``, on every hierarchy; busy is fine."""
    roots = [CGROUP_ROOT] if detect() == "v2" else sorted(set(v1_mounts().values()))
    for root in roots:
        with contextlib.suppress(FileNotFoundError, OSError):
            os.rmdir(os.path.join(root, parent))


def leftovers(parent: str, *, min_age: float = 10.0) -> list[Cgroup]:
    """Containers' cgroups under ``parent`` (named by a 64-hex container ID) with no process
    left in them, made more than ``min_age`` seconds ago (a start fills its cgroup at once):
    what a supervisor killed after its ``--rm`` container ended but before it removed the
    cgroup left behind. Container IDs are unique across stores, so any store may collect them."""
    placed: dict[str, list[tuple[str, str]]] = {}
    roots = {"unified": CGROUP_ROOT} if detect() == "v2" else v1_mounts()
    for controller, root in sorted(roots.items()):
        top = os.path.join(root, parent)
        with contextlib.suppress(OSError):
            for name in os.listdir(top):
                if len(name) == 64 and all(c in "0123456789abcdef" for c in name):
                    placed.setdefault(name, []).append((controller, os.path.join(top, name)))
    found = []
    now = time.time()
    version: Literal["v1", "v2"] = "v2" if "unified" in roots else "v1"
    for name, dirs in sorted(placed.items()):
        cgroup = Cgroup(name, version, tuple(dirs))
        try:
            old = all(now - os.stat(d).st_mtime > min_age for d in cgroup.dirs)
        except FileNotFoundError:
            continue
        if old and not cgroup.pids():
            found.append(cgroup)
    return found


def _create_v1(name: str, controllers: tuple[str, ...] = _V1_CONTROLLERS) -> Cgroup:
    mounts = v1_mounts()
    dirs: list[tuple[str, str]] = []
    try:
        for controller in controllers:
            if controller in mounts:
                path = os.path.join(mounts[controller], name)
                _mkdir(path)
                dirs.append((controller, path))
    except CgroupError:
        Cgroup(name, "v1", tuple(dirs)).remove()
        raise
    return Cgroup(name, "v1", tuple(dirs))


def _create_v2(name: str) -> Cgroup:
    parts = name.strip("/").split("/")
    parent = CGROUP_ROOT
    for part in parts[:-1]:  # controllers must be enabled on every ancestor
        _enable_controllers(parent)
        parent = os.path.join(parent, part)
        os.makedirs(parent, exist_ok=True)
    _enable_controllers(parent)
    path = os.path.join(parent, parts[-1])
    _mkdir(path)
    return Cgroup(name, "v2", (("unified", path),))


def _enable_controllers(path: str) -> None:
    with open(os.path.join(path, "cgroup.controllers")) as f:
        available = set(f.read().split())
    wanted = " ".join(f"+{c}" for c in ("memory", "pids", "cpu") if c in available)
    if wanted:
        _write(os.path.join(path, "cgroup.subtree_control"), wanted)


def _limit_files(cgroup: Cgroup, res: Resources) -> Iterator[tuple[str, str]]:
    """(file, value) pairs, in the order the kernel accepts them."""
    swap = res.memory_swap if res.memory_swap is not None else (res.memory or 0) * 2
    if cgroup.version == "v2":
        base = cgroup.dirs[0]
        if res.memory is not None:
            yield f"{base}/memory.max", str(res.memory)
            swap_max = "max" if swap == -1 else str(swap - res.memory)
            if os.path.exists(f"{base}/memory.swap.max"):
                yield f"{base}/memory.swap.max", swap_max
        if res.pids_limit is not None:
            yield f"{base}/pids.max", str(res.pids_limit)
        if res.cpus is not None:
            yield f"{base}/cpu.max", f"{round(res.cpus * _CPU_PERIOD)} {_CPU_PERIOD}"
        return
    memory, pids, cpu = (cgroup._v1_dir(c) for c in ("memory", "pids", "cpu"))
    if res.memory is not None and memory:
        yield f"{memory}/memory.limit_in_bytes", str(res.memory)
        if os.path.exists(f"{memory}/memory.memsw.limit_in_bytes"):
            yield f"{memory}/memory.memsw.limit_in_bytes", str(swap)
    if res.pids_limit is not None and pids:
        yield f"{pids}/pids.max", str(res.pids_limit)
    if res.cpus is not None and cpu:
        yield f"{cpu}/cpu.cfs_period_us", str(_CPU_PERIOD)
        yield f"{cpu}/cpu.cfs_quota_us", str(round(res.cpus * _CPU_PERIOD))


def _mkdir(path: str) -> None:
    try:
        os.makedirs(path)
    except FileExistsError as exc:
        raise CgroupError(path, "already exists (a container with this id is running?)") from exc
    except OSError as exc:
        raise CgroupError(path, f"cannot create: {exc.strerror}") from exc


def _write(path: str, value: str) -> None:
    try:
        with open(path, "w") as f:
            f.write(value)
    except OSError as exc:
        raise CgroupError(path, f"cannot write {value!r}: {exc.strerror}") from exc


def _counter(path: str, key: str) -> int:
    with contextlib.suppress(FileNotFoundError), open(path) as f:
        for line in f:
            name, _, value = line.partition(" ")
            if name == key:
                return int(value)
    return 0


def _kill_and_wait(pids: list[int]) -> None:
    """SIGKILL each pid and wait on its pidfd until it is gone (no polling loop, no sleep)."""
    fds = []
    for pid in pids:
        try:
            fds.append(os.pidfd_open(pid))
        except OSError as exc:
            if exc.errno != errno.ESRCH:
                raise
    try:
        for fd in fds:
            with contextlib.suppress(ProcessLookupError):
                signal.pidfd_send_signal(fd, signal.SIGKILL)
        for fd in fds:
            select.select([fd], [], [])
    finally:
        for fd in fds:
            os.close(fd)
