"""Subordinate id ranges: more than one id inside a rootless user namespace, as Podman maps.

An unprivileged process may map only its own uid into a user namespace it creates. With a range
in ``/etc/subuid`` and ``/etc/subgid`` (``usermod --add-subuids 100000-165535 --add-subgids
100000-165535 USER``) the setuid helpers ``newuidmap``/``newgidmap`` (Debian's ``uidmap``) write
a bigger map for it, run from outside the namespace::

    inside             host
    0            <-->  the user's uid / gid
    1 .. 65536   <-->  the user's range (its first 65536 ids)

Then ``apt-get`` (which drops to ``_apt``), ``chown 1000`` and ``USER 1000`` work as under
root, and files a container writes as uid N > 0 belong on the host to ``range start + N - 1``.
Without a range (or without the helpers) only 0 is mapped: :func:`find` says why in
:attr:`Ranges.reason`.
"""

from __future__ import annotations

import functools
import os
import pwd
import shutil
import subprocess
from dataclasses import dataclass

__all__ = ["INSIDE_IDS", "Ranges", "find", "mapped_ids", "why_single", "write_maps"]

#: Ids 1..INSIDE_IDS map to the range (Podman's default: 65536, enough for nobody = 65534).
INSIDE_IDS = 65536


@dataclass(frozen=True)
class Ranges:
    """The mapping a rootless user namespace gets; ``uid_start`` 0 means only 0 is mapped."""

    uid: int
    gid: int
    uid_start: int = 0
    gid_start: int = 0
    count: int = 0
    reason: str = ""

    @property
    def usable(self) -> bool:
        return self.count > 0

    @property
    def mapped_ids(self) -> int:
        """How many ids, from 0, the namespace maps: 1, or 1 + the range."""
        return 1 + self.count

    def uid_map(self) -> tuple[tuple[int, int, int], ...]:
        return ((0, self.uid, 1), *(((1, self.uid_start, self.count),) if self.count else ()))

    def gid_map(self) -> tuple[tuple[int, int, int], ...]:
        return ((0, self.gid, 1), *(((1, self.gid_start, self.count),) if self.count else ()))

    def describe(self) -> str:
        """For ``info``: which mapping a container gets."""
        if not self.usable:
            return f"uid 0 -> {self.uid} only ({self.reason})"
        last = self.count
        return (f"uid 0 -> {self.uid}, 1-{last} -> {self.uid_start}-{self.uid_start + last - 1}"
                f"; gid 0 -> {self.gid}, 1-{last} -> {self.gid_start}-"
                f"{self.gid_start + last - 1}")  # fmt: skip


def find(uid: int | None = None, gid: int | None = None) -> Ranges:
    """The ranges of ``uid`` (default: this process's), checked: both files list the user, the
    ranges are large enough for a root filesystem, and the helpers are installed."""
    uid = os.geteuid() if uid is None else uid
    gid = os.getegid() if gid is None else gid
    from ipydock.engine.runtime.rootless import refusal

    return _find(uid, gid, refusal(), _mtime("/etc/subuid"), _mtime("/etc/subgid"))


@functools.cache
def _find(uid: int, gid: int, refused: str, _m1: float, _m2: float) -> Ranges:
    try:
        name = pwd.getpwuid(uid).pw_name
    except KeyError:
        name = str(uid)
    hint = (f"add one with: usermod --add-subuids 100000-165535 --add-subgids 100000-165535 "
            f"{name}")  # fmt: skip
    if uid == 0:
        return Ranges(uid, gid, reason="root maps every id")
    uids, gids = _listed("/etc/subuid", name, uid), _listed("/etc/subgid", name, uid)
    if not uids or not gids:
        return Ranges(uid, gid, reason=f"no /etc/subuid and /etc/subgid range for {name}; {hint}")
    count = min(uids[1], gids[1], INSIDE_IDS)
    if count < INSIDE_IDS:
        why = f"the range of {name} has {count} ids, fewer than {INSIDE_IDS}; {hint}"
        return Ranges(uid, gid, reason=why)
    if refused:
        return Ranges(uid, gid, reason=refused)
    if not (shutil.which("newuidmap") and shutil.which("newgidmap")):
        why = "newuidmap/newgidmap are not installed (Debian package uidmap)"
        return Ranges(uid, gid, reason=why)
    return Ranges(uid, gid, uids[0], gids[0], count)


def mapped_ids() -> int:
    """How many ids from 0 a rootless container gets: read from our own map when this
    process is already in the user's namespace (a supervisor's runner), else from the ranges
    it would get (:func:`find`)."""
    try:
        with open("/proc/self/uid_map") as f:
            rows = [tuple(int(n) for n in line.split()) for line in f if line.strip()]
    except (OSError, ValueError):
        rows = []
    if rows and rows != [(0, 0, 4294967295)]:  # inside a user namespace
        return max(inside + count for inside, _outside, count in rows)
    return find().mapped_ids


def why_single() -> str:
    """Why a rootless container gets uid 0 alone (:attr:`Ranges.reason`: no range, a short
    one, no newuidmap, user namespaces refused), for the error of an operation that needs
    other ids. Inside the user's namespace already (a supervisor), for the user its map
    shows as 0; ``""`` when that map has more than one id."""
    rows = {name: _map_rows(f"/proc/self/{name}") for name in ("uid_map", "gid_map")}
    if rows["uid_map"] in ([], [(0, 0, 4294967295)]):
        return find().reason
    if len(rows["uid_map"]) == 1 and len(rows["gid_map"]) == 1:
        return find(rows["uid_map"][0][1], rows["gid_map"][0][1]).reason
    return ""


def _map_rows(path: str) -> list[tuple[int, ...]]:
    try:
        with open(path) as f:
            return [tuple(int(n) for n in line.split()) for line in f if line.strip()]
    except (OSError, ValueError):
        return []


def _listed(path: str, name: str, uid: int) -> tuple[int, int] | None:
    """The first range of ``name`` (or its uid) in ``path``: (start, count)."""
    try:
        with open(path) as f:
            for line in f:
                fields = line.strip().split(":")
                if len(fields) == 3 and fields[0] in (name, str(uid)):
                    with_count = int(fields[1]), int(fields[2])
                    if with_count[1] > 0:
                        return with_count
    except (OSError, ValueError):
        pass
    return None


def _mtime(path: str) -> float:
    try:
        return os.stat(path).st_mtime
    except OSError:
        return 0.0


def write_maps(pid: int, ranges: Ranges) -> None:
    """Run ``newuidmap``/``newgidmap`` for process ``pid`` (which just made its user
    namespace); call from outside that namespace. OSError with the helper's words on failure."""
    for tool, mapping in (("newuidmap", ranges.uid_map()), ("newgidmap", ranges.gid_map())):
        argv = [tool, str(pid), *(str(n) for entry in mapping for n in entry)]
        proc = subprocess.run(argv, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise OSError(1, f"{tool} failed: {proc.stderr.strip() or proc.returncode}")
