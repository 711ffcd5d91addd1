"""The Backend protocol: what the CLI and the magics may ask of an engine.

Two implementations answer it: the bundled engine (``backends.BundledBackend``) and, later, a
Docker Engine API backend. Both return the dataclasses of :mod:`ipydock.models` and raise the
errors of :mod:`ipydock.errors`, so callers never know which one they talk to.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, BinaryIO, Protocol

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

__all__ = ["Backend"]


class Backend(Protocol):
    name: str

    def images(self, *, all: bool = False, filters: Sequence[str] = ()) -> list[ImageInfo]: ...

    def history(self, image: str) -> list[HistoryRow]: ...

    def inspect_image(self, image: str) -> ImageDetail: ...

    def tag(self, source: str, target: str) -> str: ...

    def remove_image(self, image: str, *, force: bool = False) -> list[RemoveEvent]: ...

    def prune_images(self, *, all: bool = False, filters: Sequence[str] = ()) -> PruneResult: ...

    def save(self, images: Sequence[str], out: str | BinaryIO) -> None: ...

    def load(self, source: str | BinaryIO) -> list[LoadedImage]: ...

    def import_image(
        self,
        source: str | BinaryIO,
        name: str | None = None,
        *,
        message: str = "",
        changes: Sequence[str] = (),
    ) -> str: ...

    def info(self) -> dict[str, Any]: ...

    def disk_usage(self) -> list[DiskUsage]: ...

    def check(self, *, repair: bool = False) -> CheckReport: ...
