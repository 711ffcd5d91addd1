"""``pull NAME[:TAG|@DIGEST]``: manifest, config and layers from a registry into the store.

::

    GET manifest ──index/list?──> pick linux/ARCH[/VARIANT] ──> GET manifest (digest checked)
    GET config (digest checked) ──> rootfs.diff_ids
    each missing layer, up to 3 at a time: GET blob ──sha256──> gunzip/unzstd ──sha256 (diff ID)
        ──> ROOT/tmp/pull-*   (resumed with Range after a dropped connection; a blob longer
        than announced stops; both digests checked before the file is used)
    under the store lock, in order, each as soon as it is here (later ones still downloading):
        rename into blobs/<diff ID> ──> unpack a snapshot
    config + manifest ──> index.json with the tag and REPO@DIGEST (the commit point)

The config is stored byte for byte, so the image ID is the one docker gives. A crash leaves
only temp files (``system check --repair`` removes them) and whole layers, which the next pull
reuses. The engine prints nothing: progress goes to the ``progress`` callback as
:class:`~ipydock.models.TransferEvent`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import platform as _platform
import threading
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from ipydock.engine.registry import meta, reference
from ipydock.engine.registry.client import (
    DOCKER_LIST,
    DOCKER_MANIFEST,
    OCI_INDEX,
    OCI_MANIFEST,
    Registry,
)
from ipydock.engine.registry.codec import Decoder
from ipydock.engine.registry.parallel import Aborted, Jobs, serialised
from ipydock.engine.registry.transport import transport_errors
from ipydock.engine.store.fsutil import TempFile, disk_errors
from ipydock.engine.store.layers import LayerRecord
from ipydock.engine.store.store import Store
from ipydock.errors import (
    ArchiveError,
    DigestMismatch,
    RegistryError,
    RegistryUnreachable,
    UsageError,
)
from ipydock.models import PullResult, TransferEvent

__all__ = ["host_platform", "parse_platform", "pull"]

Progress = Callable[[TransferEvent], None]
PARALLEL = 3
LAYER_TYPES = (
    "application/vnd.docker.image.rootfs.diff.tar.gzip",
    "application/vnd.docker.image.rootfs.diff.tar",
    "application/vnd.oci.image.layer.v1.tar",
    "application/vnd.oci.image.layer.v1.tar+gzip",
    "application/vnd.oci.image.layer.v1.tar+zstd",
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
)


def host_platform() -> tuple[str, str, str]:
    machine = _platform.machine()
    arch = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm"}.get(machine, machine)
    variant = {"aarch64": "v8", "armv7l": "v7"}.get(machine, "")
    return "linux", arch, variant


def parse_platform(text: str | None) -> tuple[str, str, str]:
    """``linux/arm64/v8`` -> (os, architecture, variant); None means this machine's."""
    if not text:
        return host_platform()
    parts = text.lower().split("/")
    if len(parts) not in (2, 3) or not all(parts):
        raise UsageError(f"invalid platform {text!r}: use OS/ARCH[/VARIANT], e.g. linux/arm64")
    return parts[0], parts[1], parts[2] if len(parts) == 3 else ""


@dataclass
class _Layer:
    desc: dict
    diff_id: str
    chain: str
    short: str
    tmp: TempFile | None = None


