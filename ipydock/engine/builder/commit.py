"""A step -> an image whose parent is the previous step's (or a cache hit).

When: after each instruction's dispatch. This is the classic builder's model: the parent chain
of step images is the build cache and the basis of ``<missing>``/dangling rules in history and
``image ls``. The layer (if any) is made outside the store lock (a RUN can take minutes); only
naming its blob, creating the layer record and committing the image take the lock. Every image,
layer and blob the build makes or finds is held by the build's lease from that same lock
section on, so a concurrent prune never takes a step image before its child or tag exists.

::

    Step --cache.lookup(parent, container_config)--> hit: state <- that image
         '--miss--> make_layer(tmp/diff) --write_tar--> blob (diff ID)
                    empty tar? -> empty_layer history row, no layer (as Docker)
                    [lock] layers.adopt|create --> commit_image(config, parent) [unlock]
"""

from __future__ import annotations

import copy
import json
import os
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from ipydock.engine.builder import cache
from ipydock.engine.builder.state import StageState, Step
from ipydock.engine.store import Store
from ipydock.engine.store.fsutil import temp_dir
from ipydock.engine.store.index import ImageIndex, format_time
from ipydock.engine.store.layers import LayerRecord
from ipydock.engine.store.layertar import write_tar
from ipydock.engine.store.leases import Lease

__all__ = ["Clock", "apply_step", "container_config"]


@dataclass(frozen=True)
class Clock:
    """Creation times and the mtime clamp: fixed in reproducible mode."""

    epoch: int | None = None

    def now(self, store: Store) -> str:
        if self.epoch is not None:
            return format_time(datetime.fromtimestamp(self.epoch, timezone.utc))
        return format_time(store.now())


def container_config(state: StageState, step: Step) -> dict[str, Any]:
    """Docker's ``container_config``: the config the step ran with, ``Cmd`` its created-by."""
    cfg = copy.deepcopy(state.container)
    cfg["Cmd"] = list(step.cmd)
    return cfg


def apply_step(
    store: Store, state: StageState, step: Step, *, no_cache: bool, clock: Clock, lease: Lease,
    index: ImageIndex | None = None,
) -> tuple[str, bool]:  # fmt: skip
    """Make (or find) the step's image and move ``state`` onto it: ``(image id, cached)``.
    ``index``: the store as the build last read it (for the cache lookup)."""
    cc = container_config(state, step)
    if not no_cache:
        hit = cache.lookup(store, state.image_id, cc, index)
        if hit is not None:
            rec, config = hit
            with store.lock:  # still there (another process may have pruned it)? hold it
                found = store.index().images.get(rec.id)
                if found is not None:
                    lease.hold_image(found)
                    state.image_id, state.config = rec.id, config
                    state.layers = store.layer_chain(found)
                    return rec.id, True
    if step.make_layer is None:
        with store.lock:
            image_id = _commit(store, state, step, cc, None, clock, lease)
        return image_id, False
    with temp_dir(store.tmp_dir, "step-") as tmp:
        diff = os.path.join(tmp, "diff")
        os.mkdir(diff, 0o755)
        step.make_layer(diff)
        with store.blobs.writer() as w:
            result = write_tar(diff, w, whiteouts="overlay", mtime_clamp=clock.epoch)  # type: ignore[arg-type]
            layer = None
            with store.lock:
                if result.entries:
                    diff_id = w.commit()
                    lease.add("blob", diff_id)
                    layer = _make_layer(store, state, tmp, diff_id, result.size)
                    lease.add("layer", layer.chain_id)
                image_id = _commit(store, state, step, cc, layer, clock, lease)
    return image_id, False


def _make_layer(store: Store, state: StageState, tmp: str, diff_id: str, size: int) -> LayerRecord:
    parent = state.layers[-1].chain_id if state.layers else ""
    if store.layers.driver.name in ("overlay", "fuse-overlayfs"):  # snapshots.LAYERED
        return store.layers.adopt(tmp, parent, diff_id, size)
    return store.layers.create(parent, diff_id, store.blobs.opener(diff_id), "build step")


def _commit(
    store: Store,
    state: StageState,
    step: Step,
    cc: dict[str, Any],
    layer: LayerRecord | None,
    clock: Clock,
    lease: Lease,
) -> str:
    config = state.snapshot()
    created = clock.now(store)
    row: dict[str, Any] = {"created": created, "created_by": step.created_by}
    if layer is None:
        row["empty_layer"] = True
    config["created"] = created
    config["container_config"] = cc
    config["history"] = [*(config.get("history") or []), row]
    rootfs = config.setdefault("rootfs", {"type": "layers", "diff_ids": []})
    layers = list(state.layers)
    if layer is not None:
        rootfs["diff_ids"] = [*rootfs.get("diff_ids", []), layer.diff_id]
        layers.append(layer)
    data = json.dumps(config, separators=(",", ":"), sort_keys=True).encode()
    rec, _ = store.commit_image(data, layers, parent=state.image_id, lease=lease)
    state.image_id, state.config, state.layers = rec.id, config, layers
    return rec.id
