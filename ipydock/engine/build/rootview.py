"""Read-only lookups in an image's root filesystem without mounting it.

When: COPY/ADD/WORKDIR need to know what already exists at the destination (to follow symlinks
in the path, to copy ancestors' metadata into the new layer, to read ``/etc/passwd`` for
``--chown``/``USER`` names). Works on the snapshot dirs the driver gives for a chain: overlay
layers (whiteouts as 0/0 char devices, opaque dirs) or one full vfs root.

::

    lower dirs, bottom first:  [base/, l2/, l3/]
    lstat("etc/passwd")  -> looks in l3, l2, base (a whiteout or opaque dir stops the search)
    resolve("/bin/x")    -> follows symlinks in the path, never above the root
"""

from __future__ import annotations

import os
import posixpath
import stat

from ipydock.engine.store.layertar import OPAQUE_XATTR, is_overlay_whiteout

__all__ = ["RootView"]

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


def listdir(view: RootView, rel: str) -> list[str]:
    """Names in directory ``rel`` across the layers (whiteouts and opaque dirs honoured)."""
    parts = [p for p in rel.split("/") if p]
    names: dict[str, bool] = {}
    for layer in view.top_first:
        path = os.path.join(layer, *parts) if parts else layer
        try:
            st = os.lstat(path)
        except OSError:
            if view._hidden(layer, parts):  # noqa: SLF001 - same module family
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
