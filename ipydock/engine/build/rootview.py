"""Read-only lookups in an image's root filesystem without mounting it.

When: COPY/ADD/WORKDIR need to know what already exists at the destination (to follow symlinks
in the path, to copy ancestors' metadata into the new layer, to read ``/etc/passwd`` for
``--chown``/``USER`` names). Works on the snapshot dirs the driver gives for a chain: overlay
layers (whiteouts as 0/0 char devices, opaque dirs) or one full vfs root.

::

    lower dirs, bottom first:  [base/, l2/, l3/]
    lstat("etc/passwd")  -> looks in l3, l2, base (a whiteout or opaque dir stops the search)
    resolve("/bin/x")    -> follows symlinks in the path, never above the root

    ContextView(dir, .dockerignore rules): a directory build context read in place, as its
    packed form shows it (ignored entries and sockets absent, owners 0:0), so a cached
    COPY is hashed without copying the context first.
"""

from __future__ import annotations

import os
import posixpath
import stat

from ipydock.engine.build.ignore import IgnoreRules
from ipydock.engine.store.layertar import OPAQUE_XATTR, is_overlay_whiteout

__all__ = ["ContextView", "RootView", "lookup_user"]

_MAX_LINKS = 40


class RootView:
    def __init__(self, lower: list[str]) -> None:
        self.top_first = list(reversed(lower))

    def find(self, rel: str) -> str | None:
        """The host path of ``rel`` (no leading ``/``) in the topmost layer that has it."""
        parts = [p for p in rel.split("/") if p]
        for layer in self.top_first:
            path = os.path.join(layer, *parts) if parts else layer
            try:
                st = os.lstat(path)
            except OSError:
                if self._hidden(layer, parts):
                    return None
                continue
            if is_overlay_whiteout(st):
                return None
            return path
        return None

    def _hidden(self, layer: str, parts: list[str]) -> bool:
        """True when a parent of ``parts`` in ``layer`` is opaque, a whiteout or not a dir."""
        path = layer
        for part in parts[:-1]:
            path = os.path.join(path, part)
            try:
                st = os.lstat(path)
            except OSError:
                return False
            if is_overlay_whiteout(st) or not stat.S_ISDIR(st.st_mode):
                return True
            try:
                if os.getxattr(path, OPAQUE_XATTR, follow_symlinks=False) == b"y":
                    return True
            except OSError:
                pass
        return False

    def lstat(self, rel: str) -> os.stat_result | None:
        path = self.find(rel)
        return os.lstat(path) if path else None

    def resolve(self, path: str, *, follow_last: bool = True) -> str:
        """``path`` (absolute, in the image) with symlinks in it followed inside the root;
        returns a clean relative path (``""`` for the root)."""
        todo = [p for p in path.split("/") if p]
        done: list[str] = []
        links = 0
        while todo:
            part = todo.pop(0)
            if part == ".":
                continue
            if part == "..":
                if done:
                    done.pop()
                continue
            rel = "/".join([*done, part])
            st = self.lstat(rel)
            if st is not None and stat.S_ISLNK(st.st_mode) and (todo or follow_last):
                links += 1
                if links > _MAX_LINKS:
                    raise OSError(40, "too many levels of symbolic links", path)
                target = os.readlink(self.find(rel) or "")
                if target.startswith("/"):
                    done = []
                todo = [p for p in target.split("/") if p] + todo
                continue
            done.append(part)
        return posixpath.join(*done) if done else ""

    def listdir(self, rel: str) -> list[str]:
        """Names in directory ``rel`` across the layers (whiteouts and opaque dirs honoured)."""
        parts = [p for p in rel.split("/") if p]
        names: dict[str, bool] = {}
        for layer in self.top_first:
            path = os.path.join(layer, *parts) if parts else layer
            try:
                st = os.lstat(path)
            except OSError:
                if self._hidden(layer, parts):
                    break
                continue
            if not stat.S_ISDIR(st.st_mode):
                break
            with os.scandir(path) as it:
                for entry in it:
                    if entry.name not in names:
                        names[entry.name] = is_overlay_whiteout(entry.stat(follow_symlinks=False))
            try:
                if os.getxattr(path, OPAQUE_XATTR, follow_symlinks=False) == b"y":
                    break
            except OSError:
                pass
        return sorted(n for n, whiteout in names.items() if not whiteout)

    def entry_stat(self, rel: str, path: str) -> os.stat_result:
        """The metadata ``rel`` (found at ``path``) has in this view: what a COPY hashes."""
        return os.lstat(path)

    def read_text(self, rel: str) -> str:
        path = self.find(self.resolve("/" + rel))
        if path is None or not os.path.isfile(path):
            return ""
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()


def lookup_user(view: RootView, spec: str, *, chown: bool = False) -> tuple[int, int]:
    """``user[:group]`` (names or numbers) -> ``(uid, gid)`` from the image's passwd/group.

    For ``USER`` a missing group means the user's primary group (0 for a numeric uid not in
    passwd); for ``--chown`` (``chown=True``) it means the group of the same name or number, as
    Docker's classic builder does. Raises KeyError naming what is unknown.
    """
    user, _, group = spec.partition(":")
    passwd = _table(view.read_text("etc/passwd"))
    uid, primary = _resolve(user, passwd, "user")
    if group or chown:
        gid, _ = _resolve(group or user, _table(view.read_text("etc/group")), "group")
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

    def find(self, rel: str) -> str | None:
        path = super().find(rel)
        clean = "/".join(p for p in rel.split("/") if p)
        if path is None or not clean:
            return path
        mode = os.lstat(path).st_mode
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
        st = os.lstat(path)
        clean = "/".join(p for p in rel.split("/") if p)
        mode = st.st_mode
        if stat.S_ISDIR(mode) and (not clean or (self.rules and self.rules.excluded(clean))):
            mode = stat.S_IFDIR | 0o755
        return os.stat_result((mode, st.st_ino, st.st_dev, st.st_nlink, 0, 0, st.st_size,
                               st.st_atime, st.st_mtime, st.st_ctime))  # fmt: skip
