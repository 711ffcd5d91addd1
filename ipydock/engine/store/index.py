"""The image index: ``ROOT/index.json``, the one file that says which images and tags exist.

It is an OCI image index, so ``skopeo``/``umoci`` read the store as an OCI layout
(``skopeo inspect oci:ROOT:docker.io/library/busybox:latest``). Each image has one manifest
descriptor per tag (``org.opencontainers.image.ref.name`` holds the full reference) or a single one
without a name when it is untagged. ipydock's local facts ride along as annotations, so that
``image ls`` reads this one file and nothing else::

    index.json
      manifests[]: {digest: <manifest>, size,
                    annotations: {org.opencontainers.image.ref.name: docker.io/library/app:1,
                                  io.ipydock.image.id:      sha256:<config digest>,
                                  io.ipydock.image.parent:  sha256:<parent image id>   (build steps)
                                  io.ipydock.image.created: 2026-11-27T20:50:00Z,
                                  io.ipydock.image.size:    "1996800",
                                  io.ipydock.image.layer:   sha256:<top chain id>
                                  io.ipydock.image.repodigests: REPO@sha256:<manifest> …}}

Writing ``index.json`` (atomic rename) is the commit point of every change: blobs and layers are
written before it, garbage is removed after it.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone

from ipydock.engine.store.fsutil import atomic_write_json
from ipydock.errors import StoreCorrupt

__all__ = ["MANIFEST_MEDIA_TYPE", "ImageIndex", "ImageRecord", "parse_time", "format_time"]

MANIFEST_MEDIA_TYPE = "application/vnd.oci.image.manifest.v1+json"
INDEX_MEDIA_TYPE = "application/vnd.oci.image.index.v1+json"
REF_NAME = "org.opencontainers.image.ref.name"
_A = "io.ipydock.image."


_TIME_RE = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)?$")


def parse_time(text: str | None) -> datetime | None:
    """An RFC 3339 time as Docker and Go write it (nanoseconds allowed), in UTC; None if absent."""
    if not text:
        return None
    try:  # Python 3.11+ reads Z and nanoseconds itself, and fast (image ls parses 1000s)
        when = datetime.fromisoformat(text)
        if when.tzinfo is not None:
            return when.astimezone(timezone.utc)
    except ValueError:
        pass
    m = _TIME_RE.match(text)
    if not m:
        return None
    base, frac, tz = m.groups()
    micro = (frac or "0")[:6].ljust(6, "0")
    offset = "+00:00" if tz in (None, "Z") else tz
    return datetime.fromisoformat(f"{base}.{micro}{offset}").astimezone(timezone.utc)


def format_time(when: datetime) -> str:
    return when.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


@dataclass
class ImageRecord:
    """What the store knows about one image without opening any blob."""

    id: str
    manifest: str
    manifest_size: int
    created: datetime | None
    size: int
    parent: str = ""
    top_layer: str = ""
    tags: list[str] = field(default_factory=list)
    # ``docker.io/library/busybox@sha256:…``: the manifests a registry knows this image by
    repo_digests: list[str] = field(default_factory=list)

    @property
    def short_id(self) -> str:
        return self.id.removeprefix("sha256:")[:12]


class ImageIndex:
    """In-memory view of ``index.json``; :meth:`save` writes it back atomically."""

    def __init__(self, path: str, tmp_dir: str) -> None:
        self.path = path
        self.tmp_dir = tmp_dir
        self.images: dict[str, ImageRecord] = {}
        self.tags: dict[str, str] = {}  # full reference -> image id
        self._load()

    def _load(self) -> None:
        try:
            with open(self.path, "rb") as f:
                doc = json.load(f)
        except FileNotFoundError:
            return
        except ValueError as exc:
            raise StoreCorrupt([f"{self.path} is not valid JSON ({exc})"]) from exc
        for desc in doc.get("manifests", []):
            ann = desc.get("annotations") or {}
            image_id = ann.get(_A + "id")
            if not image_id:
                continue  # a manifest some other tool put here; not ours to manage
            rec = self.images.get(image_id)
            if rec is None:
                rec = ImageRecord(
                    id=image_id,
                    manifest=desc["digest"],
                    manifest_size=int(desc.get("size", 0)),
                    created=parse_time(ann.get(_A + "created")),
                    size=int(ann.get(_A + "size", 0)),
                    parent=ann.get(_A + "parent", ""),
                    top_layer=ann.get(_A + "layer", ""),
                )
                self.images[image_id] = rec
                rec.repo_digests = (ann.get(_A + "repodigests") or "").split()
            name = ann.get(REF_NAME)
            if name:
                rec.tags.append(name)
                self.tags[name] = image_id

    def save(self) -> None:
        manifests = []
        for rec in sorted(self.images.values(), key=lambda r: r.id):
            ann = {_A + "id": rec.id, _A + "size": str(rec.size)}
            if rec.created:
                ann[_A + "created"] = format_time(rec.created)
            if rec.parent:
                ann[_A + "parent"] = rec.parent
            if rec.top_layer:
                ann[_A + "layer"] = rec.top_layer
            if rec.repo_digests:
                ann[_A + "repodigests"] = " ".join(rec.repo_digests)
            base = {
                "mediaType": MANIFEST_MEDIA_TYPE,
                "digest": rec.manifest,
                "size": rec.manifest_size,
            }
            names: list[str | None] = list(sorted(rec.tags)) or [None]
            for tag in names:
                a = dict(ann)
                if tag:
                    a[REF_NAME] = tag
                manifests.append({**base, "annotations": a})
        doc = {"schemaVersion": 2, "mediaType": INDEX_MEDIA_TYPE, "manifests": manifests}
        atomic_write_json(self.path, doc, self.tmp_dir)

    # -- queries ---------------------------------------------------------------------------

    def children(self, image_id: str) -> list[str]:
        return [r.id for r in self.images.values() if r.parent == image_id]

    def has_children(self) -> set[str]:
        return {r.parent for r in self.images.values() if r.parent}

    # -- changes (in memory until save) ----------------------------------------------------

    def add(self, rec: ImageRecord) -> None:
        old = self.images.get(rec.id)
        if old is not None:
            rec = replace(
                rec,
                tags=old.tags,
                parent=old.parent or rec.parent,
                repo_digests=old.repo_digests,
            )
        self.images[rec.id] = rec

    def add_repo_digest(self, image_id: str, repo_digest: str) -> None:
        """Record ``REPO@sha256:…`` for the image (and for no other image: a digest names one)."""
        for rec in self.images.values():
            if repo_digest in rec.repo_digests and rec.id != image_id:
                rec.repo_digests.remove(repo_digest)
        digests = self.images[image_id].repo_digests
        if repo_digest not in digests:
            digests.append(repo_digest)

    def set_tag(self, ref: str, image_id: str) -> str | None:
        """Point ``ref`` at ``image_id``; return the image it pointed at before, if another."""
        before = self.tags.get(ref)
        if before == image_id:
            return None
        if before is not None:
            self.images[before].tags.remove(ref)
        self.images[image_id].tags.append(ref)
        self.tags[ref] = image_id
        return before

    def remove_tag(self, ref: str) -> str:
        image_id = self.tags.pop(ref)
        self.images[image_id].tags.remove(ref)
        return image_id

    def remove_image(self, image_id: str) -> ImageRecord:
        rec = self.images.pop(image_id)
        for tag in rec.tags:
            self.tags.pop(tag, None)
        return rec


def index_exists(root: str) -> bool:
    return os.path.exists(os.path.join(root, "index.json"))
