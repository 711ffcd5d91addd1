"""Snapshot directory -> layer tar: ``write_tar`` and the ``LayerWriter`` the vfs differ uses.

::

    dir walk (sorted per directory, bytewise) --> PAX headers: numeric owners, whole-second
    mtimes (clamped for SOURCE_DATE_EPOCH), kept xattrs, hardlinks by inode
    --> overlay whiteouts (0/0 char device, opaque xattr; fuse-overlayfs's .wh. files too)
        back to .wh. entries

The same directory always gives the same bytes.
"""

from __future__ import annotations

import os
import stat
import tarfile
from typing import BinaryIO, Literal

from ipydock.engine.store import idmap
from ipydock.engine.store.layerfmt import (
    CHUNK,
    OPAQUE_MARKER,
    WHITEOUT_PREFIX,
    XATTR_PAX,
    ApplyResult,
    SizeCounter,
    is_opaque,
    kept_xattrs,
    marker,
)

__all__ = ["LayerWriter", "write_tar"]


_BLOCK = 512
_RECORD = 20 * _BLOCK  # tar's default blocking factor: the archive ends on a record boundary
_BUFFER = 1 << 20


class _Output:
    """Buffered writes to any sequential writable (a blob writer digests every call: few
    large ones are cheaper than one per header), with the count of bytes written."""

    def __init__(self, out: BinaryIO) -> None:
        self._out = out
        self._parts: list[bytes] = []
        self._held = 0
        self.pos = 0

    def write(self, data: bytes) -> None:
        self._parts.append(data)
        self._held += len(data)
        self.pos += len(data)
        if self._held >= _BUFFER:
            self.flush()

    def flush(self) -> None:
        if not self._parts:
            return
        view = memoryview(b"".join(self._parts))
        self._parts, self._held = [], 0
        while view:
            n = self._out.write(view)
            view = view[len(view) if n is None else n :]


