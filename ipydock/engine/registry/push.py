"""``push NAME[:TAG]``: an image of the store to a registry, skipping what it has already.

::

    each layer (up to 3 at a time):
      kept as the compressed blob a pull got: that blob, unchanged (the same digest)
        HEAD in the target repository ──200──> "Layer already exists"
        same registry, another repository had it ──POST ?mount=&from=──201──> "Mounted from"
        else POST, PUT ?digest= with the file as the body (chunk_size: PATCH chunks) ──> "Pushed"
      kept as a tar (built here), from what distribution.json knows of it:
        HEAD in the target repository ──200──> "Layer already exists"
        same registry, other repository ──POST ?mount=&from=──201──> "Mounted from REPO"
        else gzip it (ISA-L level 1, no timestamp: the same layer gives the same blob each time)
             while streaming it in one PATCH (as docker does) ──PUT ?digest=──> "Pushed"
             (with chunk_size: gzip to a temp file, HEAD, then PATCH chunks of that size)
    config (beside the layers): HEAD, else upload
    manifest (Docker v2 schema 2, indented as docker writes it) ──PUT /manifests/TAG──>
    "TAG: digest: sha256:… size: N"; REPO@DIGEST recorded on the image

The engine prints nothing: progress goes to ``progress`` as :class:`TransferEvent`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import queue
import threading
from collections.abc import Callable, Iterator
from functools import partial

from ipydock.engine.registry import meta, reference
from ipydock.engine.registry.client import DOCKER_MANIFEST, OCI_MANIFEST, Registry
from ipydock.engine.registry.codec import gzip_compressor
from ipydock.engine.registry.parallel import Aborted, run_all, serialised
from ipydock.engine.store.fsutil import TempFile, disk_errors
from ipydock.engine.store.layers import LayerRecord
from ipydock.engine.store.store import Store
from ipydock.errors import BlobNotFound, ImageNotFound, UsageError
from ipydock.models import PushResult, TransferEvent

__all__ = ["push"]

Progress = Callable[[TransferEvent], None]
PARALLEL = 3
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
_DOCKER_TYPES = (DOCKER_GZIP, "application/vnd.docker.image.rootfs.diff.tar")
_TO_OCI = {
    DOCKER_GZIP: "application/vnd.oci.image.layer.v1.tar+gzip",
    "application/vnd.docker.image.rootfs.diff.tar": "application/vnd.oci.image.layer.v1.tar",
}


def push(
    store: Store,
    name: str,
    *,
    progress: Progress | None = None,
    registry: Registry | None = None,
    chunk_size: int = 0,
) -> PushResult:
    """Push one tag. Layers stream in one PATCH each; ``chunk_size`` > 0 sends them in PATCH
    requests of that many bytes instead (for registries or proxies that limit a request)."""
    ref = reference.parse(name)
    if ref.digest:
        raise UsageError(f"cannot push {name!r}: push a NAME[:TAG], not a digest")
    emit = serialised(progress)
    if not ref.tag:
        emit(TransferEvent("", "", text="Using default tag: latest"))
        ref = ref.with_default_tag()
    index = store.index()
    image_id = index.tags.get(ref.full)
    if image_id is None:
        raise ImageNotFound(f"{ref.familiar} (tag it first: `ipydock tag IMAGE {ref.familiar}`)")
    rec = index.images[image_id]
    emit(TransferEvent("", "", text=f"The push refers to repository [{ref.repository}]"))
    config_bytes = store.blobs.get(rec.id)
    chain = store.layer_chain(rec)
    diff_ids = [layer.diff_id for layer in chain]
    with contextlib.ExitStack() as stack:
        reg = registry or stack.enter_context(Registry(ref.domain))
        reg.ping()
        for diff_id in reversed(diff_ids):
            emit(TransferEvent(diff_id[7:19], "Preparing"))
        abort = threading.Event()
        jobs = [partial(_push_config, reg, ref, rec.id, config_bytes)]  # beside the layers
        jobs += [partial(_push_layer, store, reg, ref, x, emit, chunk_size, abort) for x in chain]
        descs = run_all(jobs, PARALLEL, abort)[1:]
        body, media = _manifest(config_bytes, rec.id, descs)
        reg.put_manifest(ref.path, ref.tag or "latest", body, media)
    digest = "sha256:" + hashlib.sha256(body).hexdigest()
    with store.lock:
        index = store.index()
        if rec.id in index.images:
            index.add_repo_digest(rec.id, f"{ref.repository}@{digest}")
            index.save()
        meta.record(
            store, [(d, desc, ref.repository) for d, desc in zip(diff_ids, descs, strict=True)]
        )
    tag = ref.tag or "latest"
    emit(TransferEvent("", "", text=f"{tag}: digest: {digest} size: {len(body)}"))
    return PushResult(ref.familiar_repository, tag, digest, len(body))


def _push_config(reg: Registry, ref: reference.Reference, digest: str, config: bytes) -> dict:
    if reg.blob_size(ref.path, digest, "pull,push") is None:
        reg.upload(ref.path, digest, len(config), lambda: iter([config]))
    return {}


def _manifest(config: bytes, config_digest: str, layers: list[dict]) -> tuple[bytes, str]:
    """Docker v2 schema 2 as docker writes it (3-space indent); OCI when a layer is OCI-only."""
    docker = all(d["mediaType"] in _DOCKER_TYPES for d in layers)
    if not docker:
        layers = [{**d, "mediaType": _TO_OCI.get(d["mediaType"], d["mediaType"])} for d in layers]
    doc = {
        "schemaVersion": 2,
        "mediaType": DOCKER_MANIFEST if docker else OCI_MANIFEST,
        "config": {
            "mediaType": DOCKER_CONFIG if docker else OCI_CONFIG,
            "size": len(config),
            "digest": config_digest,
        },
        "layers": [
            {"mediaType": d["mediaType"], "size": d["size"], "digest": d["digest"]} for d in layers
        ],
    }
    return json.dumps(doc, indent=3).encode(), doc["mediaType"]  # type: ignore[return-value]


def _push_layer(
    store: Store, reg: Registry, ref: reference.Reference, layer: LayerRecord, emit: Progress,
    chunk_size: int, abort: threading.Event,
) -> dict:  # fmt: skip
    diff_id = layer.diff_id
    short = diff_id[7:19]
    if layer.blob:
        return _push_kept(store, reg, ref, layer, emit, chunk_size, abort)
    for known in meta.candidates(store, diff_id):
        source = reference.try_parse(known["repository"])
        if source is None or source.domain != reg.domain:
            continue
        desc = {k: known[k] for k in ("mediaType", "size", "digest")}
        if reg.blob_size(ref.path, known["digest"], "pull,push") is not None:
            emit(TransferEvent(short, "Layer already exists"))
            return desc
        if source.path != ref.path and reg.mount(ref.path, known["digest"], source.path):
            emit(TransferEvent(short, f"Mounted from {source.path}"))
            return desc
    if not chunk_size:
        return _stream_layer(store, reg, ref, diff_id, emit, abort)
    with TempFile(store.tmp_dir, prefix="push-") as tmp:
        digest, size = _gzip(store, diff_id, tmp, abort)
        desc = {"mediaType": DOCKER_GZIP, "size": size, "digest": digest}
        if reg.blob_size(ref.path, digest, "pull,push") is not None:
            emit(TransferEvent(short, "Layer already exists"))
            return desc
        parts = _chunks(tmp.path, short, size, emit, abort, chunk_size)
        reg.upload_chunked(ref.path, digest, parts)
    emit(TransferEvent(short, "Pushed", size, size))
    return desc


def _push_kept(
    store: Store, reg: Registry, ref: reference.Reference, layer: LayerRecord, emit: Progress,
    chunk_size: int, abort: threading.Event,
) -> dict:  # fmt: skip
    """Send the compressed blob a pull kept, unchanged: skipped when the repository has it,
    mounted from another repository of the registry that had it, else uploaded."""
    short = layer.diff_id[7:19]
    digest = layer.blob
    size = store.blobs.size(digest)
    desc = {"mediaType": layer.media_type, "size": size, "digest": digest}
    if reg.blob_size(ref.path, digest, "pull,push") is not None:
        emit(TransferEvent(short, "Layer already exists"))
        return desc
    for known in meta.candidates(store, layer.diff_id):
        source = reference.try_parse(known["repository"])
        if known["digest"] != digest or source is None or source.domain != reg.domain:
            continue
        if source.path != ref.path and reg.mount(ref.path, digest, source.path):
            emit(TransferEvent(short, f"Mounted from {source.path}"))
            return desc
    path = store.blobs.path(digest)
    if chunk_size:
        reg.upload_chunked(ref.path, digest, _chunks(path, short, size, emit, abort, chunk_size))
    else:
        reg.upload(ref.path, digest, size, partial(_chunks, path, short, size, emit, abort))
    emit(TransferEvent(short, "Pushed", size, size))
    return desc


def _stream_layer(
    store: Store, reg: Registry, ref: reference.Reference, diff_id: str, emit: Progress,
    abort: threading.Event,
) -> dict:  # fmt: skip
    """Compress and send at once (one streamed PATCH, as docker pushes); the digest, known at
    the end, goes in the closing PUT. A thread reads, gzips and digests a few chunks ahead of
    the socket. The stored tar is read as it is (``system check`` verifies the store; the
    registry digests what it gets): one hash per byte, not two. Progress counts the layer's
    uncompressed bytes."""
    short = diff_id[7:19]
    total = store.blobs.size(diff_id)
    if not store.blobs.has(diff_id):
        raise BlobNotFound(diff_id)
    producer = _Compressor(store.blobs.path(diff_id), abort)
    sent = [0, 0]  # compressed bytes, uncompressed bytes read

    def body() -> Iterator[bytes]:
        for out, read in producer.chunks():
            sent[0] += len(out)
            sent[1] += read
            if read:
                emit(TransferEvent(short, "Pushing", sent[1], total))
            if out:
                yield out

    try:
        digest = reg.upload_stream(ref.path, body(), producer.digest)
    finally:
        producer.stop()
    emit(TransferEvent(short, "Pushed", total, total))
    return {"mediaType": DOCKER_GZIP, "size": sent[0], "digest": digest}


class _Compressor:
    """gzip (ISA-L level 1, mtime 0) of a file in a thread of its own, a few chunks ahead."""

    def __init__(self, path: str, abort: threading.Event) -> None:
        self.path = path
        self.abort = abort
        self.hash = hashlib.sha256()
        self.q: queue.Queue[tuple[bytes, int] | BaseException | None] = queue.Queue(4)
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _put(self, item: tuple[bytes, int] | BaseException | None) -> None:
        while not self._stop.is_set():
            try:
                self.q.put(item, timeout=0.5)
                return
            except queue.Full:
                continue

    def _run(self) -> None:
        try:
            comp = gzip_compressor()
            with disk_errors(self.path), open(self.path, "rb") as src:
                while not self._stop.is_set():
                    if self.abort.is_set():
                        raise Aborted
                    data = src.read(1 << 20)
                    out = comp.compress(data) if data else comp.flush()
                    self.hash.update(out)
                    self._put((out, len(data)))
                    if not data:
                        break
            self._put(None)
        except BaseException as exc:  # noqa: BLE001 - raised in the sending thread
            self._put(exc)

    def chunks(self) -> Iterator[tuple[bytes, int]]:
        while (item := self.q.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            yield item

    def digest(self) -> str:
        self.thread.join()
        return "sha256:" + self.hash.hexdigest()

    def stop(self) -> None:
        self._stop.set()
        self.thread.join()


def _gzip(store: Store, diff_id: str, tmp: TempFile, abort: threading.Event) -> tuple[str, int]:
    """gzip the stored layer into ``tmp``: level 1 (ISA-L), mtime 0 so it is reproducible."""
    h = hashlib.sha256()
    comp = gzip_compressor()
    size = 0
    with store.blobs.open(diff_id) as src, disk_errors(tmp.path):
        while True:
            if abort.is_set():
                raise Aborted
            data = src.read(1 << 20)
            out = comp.compress(data) if data else comp.flush()
            h.update(out)
            tmp.file.write(out)
            size += len(out)
            if not data:
                break
        tmp.file.flush()
    return "sha256:" + h.hexdigest(), size


def _chunks(
    path: str, short: str, total: int, emit: Progress, abort: threading.Event,
    size: int = 1 << 20,
) -> Iterator[bytes]:  # fmt: skip
    done = 0
    with disk_errors(path), open(path, "rb") as f:
        while chunk := f.read(size):
            if abort.is_set():
                raise Aborted
            done += len(chunk)
            emit(TransferEvent(short, "Pushing", done, total))
            yield chunk
