"""Leases: what an operation in flight has made or uses, kept from every garbage collector.

When: a build holds one from its first step to its tag, ``image save`` while it writes, a pull
for the layers it found already here. As containerd's leases: a resource named by a live lease
is a root of the collector (``image prune``, ``system prune``, ``image rm``'s clean-up,
``system check``), so an untagged step image or a blob not yet named by the index never goes
while its operation runs. Garbage is collected, not left: releasing a lease removes what it
held and nothing names any more, and the lease of a process that died (pid + start time) is
expired: the next prune or ``system check --repair`` drops it and collects what it held.

::

    ROOT/leases/<pid>-<start>-<rand>     one file per lease; one line per resource:
                                         "image sha256:…" | "blob sha256:…" | "layer sha256:…"

    holder:  [store lock] make X ── lease.add(X) [unlock] … [lock] index names X ─ release()
    pruner:  [store lock] roots = index images + live leases; collect the rest [unlock]

Lines are appended (no fsync: a lease dies with its process, so it never needs to outlive a
crash); a resource is added in the same store-lock section that makes or finds it, and pruners
read the leases under the lock, so there is no window between making a thing and holding it.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ipydock.engine.store.fsutil import disk_errors, owner_alive_in, owner_tag

if TYPE_CHECKING:
    from ipydock.engine.store.index import ImageRecord
    from ipydock.engine.store.store import Store

__all__ = ["Held", "Lease", "read_leases"]

KINDS = ("image", "blob", "layer")


@dataclass
class Held:
    """What the live leases hold together; ``expired``: lease files of dead processes."""

    images: set[str] = field(default_factory=set)
    blobs: set[str] = field(default_factory=set)
    layers: set[str] = field(default_factory=set)
    expired: list[str] = field(default_factory=list)

    def add(self, kind: str, digest: str) -> None:
        getattr(self, kind + "s").add(digest)


def leases_dir(root: str) -> str:
    return os.path.join(root, "leases")


def read_leases(root: str) -> Held:
    """Every live lease's resources, and the paths of expired leases. The caller holds the
    store lock when it acts on the answer (a pruner)."""
    held = Held()
    directory = leases_dir(root)
    try:
        names = sorted(os.listdir(directory))
    except FileNotFoundError:
        return held
    for name in names:
        path = os.path.join(directory, name)
        if owner_alive_in(name) is not True:
            held.expired.append(path)
            continue
        try:
            with open(path, "rb") as f:
                lines = f.read().decode("ascii", "replace").splitlines()
        except FileNotFoundError:
            continue  # released meanwhile
        for line in lines:
            kind, _, digest = line.partition(" ")
            if kind in KINDS and digest.startswith("sha256:"):
                held.add(kind, digest)
    return held


class Lease:
    """A lease of this process on store resources; ``with store.lease() as lease:``.

    :meth:`add` and :meth:`hold_image` are called with the store lock held, in the section that
    makes or finds the resource; :meth:`release` takes the lock itself. Not thread-safe: one
    operation, one lease.
    """

    def __init__(self, store: Store) -> None:
        self.store = store
        self.held = Held()
        self.path = ""
        self._fd: int | None = None

    def add(self, kind: str, digest: str) -> None:
        if not digest or digest in getattr(self.held, kind + "s"):
            return
        directory = leases_dir(self.store.root)
        with disk_errors(directory):
            if self._fd is None:
                os.makedirs(directory, exist_ok=True)
                self.path = os.path.join(directory, f"{owner_tag()}-{os.urandom(4).hex()}")
                flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | os.O_CLOEXEC
                self._fd = os.open(self.path, flags, 0o600)
            os.write(self._fd, f"{kind} {digest}\n".encode())
        self.held.add(kind, digest)

    def hold_image(self, rec: ImageRecord) -> None:
        """The image, its manifest and its layers (a held layer keeps the chain below it)."""
        self.add("image", rec.id)
        self.add("blob", rec.manifest)
        if rec.top_layer:
            self.add("layer", rec.top_layer)

    def release(self) -> None:
        """Drop the lease and collect what it held that nothing else names (store lock)."""
        if self._fd is None:
            return
        from ipydock.engine.store.gc import collect

        with self.store.lock:
            os.close(self._fd)
            self._fd = None
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)
            held = self.held
            collect(self.store, blobs=held.blobs | held.images, tops=held.layers)
        self.held = Held()

    def __enter__(self) -> Lease:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
