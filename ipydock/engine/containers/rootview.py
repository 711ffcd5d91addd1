"""Read a container's or image's files from its layer dirs without mounting anything.

Used where no mount namespace is at hand (a kernel is multi-threaded and cannot unshare one):
seeding a new volume from the image, looking up users in ``/etc/passwd``, ``cp`` out of a
stopped container, ``diff``. Layers are given top first; an overlay whiteout (a 0/0 char
device) hides a name in the layers below, an opaque directory hides everything below it::

    upper   etc/passwd   tmp/(opaque)   gone (whiteout)
    lower2  etc/group    tmp/old        gone
    lower1  etc/passwd   bin/sh
    view:   etc/passwd (upper), etc/group, tmp/ (empty), bin/sh
"""

from __future__ import annotations

import os
import stat

from ipydock.engine.store.layerfmt import OPAQUE_XATTR, is_overlay_whiteout

__all__ = ["copy_out", "exists", "find", "listdir", "read_text"]


def _opaque(path: str) -> bool:
    try:
        return os.getxattr(path, OPAQUE_XATTR, follow_symlinks=False) == b"y"
    except OSError:
        return False


def find(layers: list[str], rel: str) -> str | None:
    """The host path that provides ``rel`` in the merged view, or None if it is absent."""
    rel = rel.strip("/")
    parts = rel.split("/") if rel else []
    for layer in layers:
        path = os.path.join(layer, rel) if rel else layer
        try:
            st = os.lstat(path)
        except (FileNotFoundError, NotADirectoryError):
            if _hidden_below(layer, parts):
                return None
            continue
        if is_overlay_whiteout(st):
            return None
        return path
    return None


def _hidden_below(layer: str, parts: list[str]) -> bool:
    """A parent of the path is whited out or opaque in ``layer``: lower layers do not count."""
    path = layer
    for part in parts[:-1]:
        path = os.path.join(path, part)
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return False
        if is_overlay_whiteout(st) or not stat.S_ISDIR(st.st_mode):
            return True
        if _opaque(path):
            return True
    return False


def exists(layers: list[str], rel: str) -> bool:
    return find(layers, rel) is not None


def read_text(layers: list[str], rel: str) -> str | None:
    path = find(layers, rel)
    if path is None or not os.path.isfile(path):
        return None
    with open(path, errors="replace") as f:
        return f.read()


def listdir(layers: list[str], rel: str) -> dict[str, str]:
    """Name -> host path of each entry of directory ``rel`` in the merged view."""
    rel = rel.strip("/")
    found: dict[str, str] = {}
    hidden: set[str] = set()
    for layer in layers:
        path = os.path.join(layer, rel) if rel else layer
        if not os.path.isdir(path) or os.path.islink(path):
            if os.path.lexists(path) or _hidden_below(layer, rel.split("/")):
                break
            continue
        for name in os.listdir(path):
            if name in found or name in hidden:
                continue
            child = os.path.join(path, name)
            if is_overlay_whiteout(os.lstat(child)):
                hidden.add(name)
            else:
                found[name] = child
        if _opaque(path):
            break
    return found


def copy_out(layers: list[str], rel: str, dest: str) -> None:
    """Copy the merged tree at ``rel`` to the new path ``dest``, keeping modes and owners."""
    import shutil  # on use: it imports the compressors, and the CLI must start fast

    src = find(layers, rel)
    if src is None:
        raise FileNotFoundError(rel)
    st = os.lstat(src)
    if not stat.S_ISDIR(st.st_mode):
        shutil.copy2(src, dest, follow_symlinks=False)
        _own(src, dest)
        return
    os.mkdir(dest, stat.S_IMODE(st.st_mode))
    for name in sorted(listdir(layers, rel)):
        copy_out(layers, f"{rel.strip('/')}/{name}", os.path.join(dest, name))
    shutil.copystat(src, dest)
    _own(src, dest)


def _own(src: str, dest: str) -> None:
    st = os.lstat(src)
    os.lchown(dest, st.st_uid, st.st_gid)
