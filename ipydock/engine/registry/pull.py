"""``pull NAME[:TAG|@DIGEST]``: manifest, config and layers from a registry into the store.

::

    GET manifest ──index/list?──> pick linux/ARCH[/VARIANT] ──> GET manifest (digest checked)
    GET config (digest checked) ──> rootfs.diff_ids
    each missing layer, up to 3 at a time, a thread each:
        GET blob ──sha256──> ROOT/tmp/pull-*, kept compressed as it came (resumed with Range
        after a dropped connection; a blob longer than announced stops; its writing to disk
        started every 8 MB, fsync once checked)
    under the store lock, each layer as its file grows (later ones still downloading):
        the temp file ──Decoder (ISA-L gzip | zstd; a thread ahead)──sha256 (diff ID)──>
        unpack a snapshot (in a temp dir); at the end of the blob, once its digest checked:
        rename into blobs/<blob digest>; at the end of the tar, once the diff ID checked: the
        snapshot is renamed into layers/ (in order), its record naming the compressed blob.
        A layered driver's snapshots (overlay: each holds only its own files) are unpacked
        up to UNPACKERS at a time, each into a temp dir of its own; others one on another.
    config + manifest ──> index.json with the tag and REPO@DIGEST (the commit point)

The config is stored byte for byte, so the image ID is the one docker gives; the layers are kept
as the registry served them, so a push sends the same blobs (the same manifest digests). A
crash leaves only temp files (``system check --repair`` removes them) and whole blobs and
layers, which the next pull reuses. The engine prints nothing: progress goes to the
``progress`` callback as :class:`~ipydock.models.TransferEvent`.
"""

from __future__ import annotations

import collections
import contextlib
import functools
import hashlib
import os
import platform as _platform
import threading
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import BinaryIO, cast

from ipydock.engine.registry import meta, reference
from ipydock.engine.registry.client import (
    DOCKER_LIST,
    DOCKER_MANIFEST,
    OCI_INDEX,
    OCI_MANIFEST,
    Registry,
)
from ipydock.engine.registry.parallel import Aborted, Jobs, serialised
from ipydock.engine.registry.transport import transport_errors
from ipydock.engine.store import shape
from ipydock.engine.store.compression import Decoder, LayerTar
from ipydock.engine.store.fsutil import TempFile, disk_errors, fsync_dir, remove_tree, temp_dir
from ipydock.engine.store.layers import LayerRecord
from ipydock.engine.store.leases import Lease
from ipydock.engine.store.snapshots import LAYERED
from ipydock.engine.store.store import Store
from ipydock.errors import (
    DigestMismatch,
    IPyDockError,
    RegistryError,
    RegistryUnreachable,
    UsageError,
)
from ipydock.models import PullResult, TransferEvent

__all__ = ["host_platform", "parse_platform", "pull"]

