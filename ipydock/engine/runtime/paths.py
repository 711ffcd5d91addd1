"""Resolve a container path under a host directory without escaping it (like securejoin).

An image may hold symlinks such as ``/etc -> /`` or ``/proc -> ../../host``; mounting on the
naive ``root + target`` would then mount on the host. :func:`secure_join` walks the path one
component at a time, reading symlinks itself and treating the root as ``/``, so ``..`` and
absolute links stay inside. Used by the spawner before ``pivot_root``, while it still sees both
trees; the race with a concurrent writer to the image is out of scope (nothing else runs in the
container yet).
"""

from __future__ import annotations

import os
import stat

__all__ = ["ensure_target", "secure_join"]

_MAX_LINKS = 255


def secure_join(root: str, path: str) -> str:
    """The host path of container ``path`` under ``root``; missing parts are kept literally."""
    parts = [p for p in path.split("/") if p not in ("", ".")]
    resolved: list[str] = []
    links = 0
    while parts:
        part = parts.pop(0)
        if part == "..":
            if resolved:
                resolved.pop()
            continue
        candidate = os.path.join(root, *resolved, part)
        try:
            st = os.lstat(candidate)
        except FileNotFoundError:
            resolved.append(part)
            continue
        if not stat.S_ISLNK(st.st_mode):
            resolved.append(part)
            continue
        links += 1
        if links > _MAX_LINKS:
            raise OSError(40, f"too many levels of symbolic links in {path}")
        target = os.readlink(candidate)
        if target.startswith("/"):
            resolved = []
        parts = [p for p in target.split("/") if p not in ("", ".")] + parts
    return os.path.join(root, *resolved)


def ensure_target(root: str, path: str, kind: str, mode: int = 0o755) -> str:
    """Resolve ``path`` under ``root`` and create it as a ``dir`` or empty ``file`` if missing."""
    host = secure_join(root, path)
    if kind == "dir":
        os.makedirs(host, mode=mode, exist_ok=True)
    elif not os.path.lexists(host):
        parent = os.path.dirname(path) or "/"
        os.makedirs(secure_join(root, parent), mode=mode, exist_ok=True)
        os.close(os.open(host, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o644))
    return host
