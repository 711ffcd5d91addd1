"""A container's writable layer as data: ``commit`` (-> an image) and ``cp`` (tar in and out).

::

    upper/ --write_tar(overlay whiteouts)--> blob --layers.create--> layer on the image's top
           config: image config + the container's Cmd/Env/... + one history row --> new image
    cp out: running -> /proc/PID/root (its merged view, volumes included); stopped -> the layer
            dirs read through store.layerview -> a tar stream
    cp in:  a tar --apply_tar (safe: nothing lands outside)--> /proc/PID/root/DEST or upper/DEST

The image a container came from is never touched: commit adds a layer on top, cp into a
stopped container writes into its upper dir only.
"""

from __future__ import annotations

import json
import os
import stat
import tarfile
from typing import TYPE_CHECKING, Any, BinaryIO

from ipydock.engine.containers.lifecycle import records_of, refresh
from ipydock.engine.containers.state import Status
from ipydock.engine.registry import reference
from ipydock.engine.runtime.paths import secure_join
from ipydock.engine.store.changes import apply_changes
from ipydock.engine.store.index import format_time
from ipydock.engine.store.layertar import apply_tar, write_tar
from ipydock.engine.store.layerview import LayerView
from ipydock.errors import UsageError

if TYPE_CHECKING:
    from ipydock.engine.store import Store

__all__ = ["commit", "copy_from", "copy_to", "export"]

_KEEP = ("Hostname", "User", "Env", "Cmd", "Entrypoint", "WorkingDir", "Volumes", "StopSignal",
         "Labels")  # fmt: skip


def commit(
    store: Store, ref: str, target: str | None = None, *, message: str = "", author: str = "",
    changes: tuple[str, ...] = (),
) -> str:  # fmt: skip
    """A new image: the container's image plus its writable layer; returns the image ID."""
    rec = records_of(store).find(ref)
    from ipydock.engine.containers.views import tracked

    tracked(rec, "container commit")
    tags = [reference.parse(target).with_default_tag().full] if target else []
    with store.lock:
        image = store.index().images.get(rec.config["Image"])
        if image is None:
            raise UsageError(f"the image of container {rec.name} is gone; cannot commit")
        config = store.config(image)
        layers = store.layer_chain(image)
        with store.blobs.writer() as w:
            write_tar(rec.path("upper"), w, whiteouts="overlay")  # type: ignore[arg-type]
            diff_id = w.commit()
        top = layers[-1].chain_id if layers else ""
        layers.append(store.layers.create(top, diff_id, store.blobs.opener(diff_id), "commit"))
        image_config = _new_config(store, config, rec.config, diff_id, message, author, changes)
        rec_img, _ = store.commit_image(
            json.dumps(image_config).encode(), layers, parent=image.id, tags=tags
        )
        return rec_img.id


def _new_config(
    store: Store, base: dict[str, Any], container: dict[str, Any], diff_id: str, message: str,
    author: str, changes: tuple[str, ...],
) -> dict[str, Any]:  # fmt: skip
    config = json.loads(json.dumps(base))
    inner = dict(config.get("config") or {})
    inner.update({k: container["Config"][k] for k in _KEEP if container["Config"].get(k)})
    config["config"] = apply_changes(inner, changes) if changes else inner
    created = format_time(store.now())
    config["created"] = created
    config["container"] = container["Id"]
    if author:
        config["author"] = author
    row = {"created": created, "created_by": " ".join([container["Path"], *container["Args"]])}
    if message:
        row["comment"] = message
    if author:
        row["author"] = author
    config["history"] = [*(config.get("history") or []), row]
    config.setdefault("rootfs", {"type": "layers", "diff_ids": []})
    config["rootfs"]["diff_ids"] = [*config["rootfs"].get("diff_ids", []), diff_id]
    return config


# -- cp ----------------------------------------------------------------------------------------


def _running_root(store: Store, ref: str) -> tuple[Any, str | None]:
    records = records_of(store)
    rec = records.find(ref)
    state = refresh(records, rec)
    if state.status == Status.RUNNING and state.pid:
        return rec, f"/proc/{state.pid}/root"
    return rec, None


def copy_from(store: Store, ref: str, path: str, out: BinaryIO) -> None:
    """Write ``path`` of the container (file or tree) as a tar to ``out``, named by its base."""
    rec, root = _running_root(store, ref)
    name = os.path.basename(path.rstrip("/")) or "."
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        if root is not None:
            src = secure_join(root, path)
            if not os.path.lexists(src):
                raise UsageError(f"Could not find the file {path} in container {rec.name}")
            tar.add(src, arcname=name)
            return
        view = _root_view(rec)
        if not view.exists(path):
            raise UsageError(f"Could not find the file {path} in container {rec.name}")
        _add_view(tar, view, path.strip("/"), name)


def export(store: Store, ref: str, out: BinaryIO) -> None:
    """``docker export``: the container's filesystem (its image's layers and its writable
    layer, without the mounts of a running one) as a tar to ``out``."""
    view = _root_view(records_of(store).find(ref))
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        for name in view.listdir(""):
            _add_view(tar, view, name, name)


def _root_view(rec: Any) -> LayerView:
    """A stopped container's root: the image's layers and its writable layer on top, or the
    copy it ran on (PRoot mode, an ordinary user's vfs store) once it was made."""
    merged = rec.path("merged")
    copied = rec.config["GraphDriver"]["Name"] == "vfs" or os.path.exists(rec.path("proot"))
    if copied and os.path.isdir(merged) and os.listdir(merged):
        return LayerView([merged])
    return LayerView([*rec.config["GraphDriver"]["Data"]["LowerDirs"], rec.path("upper")])


def _add_view(tar: tarfile.TarFile, view: LayerView, rel: str, arcname: str) -> None:
    src = view.find(rel)
    assert src is not None
    tar.add(src, arcname=arcname, recursive=False)
    if stat.S_ISDIR(os.lstat(src).st_mode):
        for name in view.listdir(rel):
            _add_view(tar, view, f"{rel}/{name}".strip("/"), f"{arcname}/{name}")


def copy_to(store: Store, ref: str, dest: str, tar: BinaryIO) -> None:
    """Unpack the tar stream into directory ``dest`` of the container (tar-safe)."""
    rec, root = _running_root(store, ref)
    if root is not None:
        target = secure_join(root, dest)
    else:
        found = _root_view(rec).find(dest)
        if found is None or not os.path.isdir(found):
            raise UsageError(f"Could not find the directory {dest} in container {rec.name}")
        target = secure_join(rec.path("upper"), dest)
        os.makedirs(target, exist_ok=True)
    if not os.path.isdir(target):
        raise UsageError(f"Could not find the directory {dest} in container {rec.name}")
    apply_tar(tar, target, source=f"cp to {rec.name}:{dest}", whiteouts="delete")
