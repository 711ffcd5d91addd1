"""``system check [--repair]`` and ``system df``: is the store whole, and what does it hold.

::

    index.json ──> every image: manifest, config, layer blobs (digests re-checked),
                   layer records and chain, parent link          -> problems
    blobs/, layers/, tmp/ ──> whatever no image names           -> garbage
    leases/               ──> leases of processes that are gone  -> garbage (what a live
                              lease holds is not garbage: an operation in flight uses it)

Problems make the store inconsistent (something named is missing or corrupt); garbage is what an
interrupted write leaves behind and is harmless. ``--repair`` removes garbage, unnames broken
images (their data is gone already) and drops parent links to images that no longer exist.
Temp entries of a running process (named for it, or locked by it) are neither garbage nor
touched.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Callable
from functools import partial

from ipydock.engine.store import gc
from ipydock.engine.store.fsutil import owner_alive_in, remove_tree
from ipydock.engine.store.index import ImageIndex, ImageRecord
from ipydock.engine.store.leases import read_leases
from ipydock.engine.store.store import Store
from ipydock.errors import IPyDockError
from ipydock.models import CheckReport, DiskUsage

__all__ = ["check", "disk_usage"]


def check(store: Store, *, repair: bool = False) -> CheckReport:
    """Problems and garbage; with ``repair``, a store that checks clean afterwards (one pass):
    lost snapshots are extracted again from their layer blobs, images whose data is gone are
    unnamed (and links to them dropped), then what no image uses any more is removed."""
    report = CheckReport()
    with store.lock:
        index = store.index()
        if repair:
            _restore_snapshots(store, index, report)
        usage: dict[str, tuple[set[str], set[str]]] = {}
        broken: list[str] = []
        for rec in list(index.images.values()):
            blobs: set[str] = set()
            layers: set[str] = set()
            found = _check_image(store, rec, blobs, layers)
            usage[rec.id] = (blobs, layers)
            if rec.parent and rec.parent not in index.images:
                report.problems.append(f"image {rec.short_id}: parent {rec.parent[:19]} is missing")
                if repair:
                    rec.parent = ""
                    report.repaired.append(f"dropped the parent link of {rec.short_id}")
            if found:
                report.problems.extend(found)
                broken.append(rec.id)
        if repair:
            for image_id in broken:
                index.remove_image(image_id)
                report.repaired.append(f"removed broken image {image_id[7:19]}")
                del usage[image_id]
            for rec in index.images.values():
                if rec.parent in broken:
                    rec.parent = ""
                    report.repaired.append(f"dropped the parent link of {rec.short_id}")
            index.save()
        used_blobs = set().union(*(blobs for blobs, _ in usage.values()))
        used_layers = set().union(*(layers for _, layers in usage.values()))
        held = read_leases(store.root)
        leased_blobs, leased_layers = gc.live(store, index, held)
        garbage = _garbage(store, used_blobs | leased_blobs, used_layers | leased_layers)
        garbage += [(f"expired lease {os.path.basename(p)}", partial(_unlink, p))
                    for p in held.expired]  # fmt: skip
        report.garbage.extend(label for label, _ in garbage)
        if repair:
            for label, remove in garbage:
                remove()
                report.repaired.append(f"removed {label}")
    return report


def _restore_snapshots(store: Store, index: ImageIndex, report: CheckReport) -> None:
    """Extract again, bottom first, every layer snapshot that is gone while its blob is there."""
    done: set[str] = set()
    for rec in index.images.values():
        try:
            chain = store.layer_chain(rec)
        except IPyDockError:
            continue  # a layer record is missing: the image is reported broken
        for layer in chain:
            if layer.chain_id in done or os.path.isdir(store.layers.snapshot(layer.chain_id)):
                continue
            if not os.path.exists(store.blobs.path(layer.stored)):
                break  # nothing to extract it from: the image is reported broken
            store.layers.remove(layer.chain_id)
            store.layers.create(layer.parent, layer.diff_id, store.layer_tar(layer),
                                source=f"layer {layer.diff_id[7:19]}", blob=layer.blob,
                                media_type=layer.media_type)  # fmt: skip
            done.add(layer.chain_id)
            report.repaired.append(f"extracted the snapshot of layer {layer.chain_id[7:19]} again")


def _check_image(
    store: Store, rec: ImageRecord, used_blobs: set[str], used_layers: set[str]
) -> list[str]:
    who = f"image {rec.short_id}"
    used_blobs.update((rec.manifest, rec.id))
    try:
        manifest = store.manifest(rec)
        config = store.config(rec)
    except IPyDockError as exc:
        return [f"{who}: {exc}"]
    problems = []
    if manifest.get("config", {}).get("digest") != rec.id:
        problems.append(f"{who}: its manifest names another config")
    layer_digests = [d["digest"] for d in manifest.get("layers") or []]
    used_blobs.update(layer_digests)
    diff_ids = (config.get("rootfs") or {}).get("diff_ids", [])
    if len(layer_digests) != len(diff_ids):
        problems.append(f"{who}: manifest layers differ from the config's diff_ids")
    for digest in layer_digests:  # tar blobs, or compressed blobs as a pull kept them
        try:
            with store.blobs.open(digest) as f:
                while f.read(1 << 20):
                    pass
        except IPyDockError as exc:
            problems.append(f"{who}: {exc}")
    try:
        chain = store.layer_chain(rec)
    except IPyDockError as exc:
        return [*problems, f"{who}: {exc}"]
    used_layers.update(layer.chain_id for layer in chain)
    used_blobs.update(layer.diff_id for layer in chain)
    if [layer.stored for layer in chain] != layer_digests:
        problems.append(f"{who}: its layer chain does not match its manifest")
    if [layer.diff_id for layer in chain] != diff_ids:
        problems.append(f"{who}: its layer chain does not match the config's diff_ids")
    for layer in chain:
        if not os.path.isdir(store.layers.snapshot(layer.chain_id)):
            problems.append(f"{who}: snapshot of layer {layer.chain_id[7:19]} is missing")
    return problems


def _garbage(
    store: Store, used_blobs: set[str], used_layers: set[str]
) -> list[tuple[str, Callable[[], None]]]:
    out: list[tuple[str, Callable[[], None]]] = []
    for digest in store.blobs.digests():
        if digest not in used_blobs:
            out.append((f"orphan blob {digest[7:19]}", partial(store.blobs.remove, digest)))
    for chain in store.layers.all():
        if chain not in used_layers:
            out.append((f"orphan layer {chain[7:19]}", partial(store.layers.remove, chain)))
    for name in sorted(os.listdir(store.tmp_dir)):
        path = os.path.join(store.tmp_dir, name)
        if not owner_alive_in(name) and not _in_use(path):
            out.append((f"leftover temp {name}", partial(remove_tree, path)))
    for name in sorted(os.listdir(store.root)):  # networks.json.<pid>.tmp of a killed writer
        pid = name.split(".")[-2] if name.count(".") >= 2 else ""
        if name.endswith(".tmp") and pid.isdigit() and not os.path.exists(f"/proc/{pid}"):
            path = os.path.join(store.root, name)
            out.append((f"leftover temp {name}", partial(_unlink, path)))
    return out


def _unlink(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def _in_use(path: str) -> bool:
    """A temp file or dir is in use while its writer holds a flock on it."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        with contextlib.suppress(OSError):
            os.close(fd)
    return False


def disk_usage(store: Store) -> DiskUsage:
    """The ``Images`` row of ``system df``: shared layers counted once."""
    index = store.index()
    sizes: dict[str, int] = {}
    active_layers: set[str] = set()
    active = 0
    for rec in index.images.values():
        chain = store.layer_chain(rec)
        sizes.update((layer.chain_id, layer.size) for layer in chain)
        if store.container_use(rec.id):
            active += 1
            active_layers.update(layer.chain_id for layer in chain)
    total = sum(sizes.values())
    in_use = sum(sizes[c] for c in active_layers)
    return DiskUsage("Images", len(index.images), active, total, total - in_use)
