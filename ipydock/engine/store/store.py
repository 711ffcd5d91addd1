"""The store: one root directory holding every image, layer and tag.

::

    ROOT/
      oci-layout  index.json  blobs/sha256/<hex>    an OCI image layout (skopeo/umoci can read it)
      layers/<chain hex>/{layer.json,diff/}         unpacked snapshots, see layers.py
      tmp/                                          temp files and dirs, named for the process
                                                    that made them; garbage once it is gone
      leases/<pid>_<start>-<rand>                   what operations in flight hold, leases.py
      lock                                          flock: one writer at a time
      driver                                        the snapshot driver chosen at first use
      driver.why                                    and why (for ``info``)

A layer made here is stored as its uncompressed tar, so that blob's digest is its diff ID; a
pulled layer is kept as the compressed blob the registry served (its own digest; the layer
record names it, and the OCI manifest lists it with its ``+gzip``/``+zstd`` type), so a push
sends the same bytes back. The config is kept byte for byte as it arrived: the image ID is the
sha256 of those bytes.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, BinaryIO, cast

from ipydock.engine.registry import reference
from ipydock.engine.store.blobs import BlobStore
from ipydock.engine.store.fsutil import atomic_write_bytes, disk_errors
from ipydock.engine.store.index import (
    MANIFEST_MEDIA_TYPE,
    ImageIndex,
    ImageRecord,
    parse_time,
)
from ipydock.engine.store.layers import LayerRecord, LayerStore
from ipydock.engine.store.leases import Lease
from ipydock.engine.store.lock import StoreLock
from ipydock.errors import BlobNotFound, ImageNotFound, StoreError

if TYPE_CHECKING:
    from ipydock.engine.store.snapshots import SnapshotDriver

__all__ = ["CONFIG_MEDIA_TYPE", "LAYER_MEDIA_TYPE", "Store", "default_root"]

CONFIG_MEDIA_TYPE = "application/vnd.oci.image.config.v1+json"
LAYER_MEDIA_TYPE = "application/vnd.oci.image.layer.v1.tar"
# a kept compressed blob's registry type -> the OCI type the store's manifest lists it as
_OCI_LAYER = {
    "application/vnd.docker.image.rootfs.diff.tar.gzip": LAYER_MEDIA_TYPE + "+gzip",
    "application/vnd.docker.image.rootfs.diff.tar": LAYER_MEDIA_TYPE,
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip": (
        "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
    ),
}

# (container id, running) for every container made from an image; the runtime plugs in here.


def default_root() -> str:
    """``IPYDOCK_ROOT``, else ``/var/lib/ipydock`` for root, else ``~/.local/share/ipydock``."""
    env = os.environ.get("IPYDOCK_ROOT")
    if env:
        return os.path.abspath(env)
    if os.geteuid() == 0:
        return "/var/lib/ipydock"
    return os.path.join(os.path.expanduser("~"), ".local", "share", "ipydock")


class Store:
    def __init__(self, root: str | None = None, driver: str | None = None) -> None:
        self.root = os.path.abspath(root or default_root())
        self.tmp_dir = os.path.join(self.root, "tmp")
        with disk_errors(self.root):
            os.makedirs(self.tmp_dir, exist_ok=True)
            os.makedirs(os.path.join(self.root, "blobs", "sha256"), exist_ok=True)
            layout = os.path.join(self.root, "oci-layout")
            if not os.path.exists(layout):
                atomic_write_bytes(layout, b'{"imageLayoutVersion":"1.0.0"}', self.tmp_dir)
        self.lock = StoreLock(os.path.join(self.root, "lock"))
        self.blobs = BlobStore(self.root, self.tmp_dir)
        self.layers = LayerStore(self.root, self.tmp_dir, lambda: self._pick_driver(driver))

    def container_use(self, image_id: str) -> list[tuple[str, bool]]:
        """(container id, running) of every container of this store made from ``image_id``.

        The store owns its containers' records (``ROOT/containers``, read and kept current by
        :mod:`ipydock.engine.containers`), so ``image rm``/``prune``/``check`` keep docker's
        in-use rules whoever opened the store: a backend, a test, a server handler.
        """
        from ipydock.engine.containers.lifecycle import image_users

        return image_users(self, image_id)

    def _pick_driver(self, wanted: str | None) -> SnapshotDriver:
        """The driver is fixed at first use (recorded in ROOT/driver): snapshots differ."""
        from ipydock.engine.store.snapshots import get_driver

        path = os.path.join(self.root, "driver")
        try:
            with open(path) as f:
                recorded = f.read().strip()
        except FileNotFoundError:
            recorded = ""
        explicit = bool(wanted)
        wanted = wanted or os.environ.get("IPYDOCK_STORAGE_DRIVER") or recorded
        if recorded and wanted != recorded:
            raise StoreError(
                f"the store at {self.root} uses the {recorded!r} storage driver, not {wanted!r} "
                "(use another IPYDOCK_ROOT for another driver)"
            )
        # Not root: layers are extracted with the user's own ids (a container's user namespace
        # maps them to 0) and without device nodes.
        rootless = os.geteuid() != 0
        if recorded:
            return get_driver(recorded, rootless=rootless)
        if wanted:
            setting = "IPYDOCK_STORAGE_DRIVER" if not explicit else "the driver option"
            why = f"chosen by {setting} when the store was made"
            driver = get_driver(wanted, rootless=rootless)
        else:
            from ipydock.engine.store.snapshots import choose_driver

            name, why = choose_driver(self.tmp_dir)
            driver = get_driver(name, rootless=rootless)
        atomic_write_bytes(path + ".why", why.encode(), self.tmp_dir)
        atomic_write_bytes(path, driver.name.encode(), self.tmp_dir)
        return driver

    def driver_reason(self) -> str:
        """Why the store has its snapshot driver (recorded when it was chosen)."""
        try:
            with open(os.path.join(self.root, "driver.why")) as f:
                return f.read().strip()
        except FileNotFoundError:
            return "recorded when the store was made"

    # -- reading -----------------------------------------------------------------------------

    def index(self) -> ImageIndex:
        """A fresh view of the index (cheap: one file)."""
        return ImageIndex(os.path.join(self.root, "index.json"), self.tmp_dir)

    def resolve(self, name: str, index: ImageIndex | None = None) -> ImageRecord:
        """Find an image by reference (``busybox``, ``app:1``, ``repo@sha256:…``), by full ID or
        by a unique ID prefix, in that order, as docker does."""
        index = index or self.index()
        ref = reference.try_parse(name)
        if ref is not None:
            if ref.digest and not ref.tag:
                wanted = f"{ref.repository}@{ref.digest}"
                for rec in index.images.values():
                    if wanted in rec.repo_digests:
                        return rec
                for rec in index.images.values():
                    if rec.manifest == ref.digest:
                        return rec
            image_id = index.tags.get(ref.with_default_tag().full)
            if image_id:
                return index.images[image_id]
        hexpart = name.removeprefix("sha256:")
        if hexpart and all(c in "0123456789abcdef" for c in hexpart):
            found = [r for r in index.images.values() if r.id[7:].startswith(hexpart)]
            if len(found) == 1:
                return found[0]
            if len(found) > 1:
                raise StoreError(
                    f"image ID prefix {name!r} is ambiguous ({len(found)} images); use more digits"
                )
        if ref is None:
            reference.parse(name)  # raises InvalidReference with the reason
        raise ImageNotFound(name)

    def config(self, rec: ImageRecord) -> dict[str, Any]:
        return json.loads(self._image_blob(rec, rec.id))

    def manifest(self, rec: ImageRecord) -> dict[str, Any]:
        return json.loads(self._image_blob(rec, rec.manifest))

    def _image_blob(self, rec: ImageRecord, digest: str) -> bytes:
        """A blob of an image read without the lock: when another process removed the image
        meanwhile, that is "no such image" (a documented conflict), not a damaged store."""
        try:
            return self.blobs.get(digest)
        except BlobNotFound:
            if rec.id not in self.index().images:
                raise ImageNotFound(rec.short_id) from None
            raise

    def lease(self) -> Lease:
        """A lease for an operation that makes or uses images across several lock sections
        (``with store.lease() as lease:``); see :mod:`ipydock.engine.store.leases`."""
        return Lease(self)

    def layer_tar(self, layer: LayerRecord) -> Callable[[], BinaryIO]:
        """An opener of the layer's uncompressed tar, digest-checked as it is read to its end:
        the tar blob, or the compressed blob the layer is kept as (decompressed on the way)."""
        if not layer.blob:
            return self.blobs.opener(layer.diff_id)
        from ipydock.engine.store.compression import LayerTar

        def open_tar() -> BinaryIO:
            try:
                raw = open(self.blobs.path(layer.blob), "rb")  # noqa: SIM115 - LayerTar owns it
            except FileNotFoundError as exc:
                raise BlobNotFound(layer.blob) from exc
            return cast(BinaryIO, LayerTar(raw, layer.blob, layer.diff_id,
                                           f"layer {layer.diff_id[7:19]}"))  # fmt: skip

        return open_tar

    def layer_chain(self, rec: ImageRecord) -> list[LayerRecord]:
        return self.layers.chain(rec.top_layer) if rec.top_layer else []

    # -- writing -----------------------------------------------------------------------------

    def commit_image(
        self,
        config_bytes: bytes,
        layers: list[LayerRecord],
        *,
        parent: str = "",
        tags: Iterable[str] = (),
        repo_digests: Iterable[str] = (),
        lease: Lease | None = None,
    ) -> tuple[ImageRecord, list[str]]:
        """Write config and manifest, then name the image in the index (the commit point).

        Returns the record and the IDs of images a moved tag left behind. The caller holds
        ``self.lock`` and has created the layers already; with ``lease``, the image is held
        until the lease is released (an untagged build step, whose child comes later).
        """
        image_id = self.blobs.put(config_bytes)
        config = json.loads(config_bytes)
        diff_ids = config.get("rootfs", {}).get("diff_ids", [])
        if [layer.diff_id for layer in layers] != diff_ids:
            raise StoreError(f"image {image_id}: layers do not match the config's rootfs.diff_ids")
        manifest = {
            "schemaVersion": 2,
            "mediaType": MANIFEST_MEDIA_TYPE,
            "config": {
                "mediaType": CONFIG_MEDIA_TYPE,
                "digest": image_id,
                "size": len(config_bytes),
            },
            "layers": [
                {
                    "mediaType": _OCI_LAYER.get(layer.media_type, layer.media_type)
                    if layer.blob
                    else LAYER_MEDIA_TYPE,
                    "digest": layer.stored,
                    "size": self.blobs.size(layer.stored),
                }
                for layer in layers
            ],
        }
        manifest_bytes = json.dumps(manifest, separators=(",", ":")).encode()
        manifest_digest = self.blobs.put(manifest_bytes)
        index = self.index()
        rec = ImageRecord(
            id=image_id,
            manifest=manifest_digest,
            manifest_size=len(manifest_bytes),
            created=parse_time(config.get("created")),
            size=sum(layer.size for layer in layers),
            parent=parent if parent in index.images else "",
            top_layer=layers[-1].chain_id if layers else "",
        )
        index.add(rec)
        if lease is not None:
            lease.hold_image(rec)
        left_behind = []
        for tag in tags:
            before = index.set_tag(tag, image_id)
            if before:
                left_behind.append(before)
        for repo_digest in repo_digests:
            index.add_repo_digest(image_id, repo_digest)
        index.save()
        return index.images[image_id], left_behind

    def now(self) -> datetime:
        """The time to record as "created": ``SOURCE_DATE_EPOCH`` when set (reproducible)."""
        epoch = os.environ.get("SOURCE_DATE_EPOCH")
        if epoch and epoch.isdigit():
            return datetime.fromtimestamp(int(epoch), timezone.utc)
        return datetime.now(timezone.utc)
