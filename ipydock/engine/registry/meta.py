"""Which compressed blob each layer was in, and where: docker's "v2 metadata" for a push.

::

    ROOT/distribution.json  {diff_id: [{digest, mediaType, size, repository}, ...]}

A pull records, for every layer, the compressed blob the registry served and its repository. A
push then asks that registry (HEAD) whether the target repository has the blob, or mounts it
from the source repository, instead of compressing and uploading the layer again. Losing this
file loses only speed.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable

from ipydock.engine.store.fsutil import atomic_write_json
from ipydock.engine.store.store import Store

__all__ = ["candidates", "record"]

_KEEP = 8  # blobs remembered per layer


def _path(store: Store) -> str:
    return os.path.join(store.root, "distribution.json")


def _load(store: Store) -> dict[str, list[dict]]:
    try:
        with open(_path(store), "rb") as f:
            doc = json.load(f)
    except (OSError, ValueError):
        return {}
    return doc if isinstance(doc, dict) else {}


def record(store: Store, entries: Iterable[tuple[str, dict, str]]) -> None:
    """Remember (diff_id, layer descriptor, repository) triples; the caller holds the lock."""
    doc = _load(store)
    changed = False
    for diff_id, desc, repository in entries:
        item = {
            "digest": desc["digest"],
            "mediaType": desc.get("mediaType", ""),
            "size": int(desc.get("size", 0)),
            "repository": repository,
        }
        known = doc.setdefault(diff_id, [])
        if item in known:
            continue
        known.insert(0, item)
        del known[_KEEP:]
        changed = True
    if changed:
        atomic_write_json(_path(store), doc, store.tmp_dir)


def candidates(store: Store, diff_id: str) -> list[dict]:
    """Compressed blobs known for a layer, newest first."""
    return list(_load(store).get(diff_id, []))
