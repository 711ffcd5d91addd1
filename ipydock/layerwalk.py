"""What each layer of an image adds, changes and deletes, and the bytes later layers waste.

In the manner of the ``dive`` tool: the layer tars are read in order (bottom first) without
unpacking them, and a merged view of the filesystem so far is kept::

    layer 0 tar ──┐
    layer 1 tar ──┼──> for each entry:  path in merged view?  no ──> A (added)
    layer 2 tar ──┘                                           yes ──> C (changed), and the lower
                                                                      file's bytes are wasted
                     .wh.NAME          ──> D (deleted); NAME (and all below it) wasted below
                     DIR/.wh..wh..opq  ──> D for each lower child of DIR this layer does not
                                           re-add; everything below DIR wasted below

"Wasted" bytes are in the image (someone downloads and stores them) but hidden in the final root
filesystem: a file overwritten or deleted by a later layer. Sizes follow Docker's DiffSize:
regular files by length, symlinks by the length of their target, the rest 0.

Pure: the caller hands over each layer's uncompressed tar stream (the bundled engine from its
blobs, the docker backend from ``docker save``), so both engines give the same rows.
"""

from __future__ import annotations

import posixpath
import stat
import tarfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ipydock.errors import ArchiveError

if TYPE_CHECKING:  # loaded on use: the store imports the names below at every start
    from ipydock.models import LayerFile, LayerFiles

__all__ = ["OPAQUE_MARKER", "WHITEOUT_PREFIX", "Layer", "walk"]

WHITEOUT_PREFIX = ".wh."  # the OCI image spec's whiteout names
OPAQUE_MARKER = ".wh..wh..opq"
_META_PREFIX = ".wh..wh."


@dataclass(frozen=True)
class Layer:
    """One layer to walk: its diff ID, size, and a way to open its uncompressed tar (a
    readable binary stream that is its own context manager)."""

    diff_id: str
    size: int
    open: Callable[[], Any]


_TYPES: dict[bytes, tuple[str, int]] = {
    tarfile.REGTYPE: ("file", stat.S_IFREG),
    tarfile.AREGTYPE: ("file", stat.S_IFREG),
    tarfile.CONTTYPE: ("file", stat.S_IFREG),
    tarfile.DIRTYPE: ("dir", stat.S_IFDIR),
    tarfile.SYMTYPE: ("symlink", stat.S_IFLNK),
    tarfile.LNKTYPE: ("hardlink", stat.S_IFREG),
    tarfile.CHRTYPE: ("char", stat.S_IFCHR),
    tarfile.BLKTYPE: ("block", stat.S_IFBLK),
    tarfile.FIFOTYPE: ("fifo", stat.S_IFIFO),
}


@dataclass
class _Entry:
    """A layer entry while later layers are still being read (``wasted`` grows)."""

    path: str
    change: str
    type: str
    size: int
    mode: str = ""
    link_target: str = ""
    wasted: int = 0

    def frozen(self) -> LayerFile:
        from ipydock.models import LayerFile

        return LayerFile(
            self.path, self.change, self.type, self.size, self.mode, self.wasted, self.link_target
        )


@dataclass
class _Tar:
    """One layer tar, sorted into its three kinds of entries."""

    items: list[_Entry] = field(default_factory=list)
    whiteouts: list[str] = field(default_factory=list)
    opaque: list[str] = field(default_factory=list)


def walk(layers: Sequence[Layer], history: Sequence[dict[str, object]]) -> list[LayerFiles]:
    """Every layer, bottom first, with its entries and wasted bytes; ``history`` is the image
    config's (the steps that made no layer are skipped to name each layer's step)."""
    from ipydock.models import LayerFiles

    steps = [str(h.get("created_by", "")) for h in history if not h.get("empty_layer")]
    merged: dict[str, _Entry] = {}  # path -> the entry that shows there now
    per_layer = [_apply(merged, _read(layer)) for layer in layers]
    out = []
    for i, (layer, entries) in enumerate(zip(layers, per_layer, strict=True)):
        entries.sort(key=lambda e: e.path)
        out.append(
            LayerFiles(
                index=i,
                diff_id=layer.diff_id,
                created_by=steps[i] if i < len(steps) else "",
                size=layer.size,
                wasted=sum(e.wasted for e in entries),
                files=[e.frozen() for e in entries],
            )
        )
    return out


def _apply(merged: dict[str, _Entry], tar: _Tar) -> list[_Entry]:
    """Lay one layer over ``merged``; return its entries (A/C/D)."""
    entries: list[_Entry] = []
    below = set(merged)  # what existed before this layer, for A vs C
    readded = {e.path for e in tar.items}
    for d in tar.opaque:
        for child in _hide(merged, d, keep_top=True):
            if posixpath.dirname(child.path) == d and child.path not in readded:
                entries.append(_Entry(child.path, "D", child.type, 0))
    for path in tar.whiteouts:
        gone = _hide(merged, path)
        top = next((g for g in gone if g.path == path), None)
        entries.append(_Entry(path, "D", top.type if top else "file", 0))
    for item in tar.items:
        lower = merged.get(item.path)
        if lower is not None and not (lower.type == "dir" and item.type == "dir"):
            _hide(merged, item.path)
        item.change = "C" if item.path in below else "A"
        merged[item.path] = item
        entries.append(item)
    return entries


def _hide(merged: dict[str, _Entry], path: str, *, keep_top: bool = False) -> list[_Entry]:
    """Take ``path`` (unless ``keep_top``) and everything below it out of the merged view,
    charging their bytes as wasted to the layers that wrote them."""
    prefix = path + "/"
    doomed = [p for p in merged if p.startswith(prefix)]
    if not keep_top and path in merged:
        doomed.append(path)
    gone = []
    for p in doomed:
        entry = merged.pop(p)
        entry.wasted = entry.size
        gone.append(entry)
    return gone


def _read(layer: Layer) -> _Tar:
    out = _Tar()
    try:
        with layer.open() as stream, tarfile.open(fileobj=stream, mode="r|") as tf:  # type: ignore[call-overload]
            for member in tf:
                _sort(member, out)
    except tarfile.TarError as exc:
        raise ArchiveError(f"layer {layer.diff_id}", str(exc)) from exc
    return out


def _sort(member: tarfile.TarInfo, out: _Tar) -> None:
    path = posixpath.normpath("/" + member.name).lstrip("/")
    if not path or path == ".":
        return
    parent, base = posixpath.split(path)
    if base == OPAQUE_MARKER:
        out.opaque.append(parent)
    elif base.startswith(_META_PREFIX):
        return
    elif base.startswith(WHITEOUT_PREFIX):
        out.whiteouts.append(posixpath.join(parent, base[len(WHITEOUT_PREFIX) :]))
    else:
        kind, bits = _TYPES.get(member.type, ("file", stat.S_IFREG))
        size = member.size if kind == "file" else len(member.linkname) if kind == "symlink" else 0
        out.items.append(
            _Entry(
                path,
                "A",
                kind,
                size,
                stat.filemode(bits | (member.mode & 0o7777)),
                member.linkname if kind in ("symlink", "hardlink") else "",
            )
        )
