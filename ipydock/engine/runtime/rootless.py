"""Can a non-root user run containers here? A report, found by trying, and the mode it gives.

The probe runs a child process as the user (``subprocess`` with ``user=``, safe from a threaded
kernel) that really creates a user namespace, maps itself to uid 0, mounts a tmpfs and an
overlay inside it::

    probe(uid) --subprocess as uid--> unshare --user --map-root-user --mount sh -c ...
                                        tmpfs on /tmp (own mount ns) -> overlay in it
               <-- the names of the steps that worked: userns, mount, overlay

Modes (:func:`runtime_mode`, shown by ``ipydock info``): ``root``; ``rootless`` (user
namespaces: ``spawn.enter_user_namespace``, with subordinate ids where the user has a range,
see ``idranges``; no cgroup limits without a delegated v2 subtree); ``proot`` where user
namespaces are refused (:func:`refusal` names the sysctl) but PRoot is installed
(``runtime/proot.py``); ``none`` otherwise. Networking for rootless containers (slirp4netns) is
the network layer's.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
from dataclasses import dataclass, field

__all__ = ["RootlessReport", "choose_mode", "probe", "refusal", "runtime_mode", "seccomp_refusal"]

#: The modes :func:`runtime_mode` reports.
MODES = ("root", "rootless", "proot", "none")


@dataclass(frozen=True)
class RootlessReport:
    uid: int
    userns: bool
    mount_in_userns: bool
    overlay_in_userns: bool
    max_user_namespaces: int
    newuidmap: bool
    subuid_ranges: bool
    cgroup_delegated: bool
    error: str = ""
    missing: tuple[str, ...] = field(default=())

    @property
    def usable(self) -> bool:
        """A container with uid 0 mapped to the user could run (one uid, no limits)."""
        return self.userns and self.mount_in_userns


def probe(uid: int = 65534) -> RootlessReport:
    """Try user namespaces as ``uid`` (default ``nobody``); needs root to switch users."""
    check = _run_check(uid)
    name = _user_name(uid)
    report = RootlessReport(
        uid=uid,
        userns=check.get("userns", False),
        mount_in_userns=check.get("mount", False),
        overlay_in_userns=check.get("overlay", False),
        error=check.get("error", ""),
        max_user_namespaces=_read_int("/proc/sys/user/max_user_namespaces"),
        newuidmap=bool(shutil.which("newuidmap") and shutil.which("newgidmap")),
        subuid_ranges=_has_subids(name),
        cgroup_delegated=_cgroup_delegated(uid),
    )
    return RootlessReport(**{**report.__dict__, "missing": _missing(report)})


_CAP_SYS_ADMIN = 21


def runtime_mode() -> tuple[str, str]:
    """The mode containers run in here, and why: ``root``, ``rootless`` or ``none``.

    Root with CAP_SYS_ADMIN needs no probe; anyone else is probed (a child process, ~10 ms)."""
    euid = os.geteuid()
    admin = _has_cap(_CAP_SYS_ADMIN)
    report = None if euid == 0 and admin else probe(euid)
    from ipydock.engine.runtime.proot import available

    return choose_mode(euid, admin, report, proot=bool(available()))


def choose_mode(
    euid: int, cap_sys_admin: bool, report: RootlessReport | None, *, proot: bool = False
) -> tuple[str, str]:
    """The decision of :func:`runtime_mode`, from what was found (pure, for tests): ``proot``
    where namespaces do not work but PRoot is installed."""
    if euid == 0 and cap_sys_admin:
        return "root", ("running as root with CAP_SYS_ADMIN: all namespaces, overlayfs, "
                        "cgroup limits")  # fmt: skip
    who = "root without CAP_SYS_ADMIN" if euid == 0 else f"uid {euid} is not root"
    if report is not None and report.usable:
        caveats = [m for m in report.missing if "unshare" not in m and "mount" not in m]
        tail = f"; limits: {'; '.join(caveats)}" if caveats else ""
        return "rootless", f"{who}; user namespaces work (uid 0 mapped to {euid}){tail}"
    problems = "; ".join(report.missing) if report is not None else "no probe"
    if proot:
        return "proot", (f"{who} and user namespaces do not work ({problems}): commands run "
                         "through PRoot, without isolation, cgroup limits or a network of "
                         "their own")  # fmt: skip
    return "none", (f"{who} and user namespaces do not work ({problems}): containers cannot "
                    "run (install proot to run them without isolation)")  # fmt: skip


def _has_cap(bit: int) -> bool:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("CapEff:"):
                    return bool(int(line.split()[1], 16) >> bit & 1)
    except OSError:
        pass
    return False


def refusal(proc_sys: str = "/proc/sys") -> str:
    """Why the kernel refuses user namespaces to unprivileged users here, with the fix (as
    root), or ``""``; from the sysctls that do so (no probe). ``proc_sys``: for tests."""
    checks = (
        (f"{proc_sys}/user/max_user_namespaces", 0, "user namespaces are disabled "
         "(user.max_user_namespaces=0; as root: sysctl -w user.max_user_namespaces=15000)"),
        (f"{proc_sys}/kernel/unprivileged_userns_clone", 0, "unprivileged user namespaces are "
         "disabled (kernel.unprivileged_userns_clone=0; as root: sysctl -w "
         "kernel.unprivileged_userns_clone=1)"),
        (f"{proc_sys}/kernel/apparmor_restrict_unprivileged_userns", 1, "AppArmor restricts "
         "unprivileged user namespaces (kernel.apparmor_restrict_unprivileged_userns=1; as "
         "root: set it to 0, or give the Python interpreter an AppArmor profile with userns)"),
    )  # fmt: skip
    for path, refusing, why in checks:
        if os.path.exists(path) and _read_int(path) == refusing:
            return why
    return ""


def seccomp_refusal(status: str = "/proc/self/status") -> str:
    """When this process runs under a seccomp filter (``Seccomp: 2``), the words that name it
    as the likely cause of a refused ``unshare(CLONE_NEWUSER)``, with the fix; else ``""``."""
    try:
        with open(status) as f:
            mode = next((line.split()[1] for line in f if line.startswith("Seccomp:")), "0")
    except OSError:
        return ""
    if mode != "2":
        return ""
    return ("a seccomp filter blocks user namespaces (this process runs under one, Seccomp: 2 "
            "in /proc/self/status; Docker's and Kubernetes' default profiles do): start the "
            "notebook's container with --security-opt seccomp=unconfined or a profile that "
            "allows unshare and clone with CLONE_NEWUSER, or use PRoot mode (install "
            "proot)")  # fmt: skip


def _missing(r: RootlessReport) -> tuple[str, ...]:
    refused = refusal()
    blocked = "" if r.userns or refused else seccomp_refusal()
    needs = [
        (not refused, refused),
        (
            r.userns or bool(refused),
            blocked
            or f"unshare(CLONE_NEWUSER) fails for uid {r.uid} (not a sysctl, no "
            f"seccomp filter here: a container's or a security module's policy?): {r.error}",
        ),
        (r.mount_in_userns or not r.userns, "cannot mount inside a user namespace"),
        (
            r.overlay_in_userns or not r.mount_in_userns,
            "the kernel refuses overlayfs in a user "
            "namespace (Linux < 5.11?): stores use fuse-overlayfs, or vfs without it",
        ),
        (r.newuidmap, "newuidmap/newgidmap are not installed (package uidmap)"),
        (r.subuid_ranges, "no /etc/subuid and /etc/subgid range for the user"),
        (r.cgroup_delegated, "no delegated cgroup v2 subtree: limits would be ignored"),
    ]
    return tuple(text for ok, text in needs if not ok)


_CHECK_SCRIPT = (
    "echo userns; mount -t tmpfs none /tmp && echo mount && mkdir /tmp/l /tmp/u /tmp/w /tmp/m && "
    "mount -t overlay overlay -o lowerdir=/tmp/l,upperdir=/tmp/u,workdir=/tmp/w /tmp/m && "
    "echo overlay"
)


def _run_check(uid: int) -> dict:
    """util-linux ``unshare`` as ``uid``: each step that works prints its name."""
    as_root = os.geteuid() == 0
    try:
        gid = pwd.getpwuid(uid).pw_gid
    except KeyError:
        gid = uid
    try:
        proc = subprocess.run(
            ["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", _CHECK_SCRIPT],
            user=uid if as_root else None,
            group=gid if as_root else None,
            extra_groups=[] if as_root else None,
            env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
            cwd="/",
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        return {"error": str(exc)}
    steps = set(proc.stdout.split())
    result: dict = {step: step in steps for step in ("userns", "mount", "overlay")}
    result["error"] = proc.stderr.strip()[-300:]
    return result


def _user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def _has_subids(name: str) -> bool:
    def listed(path: str) -> bool:
        try:
            with open(path) as f:
                return any(line.split(":")[0] == name for line in f)
        except OSError:
            return False

    return listed("/etc/subuid") and listed("/etc/subgid")


def _cgroup_delegated(uid: int) -> bool:
    """v2 only: a cgroup directory owned by the user, with controllers to delegate."""
    if not os.path.exists("/sys/fs/cgroup/cgroup.controllers"):
        return False
    user_slice = f"/sys/fs/cgroup/user.slice/user-{uid}.slice/user@{uid}.service"
    try:
        return os.stat(user_slice).st_uid == uid
    except OSError:
        return False


def _read_int(path: str) -> int:
    try:
        with open(path) as f:
            return int(f.read())
    except (OSError, ValueError):
        return 0
