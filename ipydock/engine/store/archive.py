"""Image tarballs in and out: ``image load``, ``image save`` and ``image import``.

::

    load:   docker-archive (manifest.json; old <id>/layer.tar or new blobs/sha256 layout)
            or OCI layout (index.json), gzip/bzip2/xz or plain
              -> each layer: decompress, digest-check against rootfs.diff_ids, store as blob,
                 unpack as snapshot -> config + manifest -> index.json (the commit point)
    save:   blobs/sha256/*, oci-layout, index.json  (OCI)  +  manifest.json, repositories
            (docker-archive) in one tarball: docker load, podman load and skopeo read it
    import: a rootfs tarball -> safe unpack, and kept as the layer blob on the way (one pass;
            its digest is the diff ID, as in docker) -> a one-layer image

Everything runs under the store lock. A crash or a bad archive at any point leaves the index as it
was; what was written before the failure is garbage that ``system check --repair`` removes.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import json
import lzma
import os
import platform
import posixpath
import tarfile
import urllib.request
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import IO, BinaryIO, cast

from ipydock.engine.registry import reference
from ipydock.engine.store import shape
from ipydock.engine.store.compression import decompressed, detect
from ipydock.engine.store.fsutil import TempFile, disk_errors, temp_dir
from ipydock.engine.store.index import ImageRecord, format_time
from ipydock.engine.store.layers import LayerRecord, chain_id
from ipydock.engine.store.store import Store
from ipydock.errors import ArchiveError, DigestMismatch, UsageError
from ipydock.models import LoadedImage

__all__ = ["import_tarball", "load", "save"]

_OCI_MANIFEST = (
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
)
_OCI_INDEX = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
)


@contextlib.contextmanager
def archive_errors(source: str) -> Iterator[None]:
    """The one place where tarfile and decompressor errors become :class:`ArchiveError`."""
    try:
        yield
    except (tarfile.TarError, EOFError, zlib.error, lzma.LZMAError, gzip.BadGzipFile) as exc:
        why = f"corrupt or truncated archive ({exc or type(exc).__name__})"
        raise ArchiveError(source, why) from exc
    except json.JSONDecodeError as exc:
        raise ArchiveError(source, f"bad JSON inside the archive ({exc})") from exc
    except shape.ShapeError as exc:
        raise ArchiveError(source, str(exc)) from exc


@contextlib.contextmanager
def _seekable(store: Store, source: str | BinaryIO, name: str) -> Iterator[str]:
    """A path to the uncompressed archive: the file itself when it is a plain tar file, else a
    temp copy (tar needs random access: docker writes manifest.json last)."""
    if isinstance(source, str) and source != "-" and not _compressed_file(source, name):
        yield source
        return
    with (
        _open_source(source) as raw,
        TempFile(store.tmp_dir, prefix="spool-") as tmp,
        disk_errors(store.tmp_dir),
    ):
        with archive_errors(name):
            stream = decompressed(raw, name)
            while chunk := stream.read(1 << 20):
                tmp.file.write(chunk)
        tmp.file.flush()
        yield tmp.path


def _compressed_file(path: str, name: str) -> bool:
    try:
        with open(path, "rb") as f:
            return detect(f.read(6)) != "none"
    except OSError as exc:
        raise ArchiveError(name, exc.strerror or str(exc)) from exc


# -- load --------------------------------------------------------------------------------------


def load(store: Store, source: str | BinaryIO, *, name: str | None = None) -> list[LoadedImage]:
    """Load every image of a docker-archive or OCI-layout tarball (``-`` reads stdin)."""
    label = name or (source if isinstance(source, str) else "stdin")
    with (
        store.lock,
        _seekable(store, source, label) as path,
        archive_errors(label),
        tarfile.open(path, "r:") as tf,
    ):
        archive = _Archive(tf, label)
        if archive.has("manifest.json"):
            plans = archive.docker_plans()
        elif archive.has("index.json"):
            plans = archive.oci_plans()
        else:
            raise ArchiveError(
                label,
                "neither manifest.json nor index.json found; is it "
                "a `docker save` / OCI image tarball?",
            )
        return [_load_one(store, archive, plan) for plan in plans]


@dataclass
class _Plan:
    config: bytes
    layers: list[tuple[str, str | None]]  # (member name, compressed digest to check or None)
    tags: list[str]
    parent: str = ""


class _Archive:
    def __init__(self, tf: tarfile.TarFile, label: str) -> None:
        self.tf = tf
        self.label = label
        self.members = {posixpath.normpath(m.name.lstrip("/")): m for m in tf.getmembers()}

    def has(self, name: str) -> bool:
        return name in self.members

    def open(self, name: str) -> IO[bytes]:
        """A member's data, following in-archive symlinks (docker dedups layers that way)."""
        name = posixpath.normpath(name)
        for _ in range(16):
            m = self.members.get(name)
            if m is None:
                raise ArchiveError(self.label, f"{name} is listed but not in the archive")
            if m.issym():
                name = posixpath.normpath(posixpath.join(posixpath.dirname(name), m.linkname))
                continue
            f = self.tf.extractfile(m) if m.isfile() else None
            if f is None:
                raise ArchiveError(self.label, f"{name} is not a regular file")
            return f
        raise ArchiveError(self.label, f"{name}: too many levels of symbolic links")

    def read(self, name: str) -> bytes:
        with self.open(name) as f:
            return f.read()

    def blob(self, digest: str) -> bytes:
        data = self.read("blobs/" + digest.replace(":", "/", 1))
        actual = "sha256:" + _sha256(data)
        if actual != digest:
            raise DigestMismatch(digest, actual)
        return data

    def docker_plans(self) -> list[_Plan]:
        entries = shape.array(shape.json_value(self.read("manifest.json"), "manifest.json"),
                              "manifest.json")  # fmt: skip
        plans = []
        for n, item in enumerate(entries):
            what = f"manifest.json entry {n + 1}"
            entry = shape.obj(item, what)
            config = self.read(shape.text(entry.get("Config"), f"{what}'s Config"))
            names = shape.array(entry.get("RepoTags"), f"{what}'s RepoTags")
            tags = [reference.parse(shape.text(t, f"{what}'s RepoTags")).with_default_tag().full
                    for t in names]  # fmt: skip
            layers: list[tuple[str, str | None]] = [
                (shape.text(p, f"{what}'s Layers"), None)
                for p in shape.array(entry.get("Layers"), f"{what}'s Layers")
            ]
            parent = entry.get("Parent") or ""
            plans.append(_Plan(config, layers, tags, shape.text(parent, f"{what}'s Parent")))
        return plans

    def oci_plans(self) -> list[_Plan]:
        index = shape.json_object(self.read("index.json"), "index.json")
        plans = []
        for n, item in enumerate(shape.array(index.get("manifests"), "index.json manifests")):
            desc = self._pick_platform(shape.descriptor(item, f"index.json manifest {n + 1}"))
            manifest = shape.json_object(self.blob(desc["digest"]), f"manifest {n + 1}")
            what = f"manifest {desc['digest'][7:19]}"
            config_desc = shape.descriptor(manifest.get("config"), f"{what}'s config")
            config = self.blob(config_desc["digest"])
            layers = [
                ("blobs/" + d["digest"].replace(":", "/", 1), d["digest"])
                for d in (shape.descriptor(x, f"{what}'s layer")
                          for x in shape.array(manifest.get("layers"), f"{what}'s layers"))
            ]  # fmt: skip
            plans.append(_Plan(config, layers, _oci_names(desc)))
        return plans

    def _pick_platform(self, desc: dict) -> dict:
        """Descend image indexes to the manifest for this machine's platform."""
        while desc.get("mediaType") in _OCI_INDEX:
            sub = shape.json_object(self.blob(desc["digest"]), f"index {desc['digest'][7:19]}")
            want = _host_arch()
            for item in shape.array(sub.get("manifests"), "an index's manifests"):
                m = shape.descriptor(item, "an index's manifest")
                p = shape.obj(m.get("platform") or {}, "a manifest's platform")
                if p.get("os", "linux") == "linux" and p.get("architecture", want) == want:
                    ann = shape.obj(desc.get("annotations") or {}, "annotations")
                    desc = {**m, "annotations": {**ann}}
                    break
            else:
                raise ArchiveError(self.label, f"no image for linux/{want} in the archive")
        if desc.get("mediaType", _OCI_MANIFEST[0]) not in _OCI_MANIFEST:
            raise ArchiveError(self.label, f"unsupported manifest type {desc.get('mediaType')}")
        return desc


