"""Unpacked layers (snapshots), keyed by chain ID as Docker keys them.

::

    ROOT/layers/<chain hex>/layer.json   {chain_id, diff_id, parent, size, driver,
                                          blob, media_type}                (written last)
                            diff/        the snapshot: an overlayfs lower dir (overlay driver)
                                         or a full root filesystem (vfs driver)

The chain ID names a layer *on top of its parents* (``sha256(parent_chain + " " + diff_id)``), so
a snapshot that depends on what lies below it (vfs keeps full copies) is never shared wrongly.
A snapshot is unpacked into a locked temp dir under ``ROOT/tmp`` and renamed into place with its
``layer.json``: a crash leaves either nothing or garbage in ``tmp`` for ``system check --repair``.
The tar itself is kept as a blob: uncompressed (``blobs/sha256/<diff_id>``, ``blob`` empty) for
layers made here, or as the compressed blob a pull got (``blob``: its digest, ``media_type``:
the registry's type for it), so a push sends it unchanged; blob and snapshot are written
before the index names them, and removed only after the index stopped naming them.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from functools import cached_property
from typing import TYPE_CHECKING, BinaryIO

from ipydock.engine.store.fsutil import (
    atomic_write_json,
    disk_errors,
    owned_name,
    remove_tree,
    temp_dir,
)
from ipydock.errors import LayerNotFound

if TYPE_CHECKING:
    from ipydock.engine.store.snapshots import SnapshotDriver

__all__ = ["LayerRecord", "LayerStore", "chain_id"]


def chain_id(parent: str, diff_id: str) -> str:
    """Docker's ChainID: the diff ID for a base layer, else sha256 of "parent diff"."""
    if not parent:
        return diff_id
    import hashlib  # on use: keeps CLI start-up small

    return "sha256:" + hashlib.sha256(f"{parent} {diff_id}".encode()).hexdigest()


@dataclass(frozen=True)
class LayerRecord:
    chain_id: str
    diff_id: str
    parent: str
    size: int
    driver: str
    blob: str = ""  # the compressed blob the tar is kept as ("": the tar blob, diff_id)
    media_type: str = ""  # that blob's media type, as the registry named it

    @property
    def stored(self) -> str:
        """The digest of the blob that holds this layer's tar."""
        return self.blob or self.diff_id


class LayerStore:
    def __init__(self, root: str, tmp_dir: str, driver: Callable[[], SnapshotDriver]) -> None:
        self.dir = os.path.join(root, "layers")
        self.tmp_dir = tmp_dir
        self._driver_factory = driver
        self._cache: dict[str, LayerRecord] = {}

    @cached_property
    def driver(self) -> SnapshotDriver:
        """Chosen on first use: listing images and reading history never need it."""
        return self._driver_factory()

    def _path(self, chain: str) -> str:
        return os.path.join(self.dir, chain.removeprefix("sha256:"))

    def snapshot(self, chain: str) -> str:
        """The snapshot directory of a layer (its ``diff/``)."""
        return os.path.join(self._path(chain), "diff")

    def has(self, chain: str) -> bool:
        return os.path.exists(os.path.join(self._path(chain), "layer.json"))

    def get(self, chain: str) -> LayerRecord:
        rec = self._cache.get(chain)
        if rec is None:
            try:
                with open(os.path.join(self._path(chain), "layer.json"), "rb") as f:
                    rec = LayerRecord(**json.load(f))
            except FileNotFoundError as exc:
                raise LayerNotFound(chain) from exc
            self._cache[chain] = rec
        return rec

    def chain(self, top: str) -> list[LayerRecord]:
        """The layers under and including ``top``, bottom first."""
        out: list[LayerRecord] = []
        while top:
            rec = self.get(top)
            out.append(rec)
            top = rec.parent
        out.reverse()
        return out

    def create(
        self, parent: str, diff_id: str, open_tar: Callable[[], BinaryIO], source: str,
        *, blob: str = "", media_type: str = "",
    ) -> LayerRecord:  # fmt: skip
        """Unpack the tar (``open_tar()`` gives it, uncompressed) on top of ``parent``;
        ``blob``/``media_type`` name the compressed blob the tar is kept as, if it is.

        Idempotent: an existing layer is returned as it is.
        """
        chain = chain_id(parent, diff_id)
        if self.has(chain):
            return self.get(chain)
        parent_snapshot = self.snapshot(parent) if parent else None
        os.makedirs(self.dir, exist_ok=True)
        with disk_errors(self.dir), temp_dir(self.tmp_dir, "layer-") as tmp:
            with open_tar() as stream:
                result = self.driver.create(
                    os.path.join(tmp, "diff"), parent_snapshot, stream, source=source
                )
            rec = LayerRecord(
                chain, diff_id, parent, result.size, self.driver.name, blob, media_type
            )
            atomic_write_json(os.path.join(tmp, "layer.json"), _record(rec), self.tmp_dir)
            os.rename(tmp, self._path(chain))
        self._cache[chain] = rec
        return rec

    def adopt(
        self, tmp: str, parent: str, diff_id: str, size: int,
        *, blob: str = "", media_type: str = "",
    ) -> LayerRecord:  # fmt: skip
        """Take a temp dir holding ``diff/`` (a snapshot made elsewhere) as the layer.

        Used when the tar was generated from the snapshot (import, commit), so unpacking it
        again would only repeat work, and by a pull that unpacks layers side by side (a
        layered driver's snapshot does not need its parent's). ``tmp`` must be under
        ``ROOT/tmp``; ``blob``/``media_type`` as :meth:`create`'s.
        """
        chain = chain_id(parent, diff_id)
        if self.has(chain):
            return self.get(chain)
        rec = LayerRecord(chain, diff_id, parent, size, self.driver.name, blob, media_type)
        os.makedirs(self.dir, exist_ok=True)
        with disk_errors(self.dir):
            atomic_write_json(os.path.join(tmp, "layer.json"), _record(rec), self.tmp_dir)
            os.rename(tmp, self._path(chain))
        self._cache[chain] = rec
        return rec

    def remove(self, chain: str) -> None:
        self._cache.pop(chain, None)
        path = self._path(chain)
        if os.path.exists(path):
            # Unname it first (an atomic rename), so a crash never leaves a half-deleted layer
            # that still looks complete.
            doomed = os.path.join(self.tmp_dir, owned_name("gone-"))
            os.rename(path, doomed)
            remove_tree(doomed)

    def all(self) -> Iterator[str]:
        try:
            names = os.listdir(self.dir)
        except FileNotFoundError:
            return
        for name in names:
            yield "sha256:" + name


def _record(rec: LayerRecord) -> dict:
    """layer.json: a layer kept as its tar blob is written as before the compressed fields."""
    doc = asdict(rec)
    if not rec.blob:
        del doc["blob"], doc["media_type"]
    return doc
