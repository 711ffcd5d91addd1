"""Read the merged view of a stack of layer directories without mounting anything.

When: a kernel is multi-threaded and cannot unshare a mount namespace, yet the builder (what
exists at a COPY destination, ``/etc/passwd`` for ``USER``) and the container engine (seeding a
volume from the image, ``cp`` out of a stopped container, ``diff``) must see an image's files.
Works on overlay snapshot dirs (whiteouts as 0/0 char devices or fuse-overlayfs's ``.wh.`` files,
opaque dirs) and on one full vfs root alike::

    top     etc/passwd   tmp/(opaque)   gone (whiteout)
    middle  etc/group    tmp/old        gone
    bottom  etc/passwd   bin/sh
    view:   etc/passwd (top), etc/group, tmp/ (empty), bin/sh

Paths are relative to the root (``"etc/passwd"``; ``""`` is the root itself).
"""

from __future__ import annotations

import os
import posixpath
import stat

from ipydock.engine.store.layerfmt import WHITEOUT_PREFIX, is_opaque, is_overlay_whiteout, marker

__all__ = ["LayerView"]

_MAX_LINKS = 40


class LayerView:
    """The merged view of ``lower`` (layer dirs, bottom first, as overlayfs stacks them)."""

    def __init__(self, lower: list[str]) -> None:
        self.top_first = list(reversed(lower))

    @classmethod
    def from_top(cls, layers: list[str]) -> LayerView:
        """A view of layer dirs given top first (a container's upper dir, then the image's)."""
        return cls(list(reversed(layers)))

    def find(self, rel: str) -> str | None:
        """The host path that provides ``rel``, or None when it is absent or whited out."""
        parts = [p for p in rel.split("/") if p]
        for layer in self.top_first:
            path = os.path.join(layer, *parts) if parts else layer
            try:
                st = os.lstat(path)
            except OSError:
                if _hidden(layer, parts) or self._whited_out(layer, parts):
                    return None
                continue
            return None if is_overlay_whiteout(st) else path
        return None

    def _whited_out(self, layer: str, parts: list[str]) -> bool:
        """fuse-overlayfs's form: a ``.wh.NAME`` file beside where ``parts`` would be."""
        if not parts:
            return False
        return os.path.isfile(os.path.join(layer, *parts[:-1], WHITEOUT_PREFIX + parts[-1]))

    def exists(self, rel: str) -> bool:
        return self.find(rel) is not None

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

    def entries(self, rel: str) -> dict[str, str]:
        """Name -> host path of each entry of directory ``rel`` (whiteouts, opaque honoured)."""
        parts = [p for p in rel.split("/") if p]
        found: dict[str, str] = {}
        hidden: set[str] = set()
        for layer in self.top_first:
            path = os.path.join(layer, *parts) if parts else layer
            try:
                st = os.lstat(path)
            except OSError:
                if _hidden(layer, parts):
                    break
                continue
            if not stat.S_ISDIR(st.st_mode):
                break
            with os.scandir(path) as it:
                for entry in it:
                    if entry.name in found or entry.name in hidden:
                        continue
                    mark = marker(entry.name, entry.stat(follow_symlinks=False))
                    if mark is None:
                        found[entry.name] = entry.path
                    elif mark[0] == "whiteout":
                        hidden.add(mark[1])
            if is_opaque(path):
                break
        return found

    def listdir(self, rel: str) -> list[str]:
        return sorted(self.entries(rel))

    def read_text(self, rel: str) -> str | None:
        """A regular file's text (symlinks in the path followed inside the root), or None."""
        path = self.find(self.resolve("/" + rel))
        if path is None or not os.path.isfile(path):
            return None
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()

    def copy_out(self, rel: str, dest: str) -> None:
        """Copy the merged tree at ``rel`` to the new path ``dest``, keeping modes and owners."""
        import shutil  # on use: it imports the compressors, and the CLI must start fast

        src = self.find(rel)
        if src is None:
            raise FileNotFoundError(rel)
        st = os.lstat(src)
        if not stat.S_ISDIR(st.st_mode):
            shutil.copy2(src, dest, follow_symlinks=False)
            os.lchown(dest, st.st_uid, st.st_gid)
            return
        os.mkdir(dest, stat.S_IMODE(st.st_mode))
        for name in self.listdir(rel):
            self.copy_out(f"{rel.strip('/')}/{name}", os.path.join(dest, name))
        shutil.copystat(src, dest)
        os.lchown(dest, st.st_uid, st.st_gid)


def _hidden(layer: str, parts: list[str]) -> bool:
    """A parent of ``parts`` in ``layer`` is a whiteout, opaque or not a directory: the layers
    below do not count for this path."""
    path = layer
    for part in parts[:-1]:
        path = os.path.join(path, part)
        try:
            st = os.lstat(path)
        except OSError:
            prefix, name = os.path.split(path)
            return os.path.isfile(os.path.join(prefix, WHITEOUT_PREFIX + name))  # fuse's form
        if is_overlay_whiteout(st) or not stat.S_ISDIR(st.st_mode) or is_opaque(path):
            return True
    return False