def pull(
    store: Store,
    name: str,
    *,
    platform: str | None = None,
    progress: Progress | None = None,
    registry: Registry | None = None,
) -> PullResult:
    ref = reference.parse(name)
    emit = serialised(progress)
    if not ref.tag and not ref.digest:
        emit(TransferEvent("", "", text="Using default tag: latest"))
        ref = ref.with_default_tag()
    want = parse_platform(platform)
    with contextlib.ExitStack() as stack:
        reg = registry or stack.enter_context(Registry(ref.domain))
        emit(TransferEvent("", "", text=f"{ref.tag or ref.digest}: Pulling from {ref.path}"))
        top_digest, manifest = _manifest(reg, ref, want)
        config_bytes = _small_blob(reg, ref.path, manifest["config"])
        layers = _plan(store, manifest, json.loads(config_bytes), reg.domain)
        for layer in layers:
            emit(TransferEvent(layer.short, _initial_status(store, layer)))
        todo = [
            x for x in layers if not store.layers.has(x.chain) and not store.blobs.has(x.diff_id)
        ]
        for layer in todo:
            layer.tmp = stack.enter_context(TempFile(store.tmp_dir, prefix="pull-"))
        abort = threading.Event()
        jobs = stack.enter_context(
            Jobs([partial(_download, reg, ref.path, x, emit, abort) for x in todo], PARALLEL, abort)
        )
        waiting = {id(x): i for i, x in enumerate(todo)}
        repo_digest = f"{ref.repository}@{top_digest}"
        # Layers unpack in order as soon as each is here, while later ones still download;
        # the lock is held from the first unpack to the commit (nothing unnamed is exposed to
        # another writer's garbage collection in between).
        with store.lock:
            before = store.index().tags.get(ref.full) if ref.tag else None
            records: list[LayerRecord] = []
            for layer in layers:
                if id(layer) in waiting:
                    jobs.result(waiting[id(layer)])
                parent = records[-1].chain_id if records else ""
                records.append(_unpack(store, layer, parent, ref.familiar, emit))
            image, _ = store.commit_image(
                config_bytes, records, tags=[ref.full] if ref.tag else [],
                repo_digests=[repo_digest],
            )  # fmt: skip
            meta.record(store, [(x.diff_id, x.desc, ref.repository) for x in layers])
    emit(TransferEvent("", "", text=f"Digest: {top_digest}"))
    word = "Image is up to date" if before == image.id else "Downloaded newer image"
    status = f"{word} for {ref.familiar}"
    emit(TransferEvent("", "", text=f"Status: {status}"))
    return PullResult(image.id, ref.full if ref.tag else repo_digest, top_digest, status)


def _manifest(
    reg: Registry, ref: reference.Reference, want: tuple[str, str, str]
) -> tuple[str, dict]:
    """(digest of what the name points at, the image manifest): through an index or list to
    the wanted platform's manifest, every digest checked."""
    body, media = reg.get_manifest(ref.path, ref.digest or ref.tag or "", ref.familiar)
    top_digest = _digest(body)
    if ref.digest and top_digest != ref.digest:
        raise DigestMismatch(ref.digest, top_digest, f"manifest of {ref.familiar}")
    if media in (OCI_INDEX, DOCKER_LIST):
        desc = _pick(json.loads(body), want, ref.familiar, reg.domain)
        body, media = reg.get_manifest(ref.path, desc["digest"], ref.familiar)
        if _digest(body) != desc["digest"]:
            raise DigestMismatch(desc["digest"], _digest(body), f"manifest of {ref.familiar}")
    if media not in (OCI_MANIFEST, DOCKER_MANIFEST):
        raise RegistryError(reg.domain, f"{ref.familiar}: unsupported manifest type {media!r}")
    return top_digest, json.loads(body)


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _pick(index: dict, want: tuple[str, str, str], shown: str, registry: str) -> dict:
    os_, arch, variant = want
    found = []
    for m in index.get("manifests") or []:
        p = m.get("platform") or {}
        if p.get("os") == os_ and p.get("architecture") == arch:
            found.append((p.get("variant", "") == variant, m))
    if not found:
        have = ", ".join(
            "/".join(filter(None, [p.get("os"), p.get("architecture"), p.get("variant")]))
            for p in ((m.get("platform") or {}) for m in index.get("manifests") or [])
        )
        plat = "/".join(filter(None, want))
        raise RegistryError(
            registry, f"{shown} has no image for {plat} (it has: {have or 'none'}); see --platform"
        )
    found.sort(key=lambda f: not f[0])
    return found[0][1]


def _small_blob(reg: Registry, name: str, desc: dict) -> bytes:
    """The config: small, read whole, checked against its digest and size."""
    digest, size = desc["digest"], int(desc.get("size", 0))
    if size > 16 << 20:
        raise RegistryError(reg.domain, f"config {digest[:19]} is too large ({size} bytes)")
    resp = reg.open_blob(name, digest)
    try:
        with transport_errors(reg.domain):
            data = resp.read()
    finally:
        resp.close()
    if _digest(data) != digest:
        raise DigestMismatch(digest, _digest(data), "config")
    return data