def _oci_names(desc: dict) -> list[str]:
    ann = shape.obj(desc.get("annotations") or {}, "a manifest's annotations")
    name = ann.get("io.containerd.image.name") or ann.get("org.opencontainers.image.ref.name")
    if not isinstance(name, str) or ("/" not in name and ":" not in name):
        return []  # a bare tag such as "latest" names no repository
    ref = reference.try_parse(name)
    return [ref.with_default_tag().full] if ref and not ref.digest else []


def _load_one(store: Store, archive: _Archive, plan: _Plan) -> LoadedImage:
    config = shape.json_object(plan.config, "the image config")
    rootfs = shape.obj(config.get("rootfs") or {}, "the config's rootfs")
    diff_ids = [
        shape.digest(d, "a diff ID")
        for d in shape.array(rootfs.get("diff_ids"), "the config's diff_ids")
    ]
    if len(diff_ids) != len(plan.layers):
        raise ArchiveError(
            archive.label,
            f"the config names {len(diff_ids)} layers but the manifest {len(plan.layers)}",
        )
    records: list[LayerRecord] = []
    parent_chain = ""
    for (member, compressed), diff_id in zip(plan.layers, diff_ids, strict=True):
        if not store.blobs.has(diff_id) and not store.layers.has(chain_id(parent_chain, diff_id)):
            rec = _unpack_and_keep(store, archive, member, compressed, parent_chain, diff_id)
        else:
            if not store.blobs.has(diff_id):
                with archive.open(member) as raw:
                    checked = _DigestCheck(raw, compressed or "")
                    store.blobs.put_stream(decompressed(checked, archive.label), expected=diff_id)
                    if compressed:
                        checked.verify()
            opener = store.blobs.opener(diff_id)
            rec = store.layers.create(parent_chain, diff_id, opener, archive.label)
        records.append(rec)
        parent_chain = rec.chain_id
    parent = ""
    if plan.parent:
        parent = plan.parent if plan.parent.startswith("sha256:") else "sha256:" + plan.parent
    image, replaced = _commit(store, plan.config, records, parent, plan.tags)
    return LoadedImage(image.id, [reference.parse(t).familiar for t in plan.tags], replaced)


