"""``image bootstrap``: mmdebstrap's root filesystem as a one-layer image of the store.

::

    mmdebstrap (ipydock.commands.bootstrap.run) ──tar on its stdout──> apply_tar into
        ROOT/tmp/bootstrap-*/diff  (no store lock: the download and install take ~30 s)
    exit 0 ──> + an empty /dev ──lock──> normalised layer tar (mtimes clamped to
        SOURCE_DATE_EPOCH) ──> blob, layer, config ──> the tag (the commit point)

The config is docker's for an image made this way: ``PATH``, ``CMD ["bash"]`` and one history
row whose ``created_by`` says what went in (``bootstrap bookworm minbase +python3-minimal``).
With ``SOURCE_DATE_EPOCH`` set, the same inputs and mirror content give the same image ID. A
failed or interrupted run leaves only its temp dir (removed on the way out, else by
``system check --repair``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import IO, BinaryIO, cast

from ipydock.commands.bootstrap import ROW, BootstrapSpec, run
from ipydock.engine.registry import reference
from ipydock.engine.store.archive import _host_arch
from ipydock.engine.store.fsutil import disk_errors, temp_dir
from ipydock.engine.store.index import format_time
from ipydock.engine.store.layertar import write_tar
from ipydock.engine.store.store import Store
from ipydock.errors import UsageError
from ipydock.models import TransferEvent

__all__ = ["bootstrap"]

PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
Progress = Callable[[TransferEvent], None]


def bootstrap(
    store: Store, name: str, spec: BootstrapSpec, progress: Progress | None = None
) -> str:
    """Make the root with mmdebstrap and commit it as ``name``; the image ID."""
    ref = reference.parse(name).with_default_tag()
    if ref.digest:
        raise UsageError(f"cannot bootstrap as {name!r}: use NAME[:TAG], not a digest")
    emit = progress or (lambda event: None)
    epoch = os.environ.get("SOURCE_DATE_EPOCH", "")
    clamp = int(epoch) if epoch.isdigit() else None
    with temp_dir(store.tmp_dir, "bootstrap-") as tmp:
        snapshot = os.path.join(tmp, "diff")
        with run(spec, emit) as stream:
            counted = _Counted(stream, emit)
            store.layers.driver.create(
                snapshot, None, cast(BinaryIO, counted), source=f"mmdebstrap {spec.suite}"
            )
        with disk_errors(snapshot):
            os.mkdir(os.path.join(snapshot, "dev"), 0o755)  # an empty /dev, as docker's images
            if clamp is not None:
                os.utime(os.path.join(snapshot, "dev"), (clamp, clamp))
        emit(TransferEvent(ROW, "Writing layer"))
        created = format_time(store.now())
        with store.lock:
            with store.blobs.writer() as w:
                result = write_tar(snapshot, w, mtime_clamp=clamp)  # type: ignore[arg-type]
                diff_id = w.commit()
            layer = store.layers.adopt(tmp, "", diff_id, result.size)
            config = {
                "architecture": _host_arch(),
                "os": "linux",
                "created": created,
                "config": {"Env": [PATH], "Cmd": ["bash"]},
                "rootfs": {"type": "layers", "diff_ids": [diff_id]},
                "history": [{"created": created, "created_by": spec.history}],
            }
            config_bytes = json.dumps(config, separators=(",", ":")).encode()
            rec, _ = store.commit_image(config_bytes, [layer], tags=[ref.full])
    emit(TransferEvent(ROW, "Bootstrap complete", counted.done, counted.done))
    return rec.id


class _Counted:
    """The tar stream, with an "Extracting" event every 16 MiB read."""

    def __init__(self, raw: IO[bytes], emit: Progress) -> None:
        self.raw = raw
        self.emit = emit
        self.done = 0
        self._next = 0

    def read(self, n: int = -1) -> bytes:
        data = self.raw.read(n)
        self.done += len(data)
        if self.done >= self._next:
            self._next = self.done + (16 << 20)
            self.emit(TransferEvent(ROW, "Extracting", self.done))
        return data

    def readinto(self, buf: bytearray | memoryview) -> int:
        data = self.read(len(buf))
        buf[: len(data)] = data
        return len(data)