Progress = Callable[[TransferEvent], None]
PARALLEL = 3
#: Layers unpacked at once (layered drivers): creating a layer's files is most of a big
#: pull's time, much of it the kernel's, and each file system call releases the GIL.
UNPACKERS = max(1, min(3, os.cpu_count() or 1))
#: A layer is decompressed in a thread apart from the one writing its files (see _ReadAhead).
READ_AHEAD = (os.cpu_count() or 1) > 1
#: Decompressed bytes the read-ahead keeps waiting at most (beyond one piece).
AHEAD = 16 << 20
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
    dl: _Download | None = None


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
        # A new store chooses its snapshot driver (an overlay mount probe, 0.1-0.3 s) at its
        # first layer: meanwhile the manifest and config come in. Joined on every way out.
        chooser = threading.Thread(target=_choose_driver, args=(store,), daemon=True)
        chooser.start()
        stack.callback(chooser.join)
        reg = registry or stack.enter_context(Registry(ref.domain))
        emit(TransferEvent("", "", text=f"{ref.tag or ref.digest}: Pulling from {ref.path}"))
        try:  # what the registry sent must have the shape its format says
            top_digest, manifest = _manifest(reg, ref, want)
            config_desc = shape.descriptor(manifest.get("config"), "the manifest's config")
            config_bytes = _small_blob(reg, ref.path, config_desc)
            config = shape.json_object(config_bytes, "the image config")
            layers = _plan(store, manifest, config, reg.domain)
        except shape.ShapeError as exc:
            raise RegistryError(reg.domain, f"{ref.familiar}: {exc}") from exc
        for layer in layers:
            emit(TransferEvent(layer.short, _initial_status(store, layer)))
        # What is here already is held from now on (a concurrent prune could take it before
        # the commit below names it); the rest is downloaded.
        lease = stack.enter_context(store.lease())
        todo = []
        with store.lock:
            for x in layers:
                if store.layers.has(x.chain):
                    lease.add("layer", x.chain)
                elif store.blobs.has(x.desc["digest"]):  # kept by a pull that stopped
                    lease.add("blob", x.desc["digest"])
                elif store.blobs.has(x.diff_id):  # its tar is here (a load, a build)
                    lease.add("blob", x.diff_id)
                else:
                    todo.append(x)
        for layer in todo:
            layer.dl = _Download(stack.enter_context(TempFile(store.tmp_dir, prefix="pull-")))
        abort = threading.Event()
        jobs = stack.enter_context(
            Jobs([partial(_download, reg, ref.path, x, emit, abort) for x in todo], PARALLEL, abort)
        )
        waiting = {id(x): i for i, x in enumerate(todo)}
        repo_digest = f"{ref.repository}@{top_digest}"
        # Layers unpack in order, each as its blob arrives, while later ones still download;
        # the lock is held from the first unpack to the commit (nothing unnamed is exposed to
        # another writer's garbage collection in between).
        chooser.join()
        with store.lock:
            before = store.index().tags.get(ref.full) if ref.tag else None
            unpack = stack.enter_context(_Unpacker(store, lease, layers, ref.familiar, emit, abort))
            records: list[LayerRecord] = []
            for i, layer in enumerate(layers):
                parent = records[-1].chain_id if records else ""
                try:
                    records.append(unpack.layer(i, parent))
                except (Aborted, IPyDockError, OSError) as exc:
                    if id(layer) in waiting:  # the download's own failure says more
                        jobs.result(waiting[id(layer)])
                    if isinstance(exc, Aborted):
                        raise RegistryError(reg.domain, f"{ref.familiar}: pull stopped") from exc
                    raise
                if id(layer) in waiting:
                    jobs.result(waiting[id(layer)])
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


