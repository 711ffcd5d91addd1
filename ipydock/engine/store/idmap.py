"""Whose files these are: host ids as a container (and a layer tar) sees them, rootless.

Root stores keep the archive's ids on disk as they are. An unprivileged user's store holds
files owned by the user (and, with subordinate ids, by its range); inside the user namespace
of a container or build step they are 0 and the container's other ids. A layer tar records
the ids inside, so what a rootless build writes is owned by ``0:0`` in the image, as docker's
rootless mode and Podman record it::

    host (store on disk)            inside (containers, layer tars)
    user's uid / gid        <-->    0
    its subordinate range   <-->    1..65536 (when it has one, see ``runtime.idranges``)
    anything else           -->     65534 (the kernel's overflow id for an unmapped one)

One map per process, from its effective ids (a process does not change users midway).
"""

from __future__ import annotations

import contextlib
import functools
import os
import stat
import threading
from dataclasses import dataclass
from typing import Any

__all__ = [
    "OVERFLOW_ID",
    "IdMap",
    "chown_all",
    "current",
    "flush",
    "host_root",
    "lchown_inside",
]

#: What a user namespace shows for an id it does not map (``/proc/sys/kernel/overflowuid``).
OVERFLOW_ID = 65534


@dataclass(frozen=True)
class IdMap:
    """Ranges ``(inside, outside, count)`` as in ``/proc/PID/uid_map``; empty = identity."""

    uids: tuple[tuple[int, int, int], ...] = ()
    gids: tuple[tuple[int, int, int], ...] = ()

    @property
    def identity(self) -> bool:
        return not self.uids and not self.gids

    def inside(self, uid: int, gid: int) -> tuple[int, int]:
        """The ids a container sees for a host file owned by ``uid:gid``."""
        if self.identity:
            return uid, gid
        return _inside(self.uids, uid), _inside(self.gids, gid)


def _inside(ranges: tuple[tuple[int, int, int], ...], host: int) -> int:
    for inside, outside, count in ranges:
        if outside <= host < outside + count:
            return inside + host - outside
    return OVERFLOW_ID


@functools.cache
def _for(euid: int, egid: int) -> IdMap:
    if euid == 0:
        return IdMap()
    from ipydock.engine.runtime.idranges import find

    ranges = find(euid, egid)
    return IdMap(ranges.uid_map(), ranges.gid_map())


def current() -> IdMap:
    """This process's map: identity for root; otherwise the user's own ids as 0 and, with
    subordinate ranges, the range as 1..65536 (see ``runtime.idranges``)."""
    return _for(os.geteuid(), os.getegid())


def host_root() -> tuple[int, int]:
    """The host ids that are ``0:0`` inside: root's, or the unprivileged user's own."""
    return (0, 0) if os.geteuid() == 0 else (os.geteuid(), os.getegid())


def lchown_inside(path: str, uid: int, gid: int) -> None:
    """Give ``path`` the owner ``uid:gid`` as a container sees it. Rootless, ``0:0`` is the
    user's own ids; with subordinate ids the others are given in the user's namespace at
    :func:`flush` (one worker for all); without, they stay the user's (the file then reads as
    root's inside), as Docker's rootless extraction does."""
    if os.geteuid() == 0:
        os.lchown(path, uid, gid)
        return
    root_uid, root_gid = host_root()
    if (uid, gid) != (0, 0):
        from ipydock.engine.store import userns

        if userns.delegates():
            _pending().append((path, uid, gid))
            return
    with contextlib.suppress(PermissionError):
        os.lchown(path, root_uid if uid == 0 else uid, root_gid if gid == 0 else gid)


_local = threading.local()


def _pending() -> list[tuple[str, int, int]]:
    if not hasattr(_local, "pending"):
        _local.pending = []
    return _local.pending  # type: ignore[no-any-return]


def flush() -> None:
    """Give the owners :func:`lchown_inside` put off (this thread's), in the user's namespace."""
    pending = _pending()
    if pending:
        from ipydock.engine.store import userns

        _local.pending = []
        userns.call("ipydock.engine.store.idmap:chown_all", pending)


def chown_all(entries: list[list[Any]]) -> None:
    """In the user's namespace: ``lchown`` each ``[path, uid, gid]``, keeping its mode (a
    chown clears setuid/setgid bits)."""
    for path, uid, gid in entries:
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            continue  # left by a COPY that failed before its flush
        os.lchown(path, uid, gid)
        if not stat.S_ISLNK(st.st_mode):
            os.chmod(path, stat.S_IMODE(st.st_mode))
