"""What a test run may leave on the host, counted per kind; only objects this run made.

Seven other test runs share the machine, so every kind is counted by a mark of this run:

    mount       mount points below this run's pytest temp dir (every test store lives there)
    process     processes with their cwd or an open file below that temp dir (supervisors hold
                their container's log; container processes run on a store's rootfs) that
                appeared since the snapshot; the session's own helpers (command server,
                registries, dockerd, Jupyter) are not leaks
    link        veths and bridges named with this run's link prefix, but its default bridge
    netns       named network namespaces (``/run/netns``) with this run's link prefix
    rule        iptables rules of ipydock's chains naming such a link
    cgroup      cgroups below the parents named for this run's pid (``ipydock-*-<pid>-*``)
    dns         live endpoints (names the embedded DNS answers) in this run's bridge state dir
    temp        entries of the stores' ``tmp/`` below the temp dir whose process is gone

A snapshot is taken before and the counts are of what is new after (``new_leaks``).
"""

from __future__ import annotations

import glob
import os
import re
import select
import shutil
import subprocess
from collections.abc import Iterable

__all__ = ["KINDS", "Snapshot", "new_leaks", "snapshot"]

KINDS = ("mount", "process", "link", "netns", "rule", "cgroup", "dns", "temp")
# Long-lived helpers a session starts on purpose (stopped at its end, not per module).
SESSION_HELPERS = re.compile(
    r"docker-registry|dockerd|containerd|ipydock[-.]server|cli\.server|launcher|jupyter|"
    r"chrom|playwright|node |token_issuer|openssl|forkserver"
)

Snapshot = dict[str, set[str]]


def snapshot(base: str) -> Snapshot:
    """Every object of every kind that this run (temp dir ``base``) has right now."""
    prefix = os.environ.get("IPYDOCK_LINK_PREFIX", "")
    return {
        "mount": _mounts(base),
        "process": _processes(base),
        "link": _links(prefix),
        "netns": {n for n in _listdir("/run/netns") if prefix and n.startswith(prefix)},
        "rule": _rules(prefix),
        "cgroup": _cgroups(),
        "dns": _dns(),
        "temp": _temps(base),
    }


def new_leaks(before: Snapshot, base: str, settle: float = 30) -> dict[str, list[str]]:
    """What appeared since ``before`` and is still there; processes get ``settle`` seconds to
    exit first (a ``--rm`` supervisor removes its container after its starter went on)."""
    after = snapshot(base)
    fresh = after["process"] - before["process"]
    if fresh:
        _wait_for_exit(fresh, settle)
        after = snapshot(base)
    return {kind: sorted(after[kind] - before[kind]) for kind in KINDS}


def _listdir(path: str) -> list[str]:
    try:
        return os.listdir(path)
    except OSError:
        return []


def _mounts(base: str) -> set[str]:
    with open("/proc/self/mountinfo") as f:
        points = (line.split()[4] for line in f)
        return {p for p in points if p == base or p.startswith(base + "/")}


def _processes(base: str) -> set[str]:
    """``pid:start cmdline`` of processes using something below ``base``."""
    found = set()
    me = os.getpid()
    for pid in filter(str.isdigit, _listdir("/proc")):
        if int(pid) == me:
            continue
        try:
            targets = [os.readlink(f"/proc/{pid}/cwd")]
            targets += [os.readlink(f"/proc/{pid}/fd/{fd}") for fd in _listdir(f"/proc/{pid}/fd")]
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
            with open(f"/proc/{pid}/stat", "rb") as f:
                start = f.read().rsplit(b")", 1)[-1].split()[19].decode()
        except (OSError, IndexError):
            continue
        if SESSION_HELPERS.search(cmdline):
            continue
        if any(t == base or t.startswith(base + "/") for t in targets):
            found.add(f"{pid}:{start} {cmdline[:120]}")
    return found


def _wait_for_exit(entries: Iterable[str], timeout: float) -> None:
    for entry in entries:
        try:
            fd = os.pidfd_open(int(entry.split(":")[0]))
        except OSError:
            continue
        try:
            select.select([fd], [], [], timeout)
        finally:
            os.close(fd)


def _links(prefix: str) -> set[str]:
    if not prefix:
        return set()
    default = os.environ.get("IPYDOCK_DEFAULT_BRIDGE", "")
    return {n for n in _listdir("/sys/class/net") if n.startswith(prefix) and n != default}


def _rules(prefix: str) -> set[str]:
    """Rules of ipydock's chains naming a link of this run (its rules match interface groups,
    not names; only port rules and an older ipydock's rules name anything)."""
    if not prefix or os.geteuid() != 0 or shutil.which("iptables") is None:
        return set()
    default = os.environ.get("IPYDOCK_DEFAULT_BRIDGE", "")
    found = set()
    for table in ("mangle", "filter", "nat"):
        proc = subprocess.run(["iptables", "-w", "-t", table, "-S"], capture_output=True,
                              text=True, check=False)  # fmt: skip
        found |= {line for line in proc.stdout.splitlines()
                  if line.startswith("-A IPYDOCK") and prefix in line
                  and not (default and f" {default} " in f"{line} ")}  # fmt: skip
    return found


def _cgroups() -> set[str]:
    pid = os.getpid()
    found: set[str] = set()
    for top in ("/sys/fs/cgroup", *glob.glob("/sys/fs/cgroup/*/")):
        for parent in glob.glob(os.path.join(top, f"ipydock-*-{pid}-*")):
            for dirpath, _dirs, _files in os.walk(parent):
                if dirpath != parent:
                    found.add(dirpath)
    return found


def _dns() -> set[str]:
    run = os.environ.get("IPYDOCK_NET_RUN", "")
    if not run:
        return set()
    from ipydock.engine.network.bridge import BridgeState

    found = set()
    for name in _listdir(run):
        if name.endswith(".json"):
            device = name[: -len(".json")]
            try:
                endpoints = BridgeState(device).read()["Endpoints"]
            except (OSError, ValueError, KeyError):
                continue
            found |= {f"{device}: {cid[:12]}" for cid in endpoints}
    return found


def _temps(base: str) -> set[str]:
    from ipydock.engine.store.fsutil import owner_alive_in

    found = set()
    stores = glob.glob(os.path.join(base, "*", "*", "tmp")) + glob.glob(
        os.path.join(base, "*", "tmp")
    )
    for tmp in {os.path.realpath(t) for t in stores}:  # pytest's "…current" links: once
        if not os.path.exists(os.path.join(os.path.dirname(tmp), "oci-layout")):
            continue  # not a store
        found |= {os.path.join(tmp, n) for n in _listdir(tmp) if owner_alive_in(n) is False}
    return found
