"""The exceptions ipydock raises, one tree for every layer.

Callers branch on the class or its attributes, never on the message text. Foreign errors
(``OSError`` from syscalls, ``tarfile`` errors, HTTP or Docker API errors) are converted once, at
the boundary where they enter, and chained with ``raise ... from``.

::

    IPyDockError                      every error ipydock raises on purpose
     +-- UsageError                   bad flags or arguments on the CLI / in a magic
     +-- InvalidReference(text)       not a valid image name, tag or digest
     +-- NotFound                     something named does not exist
     |    +-- ImageNotFound(ref)
     |    +-- BlobNotFound(digest)
     |    +-- LayerNotFound(diff_id)
     +-- Conflict                     the request clashes with the state of the store
     |    +-- ImageInUse(image_id, container_ids, running)
     |    +-- ImageHasChildren(image_id, children)
     |    +-- ImageMultiplyReferenced(image_id, tags)
     +-- StoreError                   the store itself
     |    +-- DigestMismatch(expected, actual)
     |    +-- StoreLocked(path)
     |    +-- NoSpace(path)
     |    +-- StoreCorrupt(problems)
     +-- ArchiveError(source)         a tarball that cannot be read
          +-- UnsafeArchiveEntry(entry, reason)   an entry that would escape its target

Every class has a one-line ``str()`` meant for a user: what failed and, where there is one, what to
do about it.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = [
    "ArchiveError",
    "BlobNotFound",
    "Conflict",
    "DigestMismatch",
    "IPyDockError",
    "ImageHasChildren",
    "ImageInUse",
    "ImageMultiplyReferenced",
    "ImageNotFound",
    "InvalidReference",
    "LayerNotFound",
    "NoSpace",
    "NotFound",
    "StoreCorrupt",
    "StoreError",
    "StoreLocked",
    "UnsafeArchiveEntry",
    "UsageError",
]


class IPyDockError(Exception):
    """Base of every error ipydock raises on purpose."""


class UsageError(IPyDockError):
    """Bad flags or arguments; the message says which and how to write them."""


class InvalidReference(IPyDockError):
    def __init__(self, text: str, why: str = "") -> None:
        self.text = text
        self.why = why
        detail = f": {why}" if why else ""
        super().__init__(
            f"invalid reference format {text!r}{detail} "
            "(use NAME[:TAG] or NAME@sha256:DIGEST, lowercase, e.g. busybox:latest)"
        )


class NotFound(IPyDockError):
    """Something named does not exist."""


class ImageNotFound(NotFound):
    def __init__(self, ref: str) -> None:
        self.ref = ref
        super().__init__(f"No such image: {ref} (see `ipydock image ls -a`)")


class BlobNotFound(NotFound):
    def __init__(self, digest: str) -> None:
        self.digest = digest
        super().__init__(f"blob {digest} is missing from the store (run `ipydock system check`)")


class LayerNotFound(NotFound):
    def __init__(self, diff_id: str) -> None:
        self.diff_id = diff_id
        super().__init__(f"layer {diff_id} is missing from the store (run `ipydock system check`)")


class Conflict(IPyDockError):
    """The request clashes with the current state (image in use, has children, ...)."""


class ImageInUse(Conflict):
    def __init__(self, image_id: str, container_ids: Sequence[str], running: bool) -> None:
        self.image_id = image_id
        self.container_ids = list(container_ids)
        self.running = running
        short = image_id.removeprefix("sha256:")[:12]
        cid = self.container_ids[0][:12] if self.container_ids else "?"
        if running:
            msg = (
                f"conflict: unable to delete {short} (cannot be forced) - image is being used "
                f"by running container {cid} (stop and remove it first)"
            )
        else:
            msg = (
                f"conflict: unable to delete {short} (must be forced) - image is being used "
                f"by stopped container {cid} (remove it, or use -f)"
            )
        super().__init__(msg)


class ImageHasChildren(Conflict):
    def __init__(self, image_id: str, children: Sequence[str]) -> None:
        self.image_id = image_id
        self.children = list(children)
        short = image_id.removeprefix("sha256:")[:12]
        kids = ", ".join(c.removeprefix("sha256:")[:12] for c in self.children)
        super().__init__(
            f"conflict: unable to delete {short} (cannot be forced) - image has dependent "
            f"child images: {kids} (remove those first)"
        )


class ImageMultiplyReferenced(Conflict):
    def __init__(self, image_id: str, tags: Sequence[str]) -> None:
        self.image_id = image_id
        self.tags = list(tags)
        short = image_id.removeprefix("sha256:")[:12]
        super().__init__(
            f"conflict: unable to delete {short} (must be forced) - image is referenced in "
            f"multiple repositories: {', '.join(self.tags)} (remove by name, or use -f)"
        )


class StoreError(IPyDockError):
    """The on-disk store could not do what was asked."""


class DigestMismatch(StoreError):
    def __init__(self, expected: str, actual: str, what: str = "blob") -> None:
        self.expected = expected
        self.actual = actual
        super().__init__(
            f"{what} digest mismatch: expected {expected}, got {actual} "
            "(the data is corrupt or truncated; fetch or save it again)"
        )


class StoreLocked(StoreError):
    def __init__(self, path: str) -> None:
        self.path = path
        super().__init__(f"the store at {path} is busy; try again when the other command ends")


class NoSpace(StoreError):
    def __init__(self, path: str) -> None:
        self.path = path
        super().__init__(
            f"no space left on the device holding {path}; nothing was changed "
            "(free some space, e.g. `ipydock image prune`, and try again)"
        )


class StoreCorrupt(StoreError):
    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        first = self.problems[0] if self.problems else "unknown problem"
        more = f" (and {len(self.problems) - 1} more)" if len(self.problems) > 1 else ""
        super().__init__(
            f"the store is inconsistent: {first}{more}; run `ipydock system check --repair`"
        )


class ArchiveError(IPyDockError):
    def __init__(self, source: str, why: str) -> None:
        self.source = source
        self.why = why
        super().__init__(f"cannot read {source}: {why}")


class UnsafeArchiveEntry(ArchiveError):
    def __init__(self, source: str, entry: str, reason: str) -> None:
        self.entry = entry
        self.reason = reason
        super().__init__(source, f"entry {entry!r} {reason}; refusing to extract it")