def _choose_driver(store: Store) -> None:
    """Settle the store's snapshot driver; a failure is raised again where it is used."""
    with contextlib.suppress(Exception):
        store.layers.driver  # noqa: B018 - a cached property: computed once, here


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
        desc = _pick(shape.json_object(body, "the index"), want, ref.familiar, reg.domain)
        body, media = reg.get_manifest(ref.path, desc["digest"], ref.familiar)
        if _digest(body) != desc["digest"]:
            raise DigestMismatch(desc["digest"], _digest(body), f"manifest of {ref.familiar}")
    if media not in (OCI_MANIFEST, DOCKER_MANIFEST):
        raise RegistryError(reg.domain, f"{ref.familiar}: unsupported manifest type {media!r}")
    return top_digest, shape.json_object(body, "the manifest")


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _pick(index: dict, want: tuple[str, str, str], shown: str, registry: str) -> dict:
    os_, arch, variant = want
    found = []
    entries = [shape.descriptor(m, "an index entry")
               for m in shape.array(index.get("manifests"), "the index's manifests")]  # fmt: skip
    for m in entries:
        p = shape.obj(m.get("platform") or {}, "an index entry's platform")
        if p.get("os") == os_ and p.get("architecture") == arch:
            found.append((p.get("variant", "") == variant, m))
    if not found:
        have = ", ".join(
            "/".join(filter(None, [p.get("os"), p.get("architecture"), p.get("variant")]))
            for p in ((m.get("platform") or {}) for m in entries)
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

    descs = [
        shape.descriptor(d, "a layer")
        for d in shape.array(manifest.get("layers"), "the manifest's layers")
    ]
    rootfs = shape.obj(config.get("rootfs") or {}, "the config's rootfs")
    diff_ids = [
        shape.digest(d, "a diff ID")
        for d in shape.array(rootfs.get("diff_ids"), "the config's diff_ids")
    ]
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


class _Download:
    """A blob a download thread writes to a temp file, read by the unpacker as it grows."""

    def __init__(self, tmp: TempFile) -> None:
        self.tmp = tmp
        self.cond = threading.Condition()
        self.written = 0
        self.generation = 0  # a restart from byte 0 makes what was read worthless
        self.finished = False  # all there, digest checked, synced
        self.failed = False

    def restart(self) -> None:
        with self.cond:
            self.generation += 1
            self.written = 0
            os.ftruncate(self.tmp.file.fileno(), 0)
            os.lseek(self.tmp.file.fileno(), 0, os.SEEK_SET)
            self.cond.notify_all()

    def wrote(self, n: int) -> None:
        with self.cond:
            self.written += n
            self.cond.notify_all()

    def end(self, *, ok: bool) -> None:
        with self.cond:
            self.finished, self.failed = ok, not ok
            self.cond.notify_all()


#: Bytes of a blob after which their writing to disk is started (see _start_writeback).
WRITEBACK = 8 << 20


@functools.cache
def _sync_file_range() -> Callable[[int, int, int, int], int] | None:
    try:
        import ctypes

        call = ctypes.CDLL(None, use_errno=True).sync_file_range
    except (OSError, AttributeError):  # not Linux's C library
        return None
    call.argtypes = (ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint)
    call.restype = ctypes.c_int
    return cast(Callable[[int, int, int, int], int], call)


def _start_writeback(fd: int, offset: int, length: int) -> None:
    """Start writing a downloaded range to disk without waiting for it
    (``sync_file_range(SYNC_FILE_RANGE_WRITE)``), as the blob comes in: the fsync once the
    blob is whole (which the unpacker's end waits for) then has little left to write, where
    it had the whole blob (70 ms for 55 MB here). Only a hint: a failure changes nothing."""
    call = _sync_file_range()
    if call is not None:
        call(fd, offset, length, 2)  # SYNC_FILE_RANGE_WRITE


class _Restarted(Exception):
    """The download started again from byte 0 under an unpack that had read some."""


class _Growing:
    """Read a :class:`_Download`'s file as it grows; the end comes once the download is
    finished (its digest checked), and then ``at_end`` runs first (it commits the blob)."""

    def __init__(self, dl: _Download, at_end: Callable[[], None], abort: threading.Event) -> None:
        self.dl = dl
        self.at_end = at_end
        self.abort = abort
        self.cancelled = False  # its reader stopped (see cancel)
        self.fd = os.open(dl.tmp.path, os.O_RDONLY | os.O_CLOEXEC)
        self.pos = 0
        self.generation = dl.generation

    def read(self, n: int = -1) -> bytes:
        dl = self.dl
        with dl.cond:
            while True:
                if dl.generation != self.generation:
                    raise _Restarted
                if dl.failed or self.abort.is_set() or self.cancelled:
                    raise Aborted
                if dl.written > self.pos or dl.finished:
                    break
                dl.cond.wait(0.25)  # an abort (another layer failed) is seen within that
            avail = dl.written - self.pos
            finished = dl.finished
        if not avail and finished:
            if self.at_end is not None:
                self.at_end()
                self.at_end = None  # type: ignore[assignment]
            return b""
        want = avail if n is None or n < 0 else min(n, avail)
        data = os.pread(self.fd, want, self.pos)
        self.pos += len(data)
        return data

    def cancel(self) -> None:
        """Stop a read waiting for bytes (from another thread): its reader gave up."""
        with self.dl.cond:
            self.cancelled = True
            self.dl.cond.notify_all()

    def close(self) -> None:
        os.close(self.fd)


def _download(
    reg: Registry, name: str, layer: _Layer, emit: Progress, abort: threading.Event
) -> None:
    """Stream one blob into the layer's temp file as it came, digesting it on the way; resume
    after a dropped connection. Once the digest is checked the file is synced (here, off the
    unpacker's path)."""
    dl = layer.dl
    assert dl is not None
    try:
        _fetch(reg, name, layer, dl, emit, abort)
    except BaseException:
        dl.end(ok=False)
        raise
    dl.end(ok=True)


def _fetch(
    reg: Registry, name: str, layer: _Layer, dl: _Download, emit: Progress,
    abort: threading.Event,
) -> None:  # fmt: skip
    digest, total = layer.desc["digest"], int(layer.desc.get("size", 0))
    fd = dl.tmp.file.fileno()
    h = hashlib.sha256()
    done = flushed = 0
    for attempt in range(4):
        resp = reg.open_blob(name, digest, done)
        try:
            if done and resp.status_code != 206:  # the Range was ignored: start again
                dl.restart()
                h, done, flushed = hashlib.sha256(), 0, 0
            last = 0
            with disk_errors(dl.tmp.path), transport_errors(reg.domain):
                for chunk in resp.iter_raw():
                    if abort.is_set():
                        raise Aborted
                    if total and done + len(chunk) > total:
                        raise RegistryError(
                            reg.domain, f"blob {digest[:19]} is longer than its {total} bytes"
                        )
                    h.update(chunk)
                    view = memoryview(chunk)
                    while view:
                        view = view[os.write(fd, view) :]
                    done += len(chunk)
                    dl.wrote(len(chunk))
                    if done - flushed >= WRITEBACK:
                        _start_writeback(fd, flushed, done - flushed)
                        flushed = done
                    if done - last >= 1 << 20:
                        last = done
                        emit(TransferEvent(layer.short, "Downloading", done, total))
            break
        except RegistryUnreachable:
            if attempt == 3:
                raise  # dropped four times: give up, the temp file goes
        finally:
            resp.close()
    emit(TransferEvent(layer.short, "Verifying Checksum"))
    actual = "sha256:" + h.hexdigest()
    if actual != digest:
        raise DigestMismatch(digest, actual, f"layer {layer.short} from {reg.domain}")
    with disk_errors(dl.tmp.path):
        os.fsync(fd)
    emit(TransferEvent(layer.short, "Download complete", done, total))


class _ReadAhead:
    """A layer's tar, decompressed a few chunks ahead in a thread of its own (ISA-L releases
    the GIL) while the unpacker's thread parses it, writes the files and digests it (the diff
    ID, checked at the end of the stream before ``read`` says EOF): the two threads' shares
    of the work are about even. The decompressor's failures are raised by :meth:`read`.
    What waits between the two is bounded in bytes (AHEAD), not pieces: a piece of a layer
    that compresses well is many times the compressed chunk it came from."""

    def __init__(self, raw: _Growing, diff_id: str, label: str) -> None:
        self.raw, self.diff_id, self.label = raw, diff_id, label
        self.hash = hashlib.sha256()
        self.cond = threading.Condition()
        self.pieces: collections.deque[bytes | BaseException] = collections.deque()
        self.queued = 0  # bytes in pieces
        self.stop = threading.Event()
        self.head = b""
        self.off = 0
        self.eof = False
        self.failure: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            decoder = Decoder(self.label)
            while not self.stop.is_set():
                data = self.raw.read(1 << 19)
                plain = decoder.feed(data) if data else decoder.finish()
                if plain:
                    self._put(plain)
                if not data:
                    self._put(b"")
                    return
        except BaseException as exc:  # noqa: BLE001 - raised in the reading thread
            self._put(exc)

    def _put(self, item: bytes | BaseException) -> None:
        with self.cond:
            while self.queued >= AHEAD and not self.stop.is_set():
                self.cond.wait(0.25)
            if isinstance(item, bytes):
                self.queued += len(item)
            self.pieces.append(item)
            self.cond.notify_all()

    def _get(self) -> bytes | BaseException:
        with self.cond:
            while not self.pieces:
                self.cond.wait()
            item = self.pieces.popleft()
            if isinstance(item, bytes):
                self.queued -= len(item)
            self.cond.notify_all()
            return item

    def _next(self) -> None:
        """The next decompressed piece as ``head`` (digested); at the end, the check."""
        if self.failure is not None:
            raise self.failure
        item = self._get()
        if isinstance(item, BaseException):
            self.failure = item
            raise item
        self.head, self.off = item, 0
        if item:
            self.hash.update(item)
            return
        self.eof = True
        actual = "sha256:" + self.hash.hexdigest()
        if actual != self.diff_id:
            self.failure = DigestMismatch(self.diff_id, actual, f"{self.label} (diff ID)")
            raise self.failure

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            return b"".join(iter(lambda: self.read(1 << 20), b""))
        if self.off == len(self.head):
            if self.eof:
                return b""
            self._next()
            if self.eof:
                return b""
        if self.off == 0 and n >= len(self.head):
            self.off = len(self.head)
            return self.head  # the whole piece, as it came (no copy)
        data = self.head[self.off : self.off + n]
        self.off += len(data)
        return data

    def close(self) -> None:
        self.stop.set()
        self.raw.cancel()  # the unpacker failed: do not wait for the rest of the download
        self.thread.join()
        self.raw.close()

    def __enter__(self) -> _ReadAhead:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Unpacker:
    """The layers' snapshots, handed out in order (:meth:`layer`). With a layered driver the
    missing ones unpack side by side as their blobs arrive (up to UNPACKERS, each into a temp
    dir of its own; :meth:`layer` names each in turn, parent first); otherwise each is made on
    its parent's, one after the other, when it is asked for."""

    def __init__(
        self, store: Store, lease: Lease, layers: list[_Layer], label: str, emit: Progress,
        abort: threading.Event,
    ) -> None:  # fmt: skip
        self.store, self.lease, self.layers = store, lease, layers
        self.label, self.emit, self.abort = label, emit, abort
        self.commit_lock = threading.Lock()  # blobs named (and leased) one at a time
        self.stack = contextlib.ExitStack()
        self.ahead: dict[int, tuple[str, int]] = {}  # layer index -> (temp dir, job index)
        self.jobs: Jobs[int] | None = None

    def __enter__(self) -> _Unpacker:
        store = self.store
        if UNPACKERS > 1 and store.layers.driver.name in LAYERED:
            jobs: list[Callable[[], int]] = []
            for i, layer in enumerate(self.layers):
                if not store.layers.has(layer.chain):
                    # made here, before any job, so they go after the jobs have stopped
                    tmp = self.stack.enter_context(temp_dir(store.tmp_dir, "layer-"))
                    self.ahead[i] = (tmp, len(jobs))
                    jobs.append(partial(self._extract, layer, tmp))
            if jobs:
                self.jobs = self.stack.enter_context(Jobs(jobs, UNPACKERS, self.abort))
        return self

    def __exit__(self, *exc: object) -> None:
        self.stack.__exit__(*exc)  # type: ignore[arg-type]

    def layer(self, i: int, parent: str) -> LayerRecord:
        layer = self.layers[i]
        store = self.store
        if i not in self.ahead or store.layers.has(layer.chain):
            return self._create(layer, parent)
        tmp, job = self.ahead[i]
        assert self.jobs is not None
        size = self.jobs.result(job)
        _, blob, media = self._source(layer)
        rec = store.layers.adopt(tmp, parent, layer.diff_id, size, blob=blob, media_type=media)
        self.emit(TransferEvent(layer.short, "Pull complete"))
        return rec

    def _extract(self, layer: _Layer, tmp: str) -> int:
        """Unpack one layer into ``tmp``/diff (a job); its size."""
        self.emit(TransferEvent(layer.short, "Extracting"))
        driver = self.store.layers.driver
        dest = os.path.join(tmp, "diff")
        for attempt in range(2):
            opener, _, _ = self._source(layer)
            try:
                with disk_errors(tmp), opener() as stream:
                    return driver.create(dest, None, stream, source=self.label).size
            except _Restarted:  # rare (a server that ignored a Range): follow it from byte 0
                if attempt:
                    raise
                remove_tree(dest)
        raise AssertionError("unreachable")

    def _create(self, layer: _Layer, parent: str) -> LayerRecord:
        """Unpack a layer on its parent's snapshot (or find it made)."""
        store = self.store
        if store.layers.has(layer.chain):
            return store.layers.get(layer.chain)
        self.emit(TransferEvent(layer.short, "Extracting"))
        for attempt in range(2):
            opener, blob, media = self._source(layer)
            try:
                rec = store.layers.create(parent, layer.diff_id, opener, self.label,
                                          blob=blob, media_type=media)  # fmt: skip
                break
            except _Restarted:  # rare (a server that ignored a Range): follow it from byte 0
                if attempt:
                    raise
        self.emit(TransferEvent(layer.short, "Pull complete"))
        return rec

    def _source(self, layer: _Layer) -> tuple[Callable[[], BinaryIO], str, str]:
        """(an opener of the layer's tar, the blob its record names, that blob's media type):
        the blob being downloaded (read as it grows), one kept here already, or the layer's
        tar blob when that is here (a load, a build)."""
        store = self.store
        digest, media = layer.desc["digest"], layer.desc.get("mediaType", "")
        dl = layer.dl
        if dl is None or store.blobs.has(digest):
            if store.blobs.has(digest):
                kept = LayerRecord("", layer.diff_id, "", 0, "", digest, media)
                return store.layer_tar(kept), digest, media
            return store.blobs.opener(layer.diff_id), "", ""
        blob_path = store.blobs.path(digest)

        def commit_blob() -> None:  # the blob is whole and checked: name it, hold it
            with self.commit_lock, disk_errors(store.blobs.dir):
                if not os.path.exists(blob_path):
                    os.rename(dl.tmp.path, blob_path)
                    fsync_dir(store.blobs.dir)
                self.lease.add("blob", digest)

        def growing() -> BinaryIO:
            raw = _Growing(dl, commit_blob, self.abort)
            label = f"layer {layer.short}"
            if READ_AHEAD:
                return cast(BinaryIO, _ReadAhead(raw, layer.diff_id, label))
            return cast(BinaryIO, LayerTar(raw, "", layer.diff_id, label))

        return growing, digest, media
