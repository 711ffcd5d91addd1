"""The store's garbage collector: mark from the index and the live leases, sweep the rest.

When: ``image rm`` and ``image prune`` after they unname images (the blobs and layers of those
images only), a released lease (what it held), ``image prune``/``system prune`` (a full sweep:
expired leases, orphan blobs and layers, temp entries of dead processes). The caller holds the
store lock.

::

    roots:  index.json images (config, manifest, layer chain)  +  live leases (leases.py)
    mark:   a layer keeps its parents and its tar blob (or the compressed blob it is kept as)
    sweep:  candidates - marked   (candidates: given, or everything in blobs/ and layers/)
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable
from typing import TYPE_CHECKING

from ipydock.engine.store.fsutil import owner_alive_in, remove_tree
from ipydock.engine.store.index import ImageIndex
from ipydock.engine.store.leases import Held, read_leases
from ipydock.errors import IPyDockError

if TYPE_CHECKING:
    from ipydock.engine.store.store import Store

__all__ = ["collect", "live", "owned_garbage"]


def live(store: Store, index: ImageIndex, held: Held) -> tuple[set[str], set[str]]:
    """(blobs, layers) that the index's images and the live leases need."""
    blobs: set[str] = set(held.blobs) | set(held.images)
    layers: set[str] = set()

    def mark(top: str) -> None:
        while top and top not in layers:
            layers.add(top)
            try:
                rec = store.layers.get(top)
            except IPyDockError:
                return  # a missing record: check reports it
            blobs.update((rec.diff_id, rec.stored))
            top = rec.parent

    for rec in index.images.values():
        blobs.update((rec.id, rec.manifest))
        mark(rec.top_layer)
    for chain in held.layers:
        mark(chain)
    return blobs, layers


def _chains(store: Store, tops: Iterable[str]) -> tuple[list[str], set[str]]:
    """The layers under (and including) ``tops``, each chain top first, and their tar blobs."""
    layers: dict[str, None] = {}
    blobs: set[str] = set()
    for top in tops:
        while top and top not in layers:
            layers[top] = None
            try:
                rec = store.layers.get(top)
            except IPyDockError:
                break
            blobs.update((rec.diff_id, rec.stored))
            top = rec.parent
    return list(layers), blobs


def collect(
    store: Store,
    *,
    blobs: Iterable[str] = (),
    tops: Iterable[str] = (),
    full: bool = False,
    index: ImageIndex | None = None,
) -> tuple[list[str], int]:
    """Remove the given blobs and layer chains (``full``: every blob and layer, expired leases
    and dead processes' temp entries too) that nothing live needs. Returns the chain IDs of
    the layers removed, in the order given (a chain top first), and the bytes freed."""
    held = read_leases(store.root)
    if full:
        for path in held.expired:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
        cand_layers = sorted(store.layers.all())
        cand_blobs = set(store.blobs.digests())
    else:
        cand_layers, cand_blobs = _chains(store, tops)
        cand_blobs |= set(blobs)
    index = index or store.index()
    keep_blobs, keep_layers = live(store, index, held)
    removed: list[str] = []
    freed = 0
    for chain in cand_layers:
        if chain in keep_layers:
            continue
        with contextlib.suppress(IPyDockError):
            freed += store.layers.get(chain).size
        store.layers.remove(chain)
        removed.append(chain)
    for digest in sorted(cand_blobs - keep_blobs):
        store.blobs.remove(digest)
    if full:
        for path in owned_garbage(store.tmp_dir):
            remove_tree(path)
    return removed, freed


def owned_garbage(tmp_dir: str) -> list[str]:
    """Temp entries whose name says which process made them, and that process is gone."""
    try:
        names = sorted(os.listdir(tmp_dir))
    except FileNotFoundError:
        return []
    return [os.path.join(tmp_dir, n) for n in names if owner_alive_in(n) is False]
