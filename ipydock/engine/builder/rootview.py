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

from ipydock.commands.dockerignore import IgnoreRules
from ipydock.engine.store.layerview import LayerView

__all__ = ["ContextView", "RootView", "lookup_user"]


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
    through it gives the digest the packed context would give (see ``context.py``)."""

    def __init__(self, top: str, rules: IgnoreRules) -> None:
        super().__init__([top])
        self.top, self.rules = top, rules
        # The context is one snapshot for the whole build (as the client's tar is): what was
        # looked up once is not looked up again (a COPY of a tree asks for each entry often).
        self._found: dict[str, str | None] = {}
        self._stats: dict[str, os.stat_result] = {}

    def stat_path(self, path: str) -> os.stat_result:
        st = self._stats.get(path)
        if st is None:
            st = self._stats[path] = os.lstat(path)
        return st

    def find(self, rel: str) -> str | None:
        if rel in self._found:
            return self._found[rel]
        path = self._found[rel] = self._find(rel)
        return path

    def _find(self, rel: str) -> str | None:
        path = super().find(rel)
        clean = "/".join(p for p in rel.split("/") if p)
        if path is None or not clean:
            return path
        mode = self.stat_path(path).st_mode
        if stat.S_ISSOCK(mode):
            return None
        excluded = bool(self.rules) and self.rules.excluded(clean)
        if excluded and not (stat.S_ISDIR(mode) and self._keeps_below(clean)):
            return None
        return path

    def _keeps_below(self, rel: str) -> bool:
        if not self.rules.may_include_below(rel):
            return False
        return any(self.find(f"{rel}/{name}") is not None for name in super().listdir(rel))

    def listdir(self, rel: str) -> list[str]:
        names = super().listdir(rel)
        prefix = "/".join(p for p in rel.split("/") if p)
        return [n for n in names if self.find(f"{prefix}/{n}" if prefix else n) is not None]

    def entry_stat(self, rel: str, path: str) -> os.stat_result:
        st = self.stat_path(path)
        clean = "/".join(p for p in rel.split("/") if p)
        mode = st.st_mode
        if stat.S_ISDIR(mode) and (not clean or (self.rules and self.rules.excluded(clean))):
            mode = stat.S_IFDIR | 0o755
        return os.stat_result((mode, st.st_ino, st.st_dev, st.st_nlink, 0, 0, st.st_size,
                               st.st_atime, st.st_mtime, st.st_ctime))  # fmt: skip