def _unpack_and_keep(
    store: Store, archive: _Archive, member: str, compressed: str | None, parent: str, diff_id: str
) -> LayerRecord:
    """A new layer in one pass over its tar: unpacked as it is read, and kept as the blob
    ``diff_id`` on the way (checked, with the compressed digest, before the layer is put in
    place; see :class:`~ipydock.engine.store.blobs.BlobTee`)."""
    with archive.open(member) as raw:
        # the compressed bytes digested only when there is a digest to check (OCI layouts):
        # a docker-archive's plain layer.tar is checked once, as the diff ID, by the tee
        checked = _DigestCheck(raw, compressed) if compressed else None
        stream = decompressed(checked or raw, archive.label)
        verify = checked.verify if checked else None
        with store.blobs.tee(stream, diff_id, before_commit=verify) as tee:
            rec = store.layers.create(parent, diff_id, lambda: cast(BinaryIO, tee), archive.label)
            if not tee.done:  # the layer was there after all (made meanwhile): keep the blob
                while tee.read(1 << 20):
                    pass
    return rec


def _commit(
    store: Store, config: bytes, layers: list[LayerRecord], parent: str, tags: Sequence[str]
) -> tuple[ImageRecord, list[tuple[str, str]]]:
    before = store.index().tags
    image, _ = store.commit_image(config, layers, parent=parent, tags=tags)
    replaced = [
        (reference.parse(t).familiar, before[t])
        for t in tags
        if t in before and before[t] != image.id
    ]
    return image, replaced


