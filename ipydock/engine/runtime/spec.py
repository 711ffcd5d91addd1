"""What to run and how to isolate it: a plain, frozen description of one container process.

A :class:`Spec` is pure data, built by the container layer from an image config and ``run``
flags; :func:`validate` checks it without touching the kernel, and
:func:`ipydock.engine.runtime.plan.build_plan` turns it into the concrete list of kernel steps the
spawner executes. Open file descriptors are not data, so they travel beside the spec in
:class:`Stdio`.

Defaults are Docker's (20.10, classic): the namespaces of ``docker run``, its masked and
read-only ``/proc`` and ``/sys`` paths, its capability set, its device cgroup rules (mknod
allowed, open only of the default devices), its seccomp profile (``seccomp=""``, see
:mod:`ipydock.engine.runtime.seccomp`). One deliberate difference:
``no_new_privs`` is on by default (Docker needs ``--security-opt no-new-privileges``), as the
design's hardening section asks.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal

from ipydock.engine.runtime.caps import resolve
from ipydock.errors import InvalidSpec

__all__ = [
    "DEFAULT_NAMESPACES",
    "DEFAULT_PATH",
    "DOCKER_DEVICE_RULES",
    "DOCKER_MASKED_PATHS",
    "DeviceNode",
    "DeviceRule",
    "DOCKER_READONLY_PATHS",
    "EtcFiles",
    "Mount",
    "Network",
    "Resources",
    "Rootfs",
    "Spec",
    "Stdio",
    "ULIMITS",
    "Ulimit",
    "User",
    "cgroup_resources",
    "default_env",
    "validate",
]

#: moby ``oci/defaults.go`` MaskedPaths: files get /dev/null bound over them, dirs a ro tmpfs.
DOCKER_MASKED_PATHS: tuple[str, ...] = (
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
)
#: moby ``oci/defaults.go`` ReadonlyPaths: bind-mounted over themselves read-only.
DOCKER_READONLY_PATHS: tuple[str, ...] = (
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
)
DEFAULT_NAMESPACES: frozenset[str] = frozenset({"pid", "mount", "uts", "ipc", "net"})
KNOWN_NAMESPACES: frozenset[str] = DEFAULT_NAMESPACES | {"cgroup"}
#: The PATH Docker sets when the image config has none.
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#: Docker refuses ``--memory`` below this ("Minimum memory limit allowed is 6MB").
MIN_MEMORY = 6 * 1024 * 1024


@dataclass(frozen=True)
class Rootfs:
    """The container's root: overlay layers, or one plain directory.

    Overlay: ``lower`` bottom-first (image order), ``upper``/``work`` the container's own
    writable layer, ``merged`` an empty directory to mount on. The overlay is mounted inside the
    container's mount namespace only, so it disappears with the container and never shows up in
    the host's mount table. With no ``upper``, the root is read-only.
    """

    lower: tuple[str, ...] = ()
    upper: str | None = None
    work: str | None = None
    merged: str | None = None
    path: str | None = None
    #: Mounted by the ``fuse-overlayfs`` program (the store's driver) instead of the kernel.
    fuse: bool = False
    #: Not worth a sync (a ``--rm`` container's, a build step's): overlayfs's ``volatile``,
    #: without which unmounting it syncs the whole filesystem of the upper dir.
    volatile: bool = False

    @classmethod
    def overlay(
        cls,
        lower: tuple[str, ...] | list[str],
        upper: str | None,
        work: str | None,
        merged: str,
        *,
        fuse: bool = False,
        volatile: bool = False,
    ) -> Rootfs:
        return cls(lower=tuple(lower), upper=upper, work=work, merged=merged, fuse=fuse,
                   volatile=volatile)  # fmt: skip

    @classmethod
    def directory(cls, path: str) -> Rootfs:
        return cls(path=path)

    @property
    def is_overlay(self) -> bool:
        return self.path is None


@dataclass(frozen=True)
class Mount:
    """A bind mount of a host path, or a tmpfs; ``target`` is a path inside the container."""

    target: str
    type: Literal["bind", "tmpfs"] = "bind"
    source: str = ""
    readonly: bool = False
    #: tmpfs data options such as ``size=64m``, ``mode=1777``.
    options: tuple[str, ...] = ()


@dataclass(frozen=True)
class User:
    uid: int = 0
    gid: int = 0
    additional_gids: tuple[int, ...] = ()


@dataclass(frozen=True)
class Network:
    """``none``: a new netns with loopback only; ``host``: the host's; ``join``: an existing one.

    ``join`` is how bridge networking plugs in: the network layer creates and wires a netns
    (``/run/ipydock/netns/ID``), then the container enters it before anything runs. Callers that
    rather configure the container's own netns use ``spawn(..., paused=True)``, wire
    ``/proc/PID/ns/net``, then ``start()``.
    """

    mode: Literal["none", "host", "join"] = "none"
    netns_path: str | None = None

    @classmethod
    def join(cls, netns_path: str) -> Network:
        return cls(mode="join", netns_path=netns_path)


@dataclass(frozen=True)
class DeviceRule:
    """One device cgroup rule, as OCI's ``linux.resources.devices`` entries.

    ``type`` is ``a`` (all), ``b`` (block) or ``c`` (char); ``major``/``minor`` ``-1`` mean any;
    ``access`` is a subset of ``rwm`` (read, write, mknod). Later rules win over earlier ones,
    as in the v1 ``devices`` controller.
    """

    allow: bool
    type: Literal["a", "b", "c"] = "a"
    major: int = -1
    minor: int = -1
    access: str = "rwm"

    def v1_line(self) -> str:
        """The line for ``devices.allow`` / ``devices.deny``, e.g. ``c 1:3 rwm``."""
        if self.type == "a":
            return "a"
        major = "*" if self.major < 0 else str(self.major)
        minor = "*" if self.minor < 0 else str(self.minor)
        return f"{self.type} {major}:{minor} {self.access}"


def _allow(type_: Literal["b", "c"], major: int, minor: int, access: str = "rwm") -> DeviceRule:
    return DeviceRule(True, type_, major, minor, access)


#: Docker's rules for an unprivileged container (runc's ``AllowedDevices`` after moby's "deny
#: all"): mknod of any node is allowed, opening only the default devices, ptys and tun. A block
#: device of the host, ``/dev/kmsg`` or ``/dev/mem`` cannot be opened even when made by mknod.
DOCKER_DEVICE_RULES: tuple[DeviceRule, ...] = (
    DeviceRule(False),
    _allow("c", -1, -1, "m"),
    _allow("b", -1, -1, "m"),
    _allow("c", 1, 3),  # /dev/null
    _allow("c", 1, 8),  # /dev/random
    _allow("c", 1, 7),  # /dev/full
    _allow("c", 5, 0),  # /dev/tty
    _allow("c", 1, 5),  # /dev/zero
    _allow("c", 1, 9),  # /dev/urandom
    _allow("c", 136, -1),  # /dev/pts/*
    _allow("c", 5, 2),  # /dev/ptmx
    _allow("c", 10, 200),  # /dev/net/tun
)


@dataclass(frozen=True)
class DeviceNode:
    """A host device given to the container (``--device``): made at ``path`` in its /dev."""

    path: str
    type: Literal["b", "c"]
    major: int
    minor: int
    mode: int = 0o666
    uid: int = 0
    gid: int = 0
    #: The cgroup access it gets, a subset of ``rwm``.
    access: str = "rwm"
    #: The host's node it stands for (bound instead of made in rootless mode).
    source: str = ""

    def rule(self) -> DeviceRule:
        return DeviceRule(True, self.type, self.major, self.minor, self.access)


@dataclass(frozen=True)
class Resources:
    """cgroup limits; ``None`` means unlimited. ``memory_swap`` as Docker: total incl. memory,
    ``None`` = twice ``memory``, ``-1`` = unlimited swap. ``devices``: the device rules
    (Docker's by default; ``None`` lifts them, as ``--privileged`` does)."""

    memory: int | None = None
    memory_swap: int | None = None
    pids_limit: int | None = None
    cpus: float | None = None
    devices: tuple[DeviceRule, ...] | None = DOCKER_DEVICE_RULES

    def limits(self) -> bool:
        """True when a memory, pids or cpu limit is set (device rules aside)."""
        return (self.memory, self.pids_limit, self.cpus) != (None, None, None)


#: ``--ulimit`` names (docker's) -> RLIMIT_* numbers (the same on x86_64 and aarch64).
ULIMITS: dict[str, int] = {
    "cpu": 0, "fsize": 1, "data": 2, "stack": 3, "core": 4, "rss": 5, "nproc": 6, "nofile": 7,
    "memlock": 8, "as": 9, "locks": 10, "sigpending": 11, "msgqueue": 12, "nice": 13,
    "rtprio": 14, "rttime": 15,
}  # fmt: skip


@dataclass(frozen=True)
class Ulimit:
    """One resource limit (``--ulimit nofile=1024:2048``); ``-1`` is unlimited."""

    name: str
    soft: int
    hard: int


@dataclass(frozen=True)
class EtcFiles:
    """Host files bind-mounted on ``/etc/hostname``, ``/etc/hosts``, ``/etc/resolv.conf``."""

    hostname: str | None = None
    hosts: str | None = None
    resolv_conf: str | None = None


@dataclass(frozen=True)
class Stdio:
    """File descriptors for the container's 0, 1, 2; ``None`` means ``/dev/null``.

    Not part of :class:`Spec` because descriptors are not data: they are passed to the helper
    process with ``SCM_RIGHTS``. The caller keeps ownership and may close them after spawn.
    """

    stdin: int | None = None
    stdout: int | None = None
    stderr: int | None = None


@dataclass(frozen=True)
class Spec:
    rootfs: Rootfs
    args: tuple[str, ...]
    env: tuple[str, ...] = ()
    cwd: str = "/"
    user: User = field(default_factory=User)
    hostname: str = ""
    etc: EtcFiles = field(default_factory=EtcFiles)
    mounts: tuple[Mount, ...] = ()
    #: Host devices made in the container's /dev (``--device``); their cgroup rules are added
    #: by :func:`cgroup_resources`.
    devices: tuple[DeviceNode, ...] = ()
    readonly_rootfs: bool = False
    cap_add: tuple[str, ...] = ()
    cap_drop: tuple[str, ...] = ()
    privileged: bool = False
    masked_paths: tuple[str, ...] = DOCKER_MASKED_PATHS
    readonly_paths: tuple[str, ...] = DOCKER_READONLY_PATHS
    no_new_privs: bool = True
    #: Docker's ``SeccompProfile``: ``""`` its default profile, ``"unconfined"`` none, else
    #: the text of a docker-format JSON profile. Ignored when ``privileged``.
    seccomp: str = ""
    #: Resource limits set before exec (``--ulimit``); others are inherited from the spawner.
    ulimits: tuple[Ulimit, ...] = ()
    namespaces: frozenset[str] = DEFAULT_NAMESPACES
    network: Network = field(default_factory=Network)
    resources: Resources = field(default_factory=Resources)
    #: SIGKILL the container when its parent (helper or supervisor) dies: nothing is orphaned.
    die_with_parent: bool = True
    #: Spawned from a user namespace where only uid/gid 0 are mapped (to the unprivileged
    #: caller, see ``spawn.enter_user_namespace``): devices are bound, not made.
    rootless: bool = False
    #: Rootless: how many ids from 0 that namespace maps (1, or 65537 with subordinate ranges,
    #: see ``idranges``); the user and groups must be below it.
    rootless_ids: int = 1
    #: Rootless with one id: why (``idranges.why_single``), for the error that needs more.
    rootless_why: str = ""
    #: OCI's ``process.terminal``: the process gets a pseudo-terminal made in the container
    #: (``runtime/console.py``) as its stdio and controlling terminal; (rows, cols) at start.
    terminal: bool = False
    console_size: tuple[int, int] = (0, 0)


def cgroup_resources(spec: Spec) -> Resources:
    """What the container's cgroup enforces: ``spec.resources`` with the rules of its
    ``--device`` nodes added, or with no device rules at all when privileged (as Docker)."""
    res = spec.resources
    if spec.privileged or res.devices is None:
        return replace(res, devices=None)
    if not spec.devices:
        return res
    return replace(res, devices=(*res.devices, *(d.rule() for d in spec.devices)))


def default_env(env: tuple[str, ...], hostname: str, home: str = "/root") -> tuple[str, ...]:
    """The image env plus what Docker adds when missing: PATH, HOSTNAME, HOME."""
    keys = {item.split("=", 1)[0] for item in env}
    extra = []
    if "PATH" not in keys:
        extra.append(f"PATH={DEFAULT_PATH}")
    if "HOSTNAME" not in keys and hostname:
        extra.append(f"HOSTNAME={hostname}")
    if "HOME" not in keys:
        extra.append(f"HOME={home}")
    return (*extra, *env)


def validate(spec: Spec) -> None:
    """Raise :class:`InvalidSpec` naming the first bad field; kernel-free."""
    _validate_rootfs(spec.rootfs)
    if not spec.args or not spec.args[0]:
        raise InvalidSpec("args", "no command given (set CMD/ENTRYPOINT or pass a command)")
    _absolute("cwd", spec.cwd)
    for item in spec.env:
        if "=" not in item or item.startswith("="):
            raise InvalidSpec("env", f"{item!r} is not KEY=VALUE")
    if any(i < 0 for i in (spec.user.uid, spec.user.gid, *spec.user.additional_gids)):
        raise InvalidSpec("user", "uid and gids must be >= 0")
    if spec.rootless:
        _validate_rootless_user(spec)
    if len(spec.hostname) > 64:
        raise InvalidSpec("hostname", "longer than 64 characters")
    for mount in spec.mounts:
        _validate_mount(mount)
    for device in spec.devices:
        _validate_device(device)
    unknown = spec.namespaces - KNOWN_NAMESPACES
    if unknown:
        raise InvalidSpec("namespaces", f"unknown {sorted(unknown)}")
    _validate_network(spec)
    _validate_resources(spec.resources)
    for ulimit in spec.ulimits:
        _validate_ulimit(ulimit)
    resolve(spec.cap_add, spec.cap_drop, spec.privileged)


def _validate_ulimit(ulimit: Ulimit) -> None:
    if ulimit.name not in ULIMITS:
        raise InvalidSpec("ulimits", f"invalid ulimit type: {ulimit.name}")
    if ulimit.soft < -1 or ulimit.hard < -1:
        raise InvalidSpec("ulimits", f"{ulimit.name}: limits are -1 (unlimited) or more")
    if ulimit.hard != -1 and (ulimit.soft == -1 or ulimit.soft > ulimit.hard):
        raise InvalidSpec("ulimits", f"ulimit soft limit must be less than or equal to hard "
                          f"limit: {ulimit.soft} > {ulimit.hard}")  # fmt: skip


def _validate_rootless_user(spec: Spec) -> None:
    user = spec.user
    if spec.rootless_ids <= 1:  # extra groups are not set: setgroups is denied there
        if (user.uid, user.gid) != (0, 0):
            why = spec.rootless_why or (
                "give the user a subordinate id range: usermod --add-subuids 100000-165535 "
                "--add-subgids 100000-165535 USER"
            )
            raise InvalidSpec(
                "user",
                f"rootless mode maps only uid 0 and gid 0, not {user.uid}:{user.gid} ({why}; "
                "or run as root, or use --user 0:0)",
            )
        return
    high = max(user.uid, user.gid, *user.additional_gids)
    if high >= spec.rootless_ids:
        raise InvalidSpec(
            "user",
            f"rootless mode maps ids 0-{spec.rootless_ids - 1}, not {high} (run as root, or "
            "use a smaller id)",
        )


def _absolute(name: str, path: str | None) -> None:
    if not path or not path.startswith("/"):
        raise InvalidSpec(name, f"{path!r} is not an absolute path")


def _validate_rootfs(rootfs: Rootfs) -> None:
    if not rootfs.is_overlay:
        _absolute("rootfs.path", rootfs.path)
        if rootfs.lower or rootfs.upper:
            raise InvalidSpec("rootfs", "give either a directory or overlay layers, not both")
        return
    if not rootfs.lower:
        raise InvalidSpec("rootfs.lower", "an overlay root needs at least one lower dir")
    for path in rootfs.lower:
        _absolute("rootfs.lower", path)
    if (rootfs.upper is None) != (rootfs.work is None):
        raise InvalidSpec("rootfs", "upper and work dirs go together")
    if rootfs.upper is not None:
        _absolute("rootfs.upper", rootfs.upper)
        _absolute("rootfs.work", rootfs.work)
    _absolute("rootfs.merged", rootfs.merged)


def _validate_mount(mount: Mount) -> None:
    _absolute("mounts.target", mount.target)
    if mount.type == "bind":
        _absolute("mounts.source", mount.source)
    elif mount.type != "tmpfs":
        raise InvalidSpec("mounts.type", f"{mount.type!r} is not bind or tmpfs")


def _validate_device(device: DeviceNode) -> None:
    _absolute("devices.path", device.path)
    if not device.path.startswith("/dev/"):
        raise InvalidSpec("devices.path", f"{device.path!r} is not under /dev")
    if device.type not in ("b", "c") or device.major < 0 or device.minor < 0:
        raise InvalidSpec("devices", f"{device.path}: not a block or character device number")
    if not device.access or set(device.access) - set("rwm"):
        raise InvalidSpec("devices", f"{device.path}: permissions {device.access!r} not in 'rwm'")


def _validate_network(spec: Spec) -> None:
    net = spec.network
    if net.mode not in ("none", "host", "join"):
        raise InvalidSpec("network", f"mode {net.mode!r} is not none, host or join")
    if net.mode == "join":
        _absolute("network.netns_path", net.netns_path)
    if net.mode != "host" and "net" not in spec.namespaces:
        raise InvalidSpec("network", f"mode {net.mode!r} needs the 'net' namespace")


def _validate_resources(res: Resources) -> None:
    if res.memory is not None and res.memory < MIN_MEMORY:
        raise InvalidSpec("resources.memory", "Minimum memory limit allowed is 6MB")
    if res.memory_swap not in (None, -1):
        if res.memory is None:
            raise InvalidSpec("resources.memory_swap", "needs memory to be set too")
        if res.memory_swap < res.memory:
            raise InvalidSpec("resources.memory_swap", "must be at least the memory limit")
    if res.pids_limit is not None and res.pids_limit < 1:
        raise InvalidSpec("resources.pids_limit", "must be at least 1")
    if res.cpus is not None and res.cpus <= 0:
        raise InvalidSpec("resources.cpus", "must be greater than 0")
    for rule in res.devices or ():
        if rule.type not in ("a", "b", "c") or not rule.access or set(rule.access) - set("rwm"):
            raise InvalidSpec("resources.devices", f"bad rule {rule.v1_line()!r}")
