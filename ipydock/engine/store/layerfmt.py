"""What the layer tar readers and writers share: whiteout names, sizes, kept xattrs.

Sizes follow Docker's DiffSize (``pkg/directory`` as used by overlay2): the bytes of regular
files and symlinks (a symlink's size is its target's length), each hardlinked inode once;
directories, devices and whiteouts count 0.
"""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass

__all__ = [
    "CHUNK",
    "NO_SPACE",
    "OPAQUE_MARKER",
    "OPAQUE_XATTR",
    "WHITEOUT_META_PREFIX",
    "WHITEOUT_PREFIX",
    "XATTR_PAX",
    "ApplyResult",
    "SizeCounter",
    "diff_size",
    "is_opaque",
    "is_overlay_whiteout",
    "marker",
    "kept_xattrs",
    "opaque_xattr",
]

from ipydock.layerwalk import OPAQUE_MARKER, WHITEOUT_PREFIX  # noqa: E402  (one definition)

WHITEOUT_META_PREFIX = ".wh..wh."
OPAQUE_XATTR = "trusted.overlay.opaque"
#: Rootless overlay (mounted with ``userxattr`` in the user's namespace) keeps its metadata in
#: ``user.overlay.*``: an opaque dir is marked there, and no such xattr belongs to a layer.
USER_OVERLAY_PREFIX = "user.overlay."
USER_OPAQUE_XATTR = USER_OVERLAY_PREFIX + "opaque"
#: fuse-overlayfs's own metadata (it marks opaque dirs here too): never part of a layer.
FUSE_OVERLAY_PREFIX = "user.fuseoverlayfs."
#: fuse-overlayfs marks an opaque dir with this 0/0 device (where mknod works) beside the
#: ``.wh..wh..opq`` file it always writes.
FUSE_OPAQUE_DEVICE = ".wh..opq"
XATTR_PAX = "SCHILY.xattr."
CHUNK = 1 << 20
NO_SPACE = (errno.ENOSPC, errno.EDQUOT)


@dataclass(frozen=True)
class ApplyResult:
    """What a layer adds: ``size`` in bytes as Docker's DiffSize, ``entries`` tar entries."""

    size: int
    entries: int


class SizeCounter:
    """Adds up DiffSize over ``lstat`` results: regular files and symlinks, hardlinks once."""

    def __init__(self) -> None:
        self.total = 0
        self._seen: set[tuple[int, int]] = set()

    def add(self, st: os.stat_result) -> None:
        if st.st_size == 0 or not (stat.S_ISREG(st.st_mode) or stat.S_ISLNK(st.st_mode)):
            return
        if st.st_nlink > 1:
            key = (st.st_dev, st.st_ino)
            if key in self._seen:
                return
            self._seen.add(key)
        self.total += st.st_size


def is_overlay_whiteout(st: os.stat_result) -> bool:
    """True for overlayfs's whiteout: a character device numbered 0/0."""
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def marker(name: str, st: os.stat_result) -> tuple[str, str] | None:
    """What a snapshot or upper-dir entry marks, if anything: ``("whiteout", NAME)`` or
    ``("opaque", "")`` for its directory.

    overlayfs writes a whiteout as a 0/0 char device named NAME; fuse-overlayfs (and the
    fuse-overlayfs driver's snapshots, made where mknod may be refused) also as an empty file
    ``.wh.NAME``, and an opaque dir as a ``.wh..wh..opq`` file (plus a 0/0 ``.wh..opq``)."""
    if is_overlay_whiteout(st):
        return ("opaque", "") if name == FUSE_OPAQUE_DEVICE else ("whiteout", name)
    if name.startswith(WHITEOUT_PREFIX) and stat.S_ISREG(st.st_mode):
        if name == OPAQUE_MARKER:
            return ("opaque", "")
        return ("whiteout", name[len(WHITEOUT_PREFIX) :])
    return None


def kept_xattrs(path: str) -> dict[str, bytes]:
    """The xattrs a layer records for ``path``: ``security.capability`` and ``user.*`` but
    overlayfs's own ``user.overlay.*`` (rootless)."""
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError as e:
        if e.errno in (errno.ENOTSUP, errno.EPERM):
            return {}
        raise
    wanted = sorted(n for n in names if n == "security.capability" or _user_data(n))
    return {n: os.getxattr(path, n, follow_symlinks=False) for n in wanted}


def _user_data(name: str) -> bool:
    return name.startswith("user.") and not name.startswith(
        (USER_OVERLAY_PREFIX, FUSE_OVERLAY_PREFIX)
    )


def is_opaque(path: str) -> bool:
    """An overlay opaque dir: ``trusted.overlay.opaque``, or rootless ``user.overlay.opaque``,
    or fuse-overlayfs's ``.wh..wh..opq`` file in it."""
    names = (OPAQUE_XATTR,) if os.geteuid() == 0 else (OPAQUE_XATTR, USER_OPAQUE_XATTR)
    for name in names:
        try:
            if os.getxattr(path, name, follow_symlinks=False) == b"y":
                return True
        except OSError:
            pass
    try:
        return stat.S_ISREG(os.lstat(os.path.join(path, OPAQUE_MARKER)).st_mode)
    except OSError:
        return False


def opaque_xattr() -> str:
    """The xattr that marks an opaque dir in this process's snapshots (rootless: ``user.``)."""
    return OPAQUE_XATTR if os.geteuid() == 0 else USER_OPAQUE_XATTR


def diff_size(path: str) -> int:
    """DiffSize of snapshot directory ``path`` (see the module docstring), for ``history``."""
    try:
        return _diff_size(path)
    except PermissionError:
        from ipydock.engine.store import userns

        if not userns.delegates():
            raise
        return int(userns.call("ipydock.engine.store.layerfmt:diff_size", path))  # id ranges


def _diff_size(path: str) -> int:
    sizes = SizeCounter()
    stack = [path]
    while stack:
        with os.scandir(stack.pop()) as it:
            for e in it:
                st = e.stat(follow_symlinks=False)
                if stat.S_ISDIR(st.st_mode):
                    stack.append(e.path)
                else:
                    sizes.add(st)
    return sizes.total