class _DigestCheck:
    """Pass-through reader that digests what it passes (the compressed blob of an OCI layer)."""

    def __init__(self, f: IO[bytes], expected: str) -> None:
        self._f = f
        self._h = hashlib.sha256()
        self._expected = expected

    def read(self, n: int = -1) -> bytes:
        data = self._f.read(n)
        self._h.update(data)
        return data

    def verify(self) -> None:
        while self.read(1 << 20):
            pass
        actual = "sha256:" + self._h.hexdigest()
        if actual != self._expected:
            raise DigestMismatch(self._expected, actual)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _host_arch() -> str:
    machine = platform.machine()
    return {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm"}.get(machine, machine)


# -- save --------------------------------------------------------------------------------------


def save(store: Store, names: Sequence[str], out: str | BinaryIO) -> None:
    """Write the named images as one tarball that docker, podman and skopeo can load.

    ``out`` is a path (written to a temp file beside it, renamed when complete) or a stream.
    """
    if not names:
        raise UsageError("image save needs at least one image name")
    chosen: dict[str, list[str]] = {}
    with store.lease() as lease:
        with store.lock:  # held while written: a concurrent rm unnames, its data stays
            index = store.index()
            for name in names:
                rec = store.resolve(name, index)
                lease.hold_image(rec)
                tags = chosen.setdefault(rec.id, [])
                ref = reference.try_parse(name)
                full = ref.with_default_tag().full if ref and not ref.digest else None
                if full and full in rec.tags and full not in tags:
                    tags.append(full)
        if isinstance(out, str):
            directory = os.path.dirname(os.path.abspath(out))
            with disk_errors(out), TempFile(directory, prefix=".ipydock-save-") as tmp:
                _write_archive(store, index.images, chosen, tmp.file)
                tmp.commit(out)
        else:
            _write_archive(store, index.images, chosen, out)


def _write_archive(
    store: Store, images: dict[str, ImageRecord], chosen: dict[str, list[str]], out: IO[bytes]
) -> None:
    written: set[str] = set()
    manifest_json = []
    repositories: dict[str, dict[str, str]] = {}
    oci_index = []
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tf:
        _add_dir(tf, "blobs/")
        _add_dir(tf, "blobs/sha256/")
        for image_id, tags in chosen.items():
            rec = images[image_id]
            manifest = store.manifest(rec)
            blobs = [rec.id, rec.manifest] + [d["digest"] for d in manifest["layers"]]
            for digest in blobs:
                if digest not in written:
                    written.add(digest)
                    _add_blob(tf, store, digest)
            layer_paths = [_blob_path(d["digest"]) for d in manifest["layers"]]
            familiar = [reference.parse(t).familiar for t in tags]
            manifest_json.append(
                {"Config": _blob_path(rec.id), "RepoTags": familiar or None, "Layers": layer_paths}
            )
            for t in tags:
                ref = reference.parse(t)
                top = manifest["layers"][-1]["digest"][7:] if manifest["layers"] else ""
                repositories.setdefault(ref.familiar_repository, {})[ref.tag or "latest"] = top
            desc = {
                "mediaType": _OCI_MANIFEST[0],
                "digest": rec.manifest,
                "size": rec.manifest_size,
            }
            named: list[str | None] = list(tags) or [None]
            for name in named:
                ann = {}
                if name:
                    ann = {
                        "io.containerd.image.name": name,
                        "org.opencontainers.image.ref.name": reference.parse(name).tag or "",
                    }
                oci_index.append({**desc, **({"annotations": ann} if ann else {})})
        _add_bytes(tf, "oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
        index_doc = {"schemaVersion": 2, "mediaType": _OCI_INDEX[0], "manifests": oci_index}
        _add_bytes(tf, "index.json", json.dumps(index_doc).encode())
        _add_bytes(tf, "manifest.json", json.dumps(manifest_json).encode())
        if repositories:
            _add_bytes(tf, "repositories", json.dumps(repositories).encode())


def _blob_path(digest: str) -> str:
    return "blobs/sha256/" + digest.removeprefix("sha256:")


def _add_dir(tf: tarfile.TarFile, name: str) -> None:
    info = tarfile.TarInfo(name.rstrip("/"))
    info.type = tarfile.DIRTYPE
    info.mode = 0o755
    tf.addfile(info)


def _add_bytes(tf: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    tf.addfile(info, io.BytesIO(data))


def _add_blob(tf: tarfile.TarFile, store: Store, digest: str) -> None:
    info = tarfile.TarInfo(_blob_path(digest))
    info.size = store.blobs.size(digest)
    info.mode = 0o644
    with store.blobs.open(digest) as f:
        tf.addfile(info, f)  # type: ignore[arg-type]


# -- import ------------------------------------------------------------------------------------

Opener = Callable[[], BinaryIO]


def import_tarball(
    store: Store,
    source: str | BinaryIO,
    name: str | None = None,
    *,
    message: str = "",
    changes: Sequence[str] = (),
) -> ImageRecord:
    """``docker import``: a root filesystem tarball (file, URL or ``-``) as a one-layer image.

    The tarball (decompressed) is the layer, as in docker: unpacked by the safe extractor and
    kept as the layer blob in the same pass, its digest the diff ID. (It used to be unpacked,
    then written again from the snapshot as a normalised tar: a second pass over every byte.)
    """
    from ipydock.engine.store.changes import apply_changes

    target = reference.parse(name).with_default_tag().full if name else None
    if target and reference.parse(target).digest:
        raise UsageError(f"cannot import as {name!r}: use NAME[:TAG], not a digest")
    label = source if isinstance(source, str) else "-"
    container_config = apply_changes({}, changes)
    created = format_time(store.now())
    with store.lock, temp_dir(store.tmp_dir, "import-") as tmp:
        snapshot = os.path.join(tmp, "diff")
        with (
            _open_source(source) as raw,
            archive_errors(label),
            store.blobs.tee(decompressed(raw, label)) as tee,
        ):
            result = store.layers.driver.create(snapshot, None, cast(BinaryIO, tee), source=label)
            while not tee.done and tee.read(1 << 20):
                pass
        diff_id = tee.digest
        layer = store.layers.adopt(tmp, "", diff_id, result.size)
        comment = message or f"Imported from {label if _is_url(label) else '-'}"
        config = {
            "architecture": _host_arch(),
            "os": "linux",
            "created": created,
            "comment": comment,
            "config": container_config,
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
            "history": [{"created": created, "comment": comment}],
        }
        config_bytes = json.dumps(config, separators=(",", ":")).encode()
        rec, _ = store.commit_image(config_bytes, [layer], tags=[target] if target else [])
        return rec


def _is_url(text: str) -> bool:
    return text.startswith(("http://", "https://"))


@contextlib.contextmanager
def _open_source(source: str | BinaryIO) -> Iterator[BinaryIO]:
    if not isinstance(source, str):
        yield source
    elif source == "-":
        with os.fdopen(os.dup(0), "rb") as f:
            yield f
    elif _is_url(source):
        try:
            with urllib.request.urlopen(source, timeout=60) as resp:  # noqa: S310
                yield resp
        except OSError as exc:
            raise ArchiveError(source, f"download failed ({exc})") from exc
    else:
        try:
            f = open(source, "rb")  # noqa: SIM115
        except OSError as exc:
            raise ArchiveError(source, exc.strerror or str(exc)) from exc
        with f:
            yield f