class LayerWriter:
    """Writes normalised layer entries to a tar stream; ``write_tar`` and the vfs differ use it.

    Entries come in the caller's order (it sorts). Regular files, symlinks, dirs, devices and
    fifos get PAX headers with numeric owners only, permission bits, a whole-second mtime
    (clamped) and their recorded xattrs; an inode seen a second time becomes a hardlink to its
    first path. Whiteouts carry no metadata (empty, mode 0, owner 0:0, mtime 0), so both
    snapshot drivers write the same bytes for the same change.

    The bytes are those of ``tarfile`` in PAX format (what this writer used to call, entry by
    entry): a plain ustar header is made here for the common entry (an ASCII name that fits,
    no xattrs, no device numbers), ``TarInfo.tobuf`` makes any other; a tar of 20,000 small
    files is mostly headers, and ``tarfile`` spends ~0.1 ms on each.
    """

    def __init__(self, out: BinaryIO, *, mtime_clamp: int | None = None) -> None:
        self._out = _Output(out)
        self._clamp = mtime_clamp
        self._ids = idmap.current()
        self._first_path: dict[tuple[int, int], str] = {}
        self._sizes = SizeCounter()
        self.entries = 0

    def add(
        self, rel: str, path: str, st: os.stat_result, xattrs: dict[str, bytes] | None = None
    ) -> None:
        """Write the file at ``path`` (lstat ``st``) as entry ``rel``; sockets are skipped
        (as Docker does: a tar cannot hold them, and they mean nothing in an image)."""
        mode = st.st_mode
        if stat.S_ISSOCK(mode):
            return
        if st.st_nlink > 1 and not stat.S_ISDIR(mode):
            key = (st.st_dev, st.st_ino)
            first = self._first_path.get(key)
            if first is not None:
                self._header(rel, st, tarfile.LNKTYPE, first, {}, size=0)
                return
            self._first_path[key] = rel
        self._sizes.add(st)
        recorded = kept_xattrs(path) if xattrs is None else xattrs
        pax = {
            XATTR_PAX + name: value.decode("utf-8", "surrogateescape")
            for name, value in recorded.items()
        }
        if stat.S_ISREG(mode):
            self._header(rel, st, tarfile.REGTYPE, "", pax, size=st.st_size)
            if st.st_size:
                self._data(path, st.st_size)
        elif stat.S_ISDIR(mode):
            self._header(rel + "/", st, tarfile.DIRTYPE, "", pax)
        elif stat.S_ISLNK(mode):
            self._header(rel, st, tarfile.SYMTYPE, os.readlink(path), pax)
        elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode) or stat.S_ISFIFO(mode):
            self._header(rel, st, None, "", pax)
        else:
            raise ValueError(f"{rel!r} has a file type a layer cannot hold")

    def add_tree(self, rel: str, path: str, *, overlay: bool) -> None:
        """Write everything below directory ``path`` as entries under ``rel`` ("" for the top).

        Pre-order, each directory's entries sorted bytewise by the name they get in the tar, a
        directory's opaque marker right after it. With ``overlay`` 0/0 char devices become
        whiteouts and ``trusted.overlay.opaque`` dirs get markers.
        """
        stack = [(rel, path, iter(_children(path, overlay)))]
        while stack:
            rel_dir, dir_path, items = stack[-1]
            item = next(items, None)
            if item is None:
                stack.pop()
                continue
            name, st, mark = item
            child_rel, child_path = f"{rel_dir}/{name}" if rel_dir else name, f"{dir_path}/{name}"
            if mark is not None:  # an opaque mark is written with its directory
                if mark[0] == "whiteout":
                    self.whiteout(rel_dir, mark[1])
                continue
            self.add(child_rel, child_path, st)
            if stat.S_ISDIR(st.st_mode):
                if overlay and is_opaque(child_path):
                    self.opaque(child_rel)
                stack.append((child_rel, child_path, iter(_children(child_path, overlay))))

    def whiteout(self, rel_dir: str, name: str) -> None:
        """Write ``.wh.NAME`` in ``rel_dir``: NAME was removed by this layer."""
        self._marker(f"{rel_dir}/{WHITEOUT_PREFIX}{name}" if rel_dir else WHITEOUT_PREFIX + name)

    def opaque(self, rel_dir: str) -> None:
        """Write ``.wh..wh..opq`` in ``rel_dir``: older layers' entries there are hidden."""
        self._marker(f"{rel_dir}/{OPAQUE_MARKER}" if rel_dir else OPAQUE_MARKER)

    def close(self) -> ApplyResult:
        """End the archive (the caller closes ``out``) and report what it adds: two zero
        blocks, then zeros to the end of the record, as ``tarfile`` ends one."""
        end = self._out.pos + 2 * _BLOCK
        self._out.write(bytes(2 * _BLOCK + (-end % _RECORD)))
        self._out.flush()
        return ApplyResult(size=self._sizes.total, entries=self.entries)

    def _marker(self, name: str) -> None:
        header = _ustar(name, 0, 0, 0, 0, 0, tarfile.REGTYPE, "")
        if header is None:  # a long or non-ASCII name: tarfile's PAX record
            info = tarfile.TarInfo(name)
            info.mode, info.mtime, info.uname, info.gname = 0, 0, "", ""
            header = info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")
        self._write(header)

    def _header(
        self,
        name: str,
        st: os.stat_result,
        kind: bytes | None,
        linkname: str,
        pax: dict[str, str],
        size: int = 0,
    ) -> None:
        uid, gid = self._ids.inside(st.st_uid, st.st_gid)  # rootless: user -> 0
        mtime = st.st_mtime_ns // 1_000_000_000
        mtime = mtime if self._clamp is None else min(mtime, self._clamp)
        perms = stat.S_IMODE(st.st_mode)
        fast = None
        if kind is not None and not pax:
            fast = _ustar(name, perms, uid, gid, size, mtime, kind, linkname)
        if fast is None:
            fast = self._tarinfo(name, st, kind, linkname, pax, perms, uid, gid, size, mtime)
        self._write(fast)

    def _tarinfo(
        self,
        name: str,
        st: os.stat_result,
        kind: bytes | None,
        linkname: str,
        pax: dict[str, str],
        perms: int,
        uid: int,
        gid: int,
        size: int,
        mtime: int,
    ) -> bytes:
        """The header ``tarfile`` makes (PAX records for long or non-ASCII names, xattrs)."""
        info = tarfile.TarInfo(name)
        info.mode, info.uid, info.gid, info.size, info.mtime = perms, uid, gid, size, mtime
        info.uname = info.gname = ""
        info.linkname = linkname
        info.pax_headers = pax
        if kind is not None:
            info.type = kind
        elif stat.S_ISFIFO(st.st_mode):
            info.type = tarfile.FIFOTYPE
        else:
            info.type = tarfile.CHRTYPE if stat.S_ISCHR(st.st_mode) else tarfile.BLKTYPE
            info.devmajor, info.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
        return info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")

    def _write(self, header: bytes) -> None:
        self._out.write(header)
        self.entries += 1

    def _data(self, path: str, size: int) -> None:
        """``size`` bytes of the file at ``path``, padded to a block (as tarfile: a file that
        shrank since it was listed fails the layer; one that grew is cut at ``size``)."""
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            left = size
            while left:
                data = os.read(fd, min(left, CHUNK))
                if not data:
                    raise OSError(f"unexpected end of data: {path} shrank while it was read")
                self._out.write(data)
                left -= len(data)
        finally:
            os.close(fd)
        if size % _BLOCK:
            self._out.write(bytes(_BLOCK - size % _BLOCK))


