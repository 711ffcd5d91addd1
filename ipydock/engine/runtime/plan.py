"""Spec -> Plan: the concrete kernel steps for one container, computed before any fork.

Like runc's ``specconv``, this is a pure function: every mount (source, target, type, flags,
data), every device node, every capability bit is decided here, where it can be unit-tested
without root. The spawner (:mod:`ipydock.engine.runtime.spawn`) then only executes a
:class:`Plan`, in the order given. A plan is JSON-safe (:meth:`Plan.to_dict`) because it crosses
a socket to the fork-server helper.

Mount targets are paths inside the container; the spawner resolves them under the new root
without following symlinks out of it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from ipydock.engine.runtime.caps import CAPABILITIES, mask, resolve
from ipydock.engine.runtime.spec import ULIMITS, DeviceNode, Mount, Rootfs, Spec, validate
from ipydock.errors import InvalidSpec

__all__ = ["Device", "MountStep", "Plan", "build_plan"]

# <sys/mount.h>
MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_REMOUNT = 0x20
MS_BIND = 0x1000
MS_REC = 0x4000
MS_PRIVATE = 0x40000
MS_STRICTATIME = 0x1000000
# <sched.h>
CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

_NS_FLAGS = {
    "mount": CLONE_NEWNS,
    "uts": CLONE_NEWUTS,
    "ipc": CLONE_NEWIPC,
    "net": CLONE_NEWNET,
    "cgroup": CLONE_NEWCGROUP,
}
_SECURE = MS_NOSUID | MS_NODEV | MS_NOEXEC
#: The root mount's type when the ``fuse-overlayfs`` program mounts it (spawn runs it).
FUSE_OVERLAYFS = "fuse-overlayfs"
#: The kernel copies at most one page of mount data.
_MAX_MOUNT_DATA = 4000


@dataclass(frozen=True)
class MountStep:
    """One ``mount(2)``; ``kind`` says what to create at the target (``dir`` or ``file``)."""

    target: str
    fstype: str
    source: str = "none"
    flags: int = 0
    data: str = ""
    readonly: bool = False
    kind: str = "dir"


@dataclass(frozen=True)
class Device:
    """A node made in the container's /dev; rootless, ``source`` (the host's node) is bound."""

    path: str
    major: int
    minor: int
    mode: int = 0o666
    type: str = "c"
    uid: int = 0
    gid: int = 0
    source: str = ""


#: runc's default devices; Docker gives the same six to an unprivileged container.
DEFAULT_DEVICES: tuple[Device, ...] = (
    Device("/dev/null", 1, 3),
    Device("/dev/zero", 1, 5),
    Device("/dev/full", 1, 7),
    Device("/dev/random", 1, 8),
    Device("/dev/urandom", 1, 9),
    Device("/dev/tty", 5, 0),
)
DEFAULT_SYMLINKS: tuple[tuple[str, str], ...] = (
    ("/proc/self/fd", "/dev/fd"),
    ("/proc/self/fd/0", "/dev/stdin"),
    ("/proc/self/fd/1", "/dev/stdout"),
    ("/proc/self/fd/2", "/dev/stderr"),
    ("pts/ptmx", "/dev/ptmx"),
    ("/proc/kcore", "/dev/core"),
)


@dataclass(frozen=True)
class Plan:
    """Everything the spawner does, in order: root, mounts, devices, pivot, masks, creds, exec."""

    root: str
    root_mount: MountStep
    new_pid: bool
    clone_flags: int
    netns_path: str | None
    hostname: str | None
    mounts: tuple[MountStep, ...]
    devices: tuple[Device, ...]
    symlinks: tuple[tuple[str, str], ...]
    masked_paths: tuple[str, ...]
    readonly_paths: tuple[str, ...]
    readonly_rootfs: bool
    cwd: str
    args: tuple[str, ...]
    env: tuple[str, ...]
    uid: int
    gid: int
    groups: tuple[int, ...]
    cap_bounding: int
    cap_effective: int
    cap_permitted: int
    cap_inheritable: int
    cap_ambient: int
    no_new_privs: bool
    die_with_parent: bool
    cgroup_procs: tuple[str, ...] = field(default=())
    #: In a user namespace of one mapped id (``Spec.rootless``): the host's device nodes are
    #: bound (no mknod), setgroups is denied, ``exec`` joins the user namespace too.
    rootless: bool = False
    #: The seccomp filter, BPF as base64 (``seccomp.to_plan``); empty: none. Loaded after
    #: no_new_privs, or (without it) before the capabilities are dropped.
    seccomp: str = ""
    seccomp_flags: int = 0
    #: (RLIMIT number, soft, hard) set before exec; -1 is unlimited.
    rlimits: tuple[tuple[int, int, int], ...] = ()
    #: A pseudo-terminal as stdio and controlling terminal (see ``runtime/console.py``).
    terminal: bool = False
    console_size: tuple[int, int] = (0, 0)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Plan:
        data = dict(data)
        data["root_mount"] = MountStep(**data["root_mount"])
        data["mounts"] = tuple(MountStep(**m) for m in data["mounts"])
        data["devices"] = tuple(Device(**d) for d in data["devices"])
        data["symlinks"] = tuple(tuple(s) for s in data["symlinks"])
        data["rlimits"] = tuple(tuple(r) for r in data.get("rlimits", ()))
        for key in ("masked_paths", "readonly_paths", "args", "env", "groups", "cgroup_procs",
                    "console_size"):  # fmt: skip
            data[key] = tuple(data[key])
        return cls(**data)


def build_plan(spec: Spec, cgroup_procs: tuple[str, ...] = ()) -> Plan:
    """Validate ``spec`` and compute its plan; ``cgroup_procs`` are files the process joins."""
    validate(spec)
    root, root_mount = _root_mount(spec.rootfs, spec.rootless)
    caps = mask(resolve(spec.cap_add, spec.cap_drop, spec.privileged))
    flags = 0
    for name in spec.namespaces - {"pid"}:
        flags |= _NS_FLAGS[name]
    if spec.network.mode != "none":  # host: keep the host's; join: setns, not a new one
        flags &= ~CLONE_NEWNET
    unmasked = spec.privileged
    bpf, bpf_flags = _seccomp(spec, caps)
    return Plan(
        root=root,
        root_mount=root_mount,
        new_pid="pid" in spec.namespaces,
        clone_flags=flags,
        netns_path=spec.network.netns_path if spec.network.mode == "join" else None,
        hostname=spec.hostname or None,
        mounts=(*_system_mounts(spec), *(_user_mount(m) for m in spec.mounts), *_etc_mounts(spec)),
        devices=(*DEFAULT_DEVICES, *(_device(d) for d in spec.devices)),
        rootless=spec.rootless,
        symlinks=DEFAULT_SYMLINKS,
        masked_paths=() if unmasked else spec.masked_paths,
        readonly_paths=() if unmasked else spec.readonly_paths,
        readonly_rootfs=spec.readonly_rootfs,
        cwd=spec.cwd,
        args=spec.args,
        env=spec.env,
        uid=spec.user.uid,
        gid=spec.user.gid,
        groups=spec.user.additional_gids,
        cap_bounding=caps,
        cap_effective=caps,
        cap_permitted=caps,
        # Docker >= 20.10.14 leaves inheritable and ambient empty (CVE-2022-24769).
        cap_inheritable=0,
        cap_ambient=0,
        no_new_privs=spec.no_new_privs,
        die_with_parent=spec.die_with_parent,
        cgroup_procs=tuple(cgroup_procs),
        seccomp=bpf,
        seccomp_flags=bpf_flags,
        rlimits=tuple((ULIMITS[u.name], u.soft, u.hard) for u in spec.ulimits),
        terminal=spec.terminal,
        console_size=spec.console_size,
    )


def _seccomp(spec: Spec, caps: int) -> tuple[str, int]:
    """The compiled filter for the container (base64) and its seccomp(2) flags; none when
    privileged or ``unconfined``, as docker. Its rules depend on the bounding set."""
    if spec.privileged or spec.seccomp == "unconfined":
        return "", 0
    from ipydock.engine.runtime import seccomp

    text = spec.seccomp or seccomp.default_profile_text()
    source = "(--security-opt seccomp)" if spec.seccomp else "(docker's default)"
    names = [name for bit, name in enumerate(CAPABILITIES) if caps >> bit & 1]
    bpf, flags = seccomp.compile_profile(text, names, source)
    return seccomp.to_plan(bpf), flags


def _device(node: DeviceNode) -> Device:
    """A ``--device`` node; the host path it came from is kept for rootless binds."""
    return Device(node.path, node.major, node.minor, node.mode, node.type, node.uid, node.gid,
                  node.source)  # fmt: skip


def all_caps_mask() -> int:
    return (1 << len(CAPABILITIES)) - 1


def _root_mount(rootfs: Rootfs, rootless: bool = False) -> tuple[str, MountStep]:
    """Where the root goes and the mount that makes it; a lone ro lower dir is just bound."""
    if not rootfs.is_overlay:
        assert rootfs.path is not None
        return rootfs.path, MountStep(rootfs.path, "", rootfs.path, MS_BIND | MS_REC)
    assert rootfs.merged is not None
    if rootfs.upper is None and len(rootfs.lower) == 1:
        step = MountStep(rootfs.merged, "", rootfs.lower[0], MS_BIND | MS_REC, readonly=True)
        return rootfs.merged, step
    data = "lowerdir=" + ":".join(reversed(rootfs.lower))  # overlayfs wants top-first
    if rootfs.fuse:  # the program's options; allow_other: the container's other ids too
        if rootfs.upper is not None:
            data += f",upperdir={rootfs.upper},workdir={rootfs.work}"
        if len(data) > _MAX_MOUNT_DATA:
            why = f"{len(rootfs.lower)} layers exceed the mount data page"
            raise InvalidSpec("rootfs.lower", why)
        return rootfs.merged, MountStep(rootfs.merged, FUSE_OVERLAYFS, FUSE_OVERLAYFS, 0,
                                        data + ",allow_other")  # fmt: skip
    if rootless:  # its metadata in user.overlay.* (trusted.* is root's): opaque dirs, origin
        data += ",userxattr"
    if rootfs.upper is not None:
        # The upper dir becomes a layer tar (diff, commit, build steps): it must hold whole
        # files and real renames, not overlayfs's redirect or metacopy xattrs, whatever the
        # kernel's defaults are (off here, on in some distributions' kernels).
        # In a user namespace the kernel takes only "nofollow" (no redirects made or followed).
        redirect = "nofollow" if rootless else "off"
        data += (f",upperdir={rootfs.upper},workdir={rootfs.work},redirect_dir={redirect},"
                 "metacopy=off")  # fmt: skip
        if rootfs.volatile:
            data += ",volatile"
    if len(data) > _MAX_MOUNT_DATA:
        raise InvalidSpec("rootfs.lower", f"{len(rootfs.lower)} layers exceed the mount data page")
    return rootfs.merged, MountStep(rootfs.merged, "overlay", "overlay", 0, data)


def _system_mounts(spec: Spec) -> tuple[MountStep, ...]:
    """Docker's default mounts: /proc, /dev, /dev/pts, /sys (ro), /dev/mqueue, /dev/shm.

    Rootless: devpts without ``gid=5`` (not mapped), and with the host's network the host's
    /sys bound read-only (sysfs may be mounted only in a network namespace the user owns)."""
    sys_flags = _SECURE | (0 if spec.privileged else MS_RDONLY)
    pts = "newinstance,ptmxmode=0666,mode=0620" + ("" if spec.rootless else ",gid=5")
    if spec.rootless and spec.network.mode != "none":
        sysfs = MountStep("/sys", "", "/sys", MS_BIND | MS_REC, readonly=not spec.privileged)
    else:
        sysfs = MountStep("/sys", "sysfs", "sysfs", sys_flags)
    return (
        MountStep("/proc", "proc", "proc", _SECURE),
        MountStep("/dev", "tmpfs", "tmpfs", MS_NOSUID | MS_STRICTATIME, "mode=755,size=65536k"),
        MountStep("/dev/pts", "devpts", "devpts", MS_NOSUID | MS_NOEXEC, pts),
        sysfs,
        MountStep("/dev/mqueue", "mqueue", "mqueue", _SECURE),
        MountStep("/dev/shm", "tmpfs", "shm", _SECURE, "mode=1777,size=65536k"),
    )


def _user_mount(mount: Mount) -> MountStep:
    if mount.type == "tmpfs":
        data = ",".join(mount.options)
        return MountStep(mount.target, "tmpfs", "tmpfs", MS_NOSUID | MS_NODEV, data, mount.readonly)
    return MountStep(mount.target, "", mount.source, MS_BIND | MS_REC, "", mount.readonly, "auto")


def _etc_mounts(spec: Spec) -> tuple[MountStep, ...]:
    files = (
        ("/etc/hostname", spec.etc.hostname),
        ("/etc/hosts", spec.etc.hosts),
        ("/etc/resolv.conf", spec.etc.resolv_conf),
    )
    return tuple(
        MountStep(target, "", source, MS_BIND, "", False, "file")
        for target, source in files
        if source is not None
    )
