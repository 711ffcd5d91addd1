"""The classic builder's cache: a step's image is reused when an image with the same parent was
made by the same instruction from the same inputs.

When: before every step (unless ``--no-cache``). The key is what Docker's classic builder
compares: the parent image and the child's ``container_config`` (its ``Cmd`` is the step's
created-by text, which for COPY/ADD holds a content hash of the sources and for RUN the build
args it gets; the rest is the env, labels, workdir... the step ran with).

::

    parent ──children──> [img A, img B]  -- container_config == wanted? --> hit: A
    FROM scratch: parent "" ── all images without a parent

:func:`content_hash` hashes what Docker says matters for COPY/ADD (paths, type, mode, owner,
bytes, link targets) and leaves out mtimes, so touching a file keeps the cache.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from collections.abc import Iterable, Mapping
from typing import Any

from ipydock.engine.builder.filework import Digest
from ipydock.engine.store import Store
from ipydock.engine.store.index import ImageIndex, ImageRecord

__all__ = ["content_hash", "lookup"]


def lookup(
    store: Store, parent: str, container_config: dict[str, Any], index: ImageIndex | None = None
) -> tuple[ImageRecord, dict[str, Any]] | None:
    """A cached child of ``parent`` made with ``container_config`` and its config, or None.
    ``index``: the caller's view of the store (one per build, read again after it wrote)."""
    wanted = _canonical(container_config)
    for rec in (index or store.index()).images.values():
        if rec.parent != parent:
            continue
        try:
            config = json.loads(store.blobs.get(rec.id))
        except Exception:  # noqa: BLE001 - a damaged candidate is simply not a hit
            continue
        if _canonical(config.get("container_config") or {}) == wanted:
            return rec, config
    return None


def _canonical(cfg: dict[str, Any]) -> str:
    return json.dumps(cfg, sort_keys=True, separators=(",", ":"))


def content_hash(
    entries: Iterable[tuple[str, str, os.stat_result]], digests: Mapping[str, Digest]
) -> str:
    """sha256 over ``(name in the layer, host path, metadata)``: type, mode, owner and, from
    ``digests`` (``filework.digests`` of the host paths), a file's size and sha256 or a
    symlink's target (the metadata comes from the source's view: a context reports owners
    0:0, as packed)."""
    h = hashlib.sha256()
    for name, path, st in entries:
        h.update(f"{name}\0{st.st_mode:o}\0{st.st_uid}:{st.st_gid}\0".encode())
        if stat.S_ISLNK(st.st_mode):
            h.update(digests[path][1].encode("utf-8", "surrogateescape"))
        elif stat.S_ISREG(st.st_mode):
            size, sha = digests[path]
            h.update(f"{size}\0{sha}".encode())
        h.update(b"\n")
    return h.hexdigest()
