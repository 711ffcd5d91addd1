"""The one place that picks an engine: ``connect("bundled")`` (later also ``"docker"``)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any, BinaryIO

from ipydock.api import Backend
from ipydock.engine.store import Store, images
from ipydock.errors import UsageError
from ipydock.models import (
    CheckReport,
    DiskUsage,
    HistoryRow,
    ImageDetail,
    ImageInfo,
    LoadedImage,
    PruneResult,
    RemoveEvent,
)

__all__ = ["BundledBackend", "connect"]


def connect(
    kind: str = "bundled", *, root: str | None = None, driver: str | None = None
) -> Backend:
    if kind == "bundled":
        return BundledBackend(Store(root, driver))
    raise UsageError(f"unknown engine {kind!r}: use 'bundled' (the docker engine comes later)")


class BundledBackend:
    """The bundled engine: the store (and later the runtime) in this process."""

    name = "bundled"

    def __init__(self, store: Store) -> None:
        self.store = store

    def images(self, *, all: bool = False, filters: Sequence[str] = ()) -> list[ImageInfo]:
        return images.list_images(self.store, all=all, filters=filters)

    def history(self, image: str) -> list[HistoryRow]:
        return images.history(self.store, image)

    def inspect_image(self, image: str) -> ImageDetail:
        return images.inspect(self.store, image)

    def tag(self, source: str, target: str) -> str:
        return images.tag(self.store, source, target)

    def remove_image(self, image: str, *, force: bool = False) -> list[RemoveEvent]:
        return images.remove(self.store, image, force=force)

    def prune_images(self, *, all: bool = False, filters: Sequence[str] = ()) -> PruneResult:
        return images.prune(self.store, all=all, filters=filters)

    # archive and check import tarfile, compressors and the snapshot drivers: loaded on use,
    # so that `image ls` from the CLI starts fast.

    def save(self, images: Sequence[str], out: str | BinaryIO) -> None:
        from ipydock.engine.store import archive

        archive.save(self.store, images, out)

    def load(self, source: str | BinaryIO) -> list[LoadedImage]:
        from ipydock.engine.store import archive

        return archive.load(self.store, source)

    def import_image(
        self,
        source: str | BinaryIO,
        name: str | None = None,
        *,
        message: str = "",
        changes: Sequence[str] = (),
    ) -> str:
        from ipydock.engine.store import archive

        rec = archive.import_tarball(self.store, source, name, message=message, changes=changes)
        return rec.id

    def info(self) -> dict[str, Any]:
        import platform

        index = self.store.index()
        return {
            "engine": self.name,
            "root": self.store.root,
            "storage_driver": self.store.layers.driver.name,
            "mode": _runtime_mode(),
            "images": len(index.images),
            "tags": len(index.tags),
            "kernel": platform.release(),
            "architecture": platform.machine(),
            "cgroup_version": 2 if os.path.exists("/sys/fs/cgroup/cgroup.controllers") else 1,
        }

    def disk_usage(self) -> list[DiskUsage]:
        from ipydock.engine.store import check

        return check.disk_usage(self.store)

    def check(self, *, repair: bool = False) -> CheckReport:
        from ipydock.engine.store import check

        return check.check(self.store, repair=repair)


def _runtime_mode() -> str:
    """root (full namespaces, cgroups, networking) or rootless (user namespaces)."""
    return "root" if os.geteuid() == 0 else "rootless"