def _ustar(
    name: str, mode: int, uid: int, gid: int, size: int, mtime: int, kind: bytes, linkname: str
) -> bytes | None:
    """The ustar header ``tarfile`` writes in PAX format when the entry needs no PAX record
    (ASCII names of at most 100 bytes, numbers that fit); None when it does."""
    if (
        len(name) > 100
        or len(linkname) > 100
        or not name.isascii()
        or not linkname.isascii()
        or not (0 <= uid < _MAX7 and 0 <= gid < _MAX7 and 0 <= size < _MAX11)
        or not 0 <= mtime < _MAX11
    ):
        return None
    head = b"".join(
        (
            name.encode().ljust(100, b"\0"),
            b"%07o\0%07o\0%07o\0%011o\0%011o\0" % (mode, uid, gid, size, mtime),
            b"        ",
            kind,
            linkname.encode().ljust(100, b"\0"),
            b"ustar\x0000",
            bytes(32 + 32 + 8 + 8 + 155 + 12),
        )
    )
    chksum = sum(head)  # the checksum field counts as eight spaces, as it is now
    return head[:148] + b"%06o\0" % chksum + head[155:]


_MAX7 = 8**7
_MAX11 = 8**11


def _children(path: str, overlay: bool) -> list[tuple[str, os.stat_result, tuple[str, str] | None]]:
    """Directory ``path``'s entries with their lstat and, with ``overlay``, what they mark
    (see ``layerfmt.marker``), sorted by the name they get in the tar."""
    items = []
    with os.scandir(path) as it:
        for e in it:
            st = e.stat(follow_symlinks=False)
            mark = marker(e.name, st) if overlay else None
            tar_name = WHITEOUT_PREFIX + mark[1] if mark and mark[0] == "whiteout" else e.name
            items.append((os.fsencode(tar_name), e.name, st, mark))
    items.sort(key=lambda item: item[0])
    return [(name, st, mark) for _, name, st, mark in items]


def write_tar(
    src: str,
    out: BinaryIO,
    *,
    whiteouts: Literal["overlay", "none"] = "overlay",
    mtime_clamp: int | None = None,
) -> ApplyResult:
    """Write directory ``src`` (not itself) as a normalised layer tar to the sequential ``out``.

    Used to store a build step's or a commit's layer and to export an overlay snapshot. The same
    directory always gives the same bytes: entries sorted (see ``LayerWriter.add_tree``), relative
    names, PAX, numeric owners, no atime/ctime, mtimes clamped to ``mtime_clamp`` when given
    (SOURCE_DATE_EPOCH). ``whiteouts="overlay"`` turns overlayfs whiteouts back into ``.wh.``
    entries; ``"none"`` writes char devices as they are. Returns the layer's size and entries.
    """
    if whiteouts not in ("overlay", "none"):
        raise ValueError(f"whiteouts must be 'overlay' or 'none', not {whiteouts!r}")
    from ipydock.engine.store import userns

    if userns.delegates() and not _all_readable(src):  # files of the range's owners
        return userns.write_tar(src, out, whiteouts=whiteouts, mtime_clamp=mtime_clamp)
    overlay = whiteouts == "overlay"
    writer = LayerWriter(out, mtime_clamp=mtime_clamp)
    if overlay and is_opaque(src):
        writer.opaque("")
    writer.add_tree("", src, overlay=overlay)
    return writer.close()


def _all_readable(src: str) -> bool:
    """Rootless with id ranges: can this process read every directory and file content below
    ``src`` itself? Then the tar is written here (owners mapped by ``idmap``) and no worker is
    started in the user's namespace (a Python start, ~0.3 s a layer); most layers qualify,
    one with a ``0700`` dir of ``_apt`` does not."""
    stack = [src]
    while stack:
        path = stack.pop()
        if not os.access(path, os.R_OK | os.X_OK):
            return False
        with os.scandir(path) as it:
            for e in it:
                st = e.stat(follow_symlinks=False)
                if stat.S_ISDIR(st.st_mode):
                    stack.append(e.path)
                elif stat.S_ISREG(st.st_mode) and st.st_size and not os.access(e.path, os.R_OK):
                    return False
    return True
