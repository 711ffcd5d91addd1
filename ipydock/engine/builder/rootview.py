"""Read-only lookups in an image's root filesystem without mounting it.

When: COPY/ADD/WORKDIR need to know what already exists at the destination (to follow symlinks
in the path, to copy ancestors' metadata into the new layer, to read ``/etc/passwd`` for
``--chown``/``USER`` names). Works on the snapshot dirs the driver gives for a chain: overlay
layers (whiteouts as 0/0 char devices, opaque dirs) or one full vfs root.

::

    RootView(lower dirs, bottom first): the merged view (store.layerview.LayerView), plus
    the metadata a COPY hashes

    ContextView(dir, .dockerignore rules): a directory build context read in place, as its
    packed form shows it (ignored entries and sockets absent, owners 0:0), so a cached
    COPY is hashed without copying the context first.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable

from ipydock.commands.dockerignore import IgnoreRules, walk
from ipydock.engine.store.layerview import LayerView

__all__ = ["ContextView", "RootView", "lookup_user"]

#: One entry of a context walk: (path relative to the context, host path, lstat).
Entry = tuple[str, str, os.stat_result]


class RootView(LayerView):
    """An image's root filesystem as the builder reads it (see :class:`LayerView`)."""

    def entry_stat(self, rel: str, path: str) -> os.stat_result:
        """The metadata ``rel`` (found at ``path``) has in this view: what a COPY hashes."""
        return self.stat_path(path)

    def stat_path(self, path: str) -> os.stat_result:
        """``lstat`` of a host path this view found."""
        return os.lstat(path)


def lookup_user(view: RootView, spec: str, *, chown: bool = False) -> tuple[int, int]:
    """``user[:group]`` (names or numbers) -> ``(uid, gid)`` from the image's passwd/group.

    For ``USER`` a missing group means the user's primary group (0 for a numeric uid not in
    passwd); for ``--chown`` (``chown=True``) it means the group of the same name or number, as
    Docker's classic builder does. Raises KeyError naming what is unknown.
    """
    user, _, group = spec.partition(":")
    passwd = _table(view.read_text("etc/passwd") or "")
    uid, primary = _resolve(user, passwd, "user")
    if group or chown:
        gid, _ = _resolve(group or user, _table(view.read_text("etc/group") or ""), "group")
    else:
        gid = primary
    return uid, gid


def _table(text: str) -> dict[str, tuple[int, int]]:
    out = {}
    for line in text.splitlines():
        fields = line.split(":")
        if len(fields) >= 3 and fields[2].isdigit():
            gid = int(fields[3]) if len(fields) > 3 and fields[3].isdigit() else int(fields[2])
            out[fields[0]] = (int(fields[2]), gid)
    return out


def _resolve(name: str, table: dict[str, tuple[int, int]], what: str) -> tuple[int, int]:
    if name.isdigit():
        number = int(name)
        for uid, gid in table.values():
            if uid == number:
                return uid, gid
        return number, 0
    if name in table:
        return table[name]
    raise KeyError(f"unable to find {what} {name}: no matching entries in {what} file")


class ContextView(RootView):
    """A directory build context read in place, showing what the client's tar would carry:
    no entry ``.dockerignore`` leaves out (except dirs kept for re-included entries below,
    which the engine creates 0755), no sockets, owners 0:0, the root 0755. Hashing a COPY
    through it gives the digest the packed context would give (see ``context.py``).

    The context is one snapshot for the whole build, as the client's tar is: ``listing`` (the
    ``dockerignore.walk`` made when the build measured it) is indexed once, and every lookup
    after that is a dict lookup, not a system call."""

    def __init__(
        self, top: str, rules: IgnoreRules, listing: Iterable[Entry] | None = None
    ) -> None:
        super().__init__([top])
        self.top, self.rules = top, rules
        self._paths: dict[str, str] = {"": top}
        self._stats: dict[str, os.stat_result] = {top: os.lstat(top)}
        self._children: dict[str, list[str]] = {"": []}
        self._kept: set[str] = {""}  # dirs shown 0755: the root, excluded ones kept for below
        for rel, path, st in walk(top, rules) if listing is None else listing:
            if not stat.S_ISSOCK(st.st_mode):
                self._add(rel, path, st)

    def _add(self, rel: str, path: str, st: os.stat_result) -> None:
        parent, _, name = rel.rpartition("/")
        if parent not in self._paths:  # an excluded dir, kept for what is re-included below
            self._add(parent, os.path.dirname(path), os.lstat(os.path.dirname(path)))
            self._kept.add(parent)
        self._paths[rel] = path
        self._stats[path] = st
        self._children[parent].append(name)
        if stat.S_ISDIR(st.st_mode):
            self._children[rel] = []

    def stat_path(self, path: str) -> os.stat_result:
        st = self._stats.get(path)
        return os.lstat(path) if st is None else st

    def find(self, rel: str) -> str | None:
        return self._paths.get("/".join(p for p in rel.split("/") if p))

    def lstat(self, rel: str) -> os.stat_result | None:
        path = self.find(rel)
        return None if path is None else self._stats[path]

    def entries(self, rel: str) -> dict[str, str]:
        clean = "/".join(p for p in rel.split("/") if p)
        names = self._children.get(clean, [])
        return {n: self._paths[f"{clean}/{n}" if clean else n] for n in names}

    def listdir(self, rel: str) -> list[str]:
        return sorted(self._children.get("/".join(p for p in rel.split("/") if p), []))

    def entry_stat(self, rel: str, path: str) -> os.stat_result:
        st = self.stat_path(path)
        mode = st.st_mode
        if stat.S_ISDIR(mode) and "/".join(p for p in rel.split("/") if p) in self._kept:
            mode = stat.S_IFDIR | 0o755
        fields = (mode, st.st_ino, st.st_dev, st.st_nlink, 0, 0, *tuple(st)[6:])
        extra = {"st_atime_ns": st.st_atime_ns, "st_mtime_ns": st.st_mtime_ns,
                 "st_ctime_ns": st.st_ctime_ns, "st_rdev": st.st_rdev}  # fmt: skip
        return os.stat_result(fields, extra)