def _plan(store: Store, manifest: dict, config: dict, registry: str) -> list[_Layer]:
    from ipydock.engine.store.layers import chain_id

    descs = manifest.get("layers") or []
    diff_ids = (config.get("rootfs") or {}).get("diff_ids") or []
    if len(descs) != len(diff_ids):
        raise RegistryError(
            registry, f"the config names {len(diff_ids)} layers but the manifest {len(descs)}"
        )
    out = []
    parent = ""
    for desc, diff_id in zip(descs, diff_ids, strict=True):
        media = desc.get("mediaType", "")
        if media not in LAYER_TYPES:
            raise RegistryError(registry, f"unsupported layer type {media!r}")
        chain = chain_id(parent, diff_id)
        out.append(_Layer(desc, diff_id, chain, desc["digest"][7:19]))
        parent = chain
    return out


def _initial_status(store: Store, layer: _Layer) -> str:
    return "Already exists" if store.layers.has(layer.chain) else "Pulling fs layer"


def _download(
    reg: Registry, name: str, layer: _Layer, emit: Progress, abort: threading.Event
) -> None:
    """Stream one blob: digest it, decompress it and digest the tar (the diff ID) as it comes,
    into the layer's temp file; resume after a dropped connection."""
    assert layer.tmp is not None
    digest, total = layer.desc["digest"], int(layer.desc.get("size", 0))
    out = layer.tmp.file
    state = _Stream(f"layer {layer.short} from {reg.domain}")
    for attempt in range(4):
        resp = reg.open_blob(name, digest, state.done)
        try:
            if state.done and resp.status_code != 206:  # the Range was ignored: start again
                out.seek(0)
                out.truncate()
                state = _Stream(state.label)
            last = 0
            with disk_errors(layer.tmp.path), transport_errors(reg.domain):
                for chunk in resp.iter_bytes(1 << 20):
                    if abort.is_set():
                        raise Aborted
                    if total and state.done + len(chunk) > total:
                        raise RegistryError(
                            reg.domain, f"blob {digest[:19]} is longer than its {total} bytes"
                        )
                    out.write(state.feed(chunk))
                    if state.done - last >= 1 << 20:
                        last = state.done
                        emit(TransferEvent(layer.short, "Downloading", state.done, total))
            break
        except RegistryUnreachable:
            if attempt == 3:
                raise  # dropped four times: give up, the temp file goes
        finally:
            resp.close()
    emit(TransferEvent(layer.short, "Verifying Checksum"))
    out.write(state.finish(digest))
    actual = "sha256:" + state.diff.hexdigest()
    if actual != layer.diff_id:
        raise DigestMismatch(layer.diff_id, actual, f"layer diff ID (from {reg.domain})")
    out.flush()
    emit(TransferEvent(layer.short, "Download complete", state.done, total))


class _Stream:
    """The running state of one blob download: bytes, both digests, the decoder."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.done = 0
        self.blob = hashlib.sha256()
        self.diff = hashlib.sha256()
        self.decoder = Decoder(label)
        self.error: ArchiveError | None = None

    def feed(self, chunk: bytes) -> bytes:
        self.done += len(chunk)
        self.blob.update(chunk)
        if self.error is not None:
            return b""
        try:
            plain = self.decoder.feed(chunk)
        except ArchiveError as exc:  # reported after the digest check: that says more
            self.error = exc
            return b""
        self.diff.update(plain)
        return plain

    def finish(self, digest: str) -> bytes:
        actual = "sha256:" + self.blob.hexdigest()
        if actual != digest:
            raise DigestMismatch(digest, actual, self.label)
        if self.error is not None:
            raise self.error
        plain = self.decoder.finish()
        self.diff.update(plain)
        return plain


def _unpack(store: Store, layer: _Layer, parent: str, label: str, emit: Progress) -> LayerRecord:
    """Move a downloaded layer's tar into the blob store (its name is its diff ID), unpack it."""
    if store.layers.has(layer.chain):
        return store.layers.get(layer.chain)
    path = store.blobs.path(layer.diff_id)
    opener = store.blobs.opener(layer.diff_id)  # a blob that was here: checked as it is read
    if not store.blobs.has(layer.diff_id):
        assert layer.tmp is not None
        with disk_errors(store.blobs.dir):
            layer.tmp.commit(path)
        opener = lambda: open(path, "rb")  # noqa: E731, SIM115 - digested on its way in just now
    emit(TransferEvent(layer.short, "Extracting"))
    rec = store.layers.create(parent, layer.diff_id, opener, label)
    emit(TransferEvent(layer.short, "Pull complete"))
    return rec
