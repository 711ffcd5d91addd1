"""Layer tars <-> snapshot directories: the one place that reads and writes layer tar streams.

::

      layer tar (uncompressed stream)              snapshot directory
    +---------------------------+   apply_tar    +----------------------------------------+
    | etc/                      | -------------> | etc/                                   |
    | etc/passwd                |  safe names,   | etc/passwd                             |
    | etc/.wh.shadow            |  owners, modes | etc/shadow  c 0/0   (whiteouts=overlay) |
    |                           |  xattrs, links |             removed (whiteouts=delete)  |
    | var/                      |  dir mtimes    | var/  trusted.overlay.opaque=y         |
    | var/.wh..wh..opq          |  last          |       or emptied of older entries      |
    +---------------------------+ <------------- +----------------------------------------+
                                    write_tar: sorted, PAX, numeric ids, whiteouts back to
                                    .wh. entries, mtimes clamped for reproducible builds

Sizes follow Docker's DiffSize (``pkg/directory`` as used by overlay2): the bytes of regular
files and symlinks (a symlink's size is its target's length), each hardlinked inode once;
directories, devices and whiteouts count 0.

Extraction trusts nothing in the archive: names are cleaned lexically, every parent on the way
is checked to be a real directory (not a symlink), hardlinks must point at something already in
the target, and ``trusted.*`` xattrs are never taken from an archive (overlayfs keeps its own
metadata there). The target directory is assumed private to the caller while we work in it.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat
import tarfile
from dataclasses import dataclass
from typing import BinaryIO, Literal

from ipydock.errors import ArchiveError, NoSpace, UnsafeArchiveEntry

__all__ = [
    "OPAQUE_MARKER",
    "OPAQUE_XATTR",
    "WHITEOUT_PREFIX",
    "ApplyResult",
    "LayerWriter",
    "SizeCounter",
    "apply_tar",
    "diff_size",
    "is_overlay_whiteout",
    "kept_xattrs",
    "write_tar",
]

WHITEOUT_PREFIX = ".wh."
WHITEOUT_META_PREFIX = ".wh..wh."
OPAQUE_MARKER = ".wh..wh..opq"
OPAQUE_XATTR = "trusted.overlay.opaque"
_XATTR_PAX = "SCHILY.xattr."
_CHUNK = 1 << 20
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_NO_SPACE = (errno.ENOSPC, errno.EDQUOT)


@dataclass(frozen=True)
class ApplyResult:
    """What a layer adds: ``size`` in bytes as Docker's DiffSize, ``entries`` tar entries."""

    size: int
    entries: int


class SizeCounter:
    """Adds up DiffSize over ``lstat`` results: regular files and symlinks, hardlinks once."""

    def __init__(self) -> None:
        self.total = 0
        self._seen: set[tuple[int, int]] = set()

    def add(self, st: os.stat_result) -> None:
        if st.st_size == 0 or not (stat.S_ISREG(st.st_mode) or stat.S_ISLNK(st.st_mode)):
            return
        if st.st_nlink > 1:
            key = (st.st_dev, st.st_ino)
            if key in self._seen:
                return
            self._seen.add(key)
        self.total += st.st_size


def is_overlay_whiteout(st: os.stat_result) -> bool:
    """True for overlayfs's whiteout: a character device numbered 0/0."""
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def kept_xattrs(path: str) -> dict[str, bytes]:
    """The xattrs a layer records for ``path``: ``security.capability`` and ``user.*``."""
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError as e:
        if e.errno in (errno.ENOTSUP, errno.EPERM):
            return {}
        raise
    wanted = sorted(n for n in names if n == "security.capability" or n.startswith("user."))
    return {n: os.getxattr(path, n, follow_symlinks=False) for n in wanted}


def _is_opaque(path: str) -> bool:
    try:
        return os.getxattr(path, OPAQUE_XATTR, follow_symlinks=False) == b"y"
    except OSError:
        return False


# --------------------------------------------------------------------------- reading


# not in typeshed, but public in tarfile since 3.2
_BROKEN_HEADER = (tarfile.TruncatedHeaderError, tarfile.InvalidHeaderError)  # type: ignore[attr-defined]


class _BadHeader(Exception):
    """A header in the middle of the stream is cut short or fails its checksum."""


class _StrictTarInfo(tarfile.TarInfo):
    """tarfile treats a broken header after the first one as the end of the archive;
    we want a truncated or corrupt layer to fail instead."""

    @classmethod
    def fromtarfile(cls, tarfile_: tarfile.TarFile) -> _StrictTarInfo:
        try:
            return super().fromtarfile(tarfile_)
        except _BROKEN_HEADER as e:
            raise _BadHeader(str(e)) from e


class _ForwardReader:
    """Gives tarfile the seekable file it wants over a sequential stream: ``tell`` counts bytes,
    ``seek`` only moves forward (reading the gap), ``read`` returns short only at EOF."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self._pos = 0

    def read(self, size: int = -1) -> bytes:
        if size < 0:
            data = self._stream.read()
            self._pos += len(data)
            return data
        parts: list[bytes] = []
        want = size
        while want > 0:
            chunk = self._stream.read(want)
            if not chunk:
                break
            parts.append(chunk)
            want -= len(chunk)
        data = parts[0] if len(parts) == 1 else b"".join(parts)
        self._pos += len(data)
        return data

    def tell(self) -> int:
        return self._pos

    def seek(self, pos: int, whence: int = 0) -> int:
        if whence != 0 or pos < self._pos:
            raise OSError(errno.ESPIPE, "layer streams are read forward only")
        while self._pos < pos and self.read(min(_CHUNK, pos - self._pos)):
            pass
        return self._pos

    def drain(self) -> None:
        """Read to EOF so a digesting wrapper around the stream sees every byte."""
        while self.read(_CHUNK):
            pass


def _clean(name: str, source: str, *, what: str = "") -> str:
    """``name`` made relative and free of ``.``/``..``/``//``; ``""`` is the target itself."""
    if "\x00" in name:
        raise UnsafeArchiveEntry(source, name, f"{what}contains a NUL byte")
    if name.startswith("/"):
        raise UnsafeArchiveEntry(source, name, f"{what}is an absolute path")
    parts: list[str] = []
    for part in name.split("/"):
        if part in ("", "."):
            continue
        if part != "..":
            parts.append(part)
        elif parts:
            parts.pop()
        else:
            raise UnsafeArchiveEntry(source, name, f"{what}climbs out of the target with '..'")
    return "/".join(parts)


class _Applier:
    """State of one ``apply_tar`` run; one method per kind of entry."""

    def __init__(
        self, target: str, source: str, whiteouts: Literal["overlay", "delete"], rootless: bool
    ) -> None:
        if whiteouts not in ("overlay", "delete"):
            raise ValueError(f"whiteouts must be 'overlay' or 'delete', not {whiteouts!r}")
        self.target = os.path.abspath(target)
        self.source = source
        self.delete = whiteouts == "delete"
        self.rootless = rootless
        self.entries = 0
        self.ours: set[str] = {""}  # delete mode: paths this layer wrote, and their parents
        self.made: list[str] = []  # non-directories this layer wrote, for the size
        self.real_dirs: set[str] = {""}  # verified: real directories, no symlink on the way
        self.dir_mtimes: dict[str, float] = {}

    def path(self, rel: str) -> str:
        return f"{self.target}/{rel}" if rel else self.target

    # ---- the loop

    def run(self, tar: tarfile.TarFile, reader: _ForwardReader) -> ApplyResult:
        while (member := tar.next()) is not None:
            tar.members.clear()  # type: ignore[attr-defined]  # a layer may have 100k of them
            self.entry(member, tar, reader)
        reader.drain()
        self.finish()
        sizes = SizeCounter()
        for rel in self.made:
            with contextlib.suppress(FileNotFoundError, NotADirectoryError):  # removed again
                sizes.add(os.lstat(self.path(rel)))
        return ApplyResult(size=sizes.total, entries=self.entries)

    def entry(self, m: tarfile.TarInfo, tar: tarfile.TarFile, reader: _ForwardReader) -> None:
        rel = _clean(m.name, self.source)
        if rel.startswith(WHITEOUT_META_PREFIX) and rel != OPAQUE_MARKER:
            return  # AUFS metadata (.wh..wh.plnk, .wh..wh.aufs): skipped, as Docker does
        self.entries += 1
        parent, _, base = rel.rpartition("/")
        if base.startswith(WHITEOUT_PREFIX):
            self.ensure_dirs(parent, m.name)
            self.whiteout(m.name, parent, base)
            return
        if rel == "":
            if not m.isdir():
                raise UnsafeArchiveEntry(self.source, m.name, "would replace the target itself")
            self.directory(m, rel)
            return
        self.ensure_dirs(parent, m.name)
        if self.delete:
            self.mark_ours(rel)
        if m.isdir():
            self.directory(m, rel)
        elif m.islnk():
            self.hardlink(m, rel)
        else:
            self.clear(rel)
            self.made.append(rel)
            self.create(m, rel, tar, reader)

    def create(self, m: tarfile.TarInfo, rel: str, tar: tarfile.TarFile, r: _ForwardReader) -> None:
        if m.isreg():
            self.regular(m, rel, tar, r)
        elif m.issym():
            self.symlink(m, rel)
        elif m.ischr() or m.isblk() or m.isfifo():
            self.node(m, rel)
        else:
            raise ArchiveError(self.source, f"entry {m.name!r} has unsupported type {m.type!r}")

    # ---- where entries go

    def ensure_dirs(self, rel_dir: str, entry: str) -> None:
        """Make every directory on the way to ``rel_dir``, refusing symlinks and non-dirs."""
        if rel_dir in self.real_dirs:
            return
        parts = rel_dir.split("/")
        for i in range(1, len(parts) + 1):
            rel = "/".join(parts[:i])
            if rel in self.real_dirs:
                continue
            path = self.path(rel)
            try:
                st = os.lstat(path)
            except FileNotFoundError:
                os.mkdir(path, 0o755)
                self.dir_mtimes.pop(rel, None)
                self.real_dirs.add(rel)
                continue
            if stat.S_ISLNK(st.st_mode):
                raise UnsafeArchiveEntry(self.source, entry, f"lies under the symlink {rel!r}")
            if not stat.S_ISDIR(st.st_mode):
                raise ArchiveError(self.source, f"entry {entry!r} needs {rel!r} to be a directory")
            self.real_dirs.add(rel)

    def mark_ours(self, rel: str) -> None:
        while rel not in self.ours:
            self.ours.add(rel)
            rel = rel.rpartition("/")[0]

    def clear(self, rel: str, *, keep_dir: bool = False) -> bool:
        """Remove whatever is at ``rel``; with ``keep_dir`` a directory stays. True if it stayed."""
        self.dir_mtimes.pop(rel, None)
        path = self.path(rel)
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return False
        if stat.S_ISDIR(st.st_mode):
            if keep_dir:
                return True
            shutil.rmtree(path)
            self.real_dirs.clear()  # cheap to rebuild; removing one subtree from it is not
            self.real_dirs.add("")
        else:
            os.unlink(path)
        return False

    # ---- one method per kind of entry

    def directory(self, m: tarfile.TarInfo, rel: str) -> None:
        path = self.path(rel)
        if not self.clear(rel, keep_dir=True):
            os.mkdir(path, 0o700)
        self.real_dirs.add(rel)
        self.set_owner(path, m)
        os.chmod(path, m.mode & 0o7777)
        self.set_xattrs(path, m)
        self.dir_mtimes[rel] = m.mtime  # set at the end: writing children changes it

    def regular(
        self, m: tarfile.TarInfo, rel: str, tar: tarfile.TarFile, r: _ForwardReader
    ) -> None:
        fd = os.open(self.path(rel), _CREATE, 0o600)
        try:
            if m.sparse is not None:
                src = tar.extractfile(m)
                assert src is not None
                with open(fd, "wb", closefd=False) as dst:
                    shutil.copyfileobj(src, dst, _CHUNK)
            elif m.size:
                self.copy_data(m, r, fd)
            self.set_owner(fd, m)
            os.chmod(fd, m.mode & 0o7777)  # after chown, which clears setuid/setgid
            self.set_xattrs(fd, m)  # after chown, which clears security.capability
            os.utime(fd, ns=(_ns(m.mtime), _ns(m.mtime)))
        finally:
            os.close(fd)

    def copy_data(self, m: tarfile.TarInfo, r: _ForwardReader, fd: int) -> None:
        r.seek(m.offset_data)
        left = m.size
        while left:
            chunk = r.read(min(_CHUNK, left))
            if not chunk:
                raise ArchiveError(self.source, f"unexpected end of data in {m.name!r}")
            view = memoryview(chunk)
            while view:
                view = view[os.write(fd, view) :]
            left -= len(chunk)

    def symlink(self, m: tarfile.TarInfo, rel: str) -> None:
        if not m.linkname or "\x00" in m.linkname:
            raise ArchiveError(self.source, f"symlink {m.name!r} has an invalid target")
        path = self.path(rel)
        os.symlink(m.linkname, path)  # any text: it is only followed inside the container
        self.set_owner(path, m)
        self.set_xattrs(path, m, symlink=True)
        os.utime(path, ns=(_ns(m.mtime), _ns(m.mtime)), follow_symlinks=False)

    def node(self, m: tarfile.TarInfo, rel: str) -> None:
        if m.isfifo():
            kind, dev = stat.S_IFIFO, 0
        elif self.rootless:
            raise UnsafeArchiveEntry(self.source, m.name, "is a device node (not in rootless mode)")
        else:
            kind = stat.S_IFCHR if m.ischr() else stat.S_IFBLK
            dev = os.makedev(m.devmajor, m.devminor)
        path = self.path(rel)
        os.mknod(path, kind | 0o600, dev)
        self.set_owner(path, m)
        os.chmod(path, m.mode & 0o7777)
        self.set_xattrs(path, m)
        os.utime(path, ns=(_ns(m.mtime), _ns(m.mtime)), follow_symlinks=False)

    def hardlink(self, m: tarfile.TarInfo, rel: str) -> None:
        link = self.link_target(m)
        if link == rel:
            return  # a link to itself: nothing to do
        if link.startswith(rel + "/"):
            raise UnsafeArchiveEntry(self.source, m.name, "is a hardlink into itself")
        self.clear(rel)
        self.made.append(rel)
        os.link(self.path(link), self.path(rel), follow_symlinks=False)

    def link_target(self, m: tarfile.TarInfo) -> str:
        """The cleaned target of hardlink ``m``, checked to be a non-directory in the target."""
        try:
            link = _clean(m.linkname, self.source, what="is a hardlink whose target ")
        except UnsafeArchiveEntry as e:
            raise UnsafeArchiveEntry(self.source, m.name, e.reason) from None
        if not link:
            raise UnsafeArchiveEntry(self.source, m.name, "is a hardlink to the target itself")
        prefix = ""
        for part in link.split("/"):
            prefix = f"{prefix}/{part}" if prefix else part
            try:
                st = os.lstat(self.path(prefix))
            except (FileNotFoundError, NotADirectoryError):
                why = f"is a hardlink to {link!r}, which is not in the archive or the target"
                raise UnsafeArchiveEntry(self.source, m.name, why) from None
            if stat.S_ISLNK(st.st_mode) and prefix != link:
                why = f"is a hardlink whose target lies under the symlink {prefix!r}"
                raise UnsafeArchiveEntry(self.source, m.name, why)
        if stat.S_ISDIR(st.st_mode):
            raise UnsafeArchiveEntry(self.source, m.name, "is a hardlink to a directory")
        return link

    def whiteout(self, entry: str, rel_dir: str, base: str) -> None:
        if base == OPAQUE_MARKER:
            self.opaque(rel_dir)
            return
        name = base[len(WHITEOUT_PREFIX) :]
        if name in ("", ".", ".."):
            raise UnsafeArchiveEntry(self.source, entry, f"is a whiteout of {name!r}")
        rel = f"{rel_dir}/{name}" if rel_dir else name
        self.clear(rel)
        if not self.delete:
            os.mknod(self.path(rel), stat.S_IFCHR, 0)

    def opaque(self, rel_dir: str) -> None:
        if self.delete:
            self.mark_ours(rel_dir)
            self.empty_older(rel_dir)
        else:
            os.setxattr(self.path(rel_dir), OPAQUE_XATTR, b"y", follow_symlinks=False)

    def empty_older(self, rel_dir: str) -> None:
        """Remove from ``rel_dir`` what was there before this layer; what it wrote stays."""
        for name in os.listdir(self.path(rel_dir)):
            rel = f"{rel_dir}/{name}" if rel_dir else name
            if rel not in self.ours:
                self.clear(rel)
            elif stat.S_ISDIR(os.lstat(self.path(rel)).st_mode):
                self.empty_older(rel)

    # ---- metadata

    def set_owner(self, ref: int | str, m: tarfile.TarInfo) -> None:
        try:
            if isinstance(ref, int):
                os.chown(ref, m.uid, m.gid)
            else:
                os.chown(ref, m.uid, m.gid, follow_symlinks=False)
        except OSError as e:
            if not (self.rootless and e.errno in (errno.EPERM, errno.EINVAL)):
                raise

    def set_xattrs(self, ref: int | str, m: tarfile.TarInfo, *, symlink: bool = False) -> None:
        """Set the archive's xattrs but ``trusted.*``; the kernel refuses ``user.*`` on symlinks
        (EPERM) and some filesystems any (ENOTSUP): those are skipped, as Docker does."""
        lenient = {errno.ENOTSUP} | ({errno.EPERM} if symlink or self.rootless else set())
        for key, value in m.pax_headers.items():
            if not key.startswith(_XATTR_PAX) or key.startswith(_XATTR_PAX + "trusted."):
                continue
            raw = value.encode("utf-8", "surrogateescape")
            try:
                if isinstance(ref, int):
                    os.setxattr(ref, key[len(_XATTR_PAX) :], raw)
                else:
                    os.setxattr(ref, key[len(_XATTR_PAX) :], raw, follow_symlinks=False)
            except OSError as e:
                if e.errno not in lenient:
                    raise

    def finish(self) -> None:
        for rel, mtime in self.dir_mtimes.items():
            with contextlib.suppress(FileNotFoundError, NotADirectoryError):  # removed again
                os.utime(self.path(rel), ns=(_ns(mtime), _ns(mtime)), follow_symlinks=False)


def _ns(mtime: float) -> int:
    return mtime * 1_000_000_000 if isinstance(mtime, int) else round(mtime * 1_000_000_000)


def apply_tar(
    stream: BinaryIO,
    target: str,
    *,
    source: str,
    whiteouts: Literal["overlay", "delete"],
    rootless: bool = False,
) -> ApplyResult:
    """Unpack the uncompressed layer tar ``stream`` into the existing directory ``target``.

    Used for every layer that enters the store (pull, load, build step). The stream is read once,
    forward, to its end (so a digesting wrapper sees every byte). ``whiteouts="overlay"`` keeps
    deletions as overlayfs wants them (0/0 char devices, opaque xattr); ``"delete"`` carries them
    out on a full copy of the parent (vfs). Ownership, modes (setuid, sticky), mtimes, xattrs,
    hardlinks, symlinks, fifos and devices (not when ``rootless``) are kept.

    Raises UnsafeArchiveEntry for an entry that would land or link outside ``target``,
    ArchiveError for a corrupt or truncated stream (one cut exactly between entries reads as a
    shorter archive, as in GNU tar and Go: the layer digest catches that), NoSpace when the disk
    fills. Nothing outside ``target`` is touched; on error the caller removes ``target``.
    An empty stream is an empty layer, as for Docker.
    """
    applier = _Applier(target, source, whiteouts, rootless)
    reader = _ForwardReader(stream)
    try:
        tar = tarfile.TarFile(
            fileobj=reader,  # type: ignore[arg-type]
            mode="r",
            tarinfo=_StrictTarInfo,
            encoding="utf-8",
            errors="surrogateescape",
        )
        return applier.run(tar, reader)
    except (tarfile.TarError, _BadHeader) as e:
        if isinstance(e, tarfile.ReadError) and reader.tell() == 0:
            return ApplyResult(size=0, entries=0)
        raise ArchiveError(source, str(e) or type(e).__name__) from e
    except OSError as e:
        if e.errno in _NO_SPACE:
            raise NoSpace(target) from e
        raise


# --------------------------------------------------------------------------- writing


class _Counted:
    """The ``write``/``tell`` tarfile needs, over any sequential writable."""

    def __init__(self, out: BinaryIO) -> None:
        self._out = out
        self._pos = 0

    def write(self, data: bytes) -> int:
        view = memoryview(data)
        while view:
            n = self._out.write(view)
            view = view[len(view) if n is None else n :]
        self._pos += len(data)
        return len(data)

    def tell(self) -> int:
        return self._pos


class LayerWriter:
    """Writes normalised layer entries to a tar stream; ``write_tar`` and the vfs differ use it.

    Entries come in the caller's order (it sorts). Regular files, symlinks, dirs, devices and
    fifos get PAX headers with numeric owners only, permission bits, a whole-second mtime
    (clamped) and their recorded xattrs; an inode seen a second time becomes a hardlink to its
    first path. Whiteouts carry no metadata (empty, mode 0, owner 0:0, mtime 0), so both
    snapshot drivers write the same bytes for the same change.
    """

    def __init__(self, out: BinaryIO, *, mtime_clamp: int | None = None) -> None:
        self._tar = tarfile.TarFile(
            fileobj=_Counted(out),  # type: ignore[arg-type]
            mode="w",
            format=tarfile.PAX_FORMAT,
            encoding="utf-8",
            errors="surrogateescape",
            copybufsize=_CHUNK,
        )
        self._clamp = mtime_clamp
        self._first_path: dict[tuple[int, int], str] = {}
        self._sizes = SizeCounter()
        self.entries = 0

    def add(
        self, rel: str, path: str, st: os.stat_result, xattrs: dict[str, bytes] | None = None
    ) -> None:
        """Write the file at ``path`` (lstat ``st``) as entry ``rel``; sockets are skipped
        (as Docker does: a tar cannot hold them, and they mean nothing in an image)."""
        if stat.S_ISSOCK(st.st_mode):
            return
        info = self._info(rel, path, st)
        key = (st.st_dev, st.st_ino)
        if st.st_nlink > 1 and not stat.S_ISDIR(st.st_mode):
            if key in self._first_path:
                info.type, info.linkname, info.size = tarfile.LNKTYPE, self._first_path[key], 0
                self._put(info)
                return
            self._first_path[key] = rel
        self._sizes.add(st)
        recorded = kept_xattrs(path) if xattrs is None else xattrs
        info.pax_headers = {
            _XATTR_PAX + name: value.decode("utf-8", "surrogateescape")
            for name, value in recorded.items()
        }
        if stat.S_ISREG(st.st_mode) and st.st_size:
            with open(path, "rb", buffering=0) as f:
                self._put(info, f)
        else:
            self._put(info)

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
            name, st = item
            child_rel, child_path = f"{rel_dir}/{name}" if rel_dir else name, f"{dir_path}/{name}"
            if overlay and is_overlay_whiteout(st):
                self.whiteout(rel_dir, name)
                continue
            self.add(child_rel, child_path, st)
            if stat.S_ISDIR(st.st_mode):
                if overlay and _is_opaque(child_path):
                    self.opaque(child_rel)
                stack.append((child_rel, child_path, iter(_children(child_path, overlay))))

    def whiteout(self, rel_dir: str, name: str) -> None:
        """Write ``.wh.NAME`` in ``rel_dir``: NAME was removed by this layer."""
        self._marker(f"{rel_dir}/{WHITEOUT_PREFIX}{name}" if rel_dir else WHITEOUT_PREFIX + name)

    def opaque(self, rel_dir: str) -> None:
        """Write ``.wh..wh..opq`` in ``rel_dir``: older layers' entries there are hidden."""
        self._marker(f"{rel_dir}/{OPAQUE_MARKER}" if rel_dir else OPAQUE_MARKER)

    def close(self) -> ApplyResult:
        """End the archive (the caller closes ``out``) and report what it adds."""
        self._tar.close()
        return ApplyResult(size=self._sizes.total, entries=self.entries)

    def _marker(self, name: str) -> None:
        info = tarfile.TarInfo(name)
        info.mode, info.mtime, info.uname, info.gname = 0, 0, "", ""
        self._put(info)

    def _put(self, info: tarfile.TarInfo, data: BinaryIO | None = None) -> None:
        self._tar.addfile(info, data)
        self.entries += 1

    def _info(self, rel: str, path: str, st: os.stat_result) -> tarfile.TarInfo:
        info = tarfile.TarInfo(rel)  # tarfile adds the trailing '/' of directories
        info.mode = stat.S_IMODE(st.st_mode)
        info.uid, info.gid, info.uname, info.gname = st.st_uid, st.st_gid, "", ""
        mtime = st.st_mtime_ns // 1_000_000_000
        info.mtime = mtime if self._clamp is None else min(mtime, self._clamp)
        mode = st.st_mode
        if stat.S_ISREG(mode):
            info.size = st.st_size
        elif stat.S_ISDIR(mode):
            info.type = tarfile.DIRTYPE
        elif stat.S_ISLNK(mode):
            info.type, info.linkname = tarfile.SYMTYPE, os.readlink(path)
        elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
            info.type = tarfile.CHRTYPE if stat.S_ISCHR(mode) else tarfile.BLKTYPE
            info.devmajor, info.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
        elif stat.S_ISFIFO(mode):
            info.type = tarfile.FIFOTYPE
        else:
            raise ValueError(f"{rel!r} has a file type a layer cannot hold")
        return info


def _children(path: str, overlay: bool) -> list[tuple[str, os.stat_result]]:
    """Directory ``path``'s entries with their lstat, sorted by the name they get in the tar."""
    items = []
    with os.scandir(path) as it:
        for e in it:
            st = e.stat(follow_symlinks=False)
            tar_name = WHITEOUT_PREFIX + e.name if overlay and is_overlay_whiteout(st) else e.name
            items.append((os.fsencode(tar_name), e.name, st))
    items.sort(key=lambda item: item[0])
    return [(name, st) for _, name, st in items]


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
    overlay = whiteouts == "overlay"
    writer = LayerWriter(out, mtime_clamp=mtime_clamp)
    if overlay and _is_opaque(src):
        writer.opaque("")
    writer.add_tree("", src, overlay=overlay)
    return writer.close()


def diff_size(path: str) -> int:
    """DiffSize of snapshot directory ``path`` (see the module docstring), for ``history``."""
    sizes = SizeCounter()
    stack = [path]
    while stack:
        with os.scandir(stack.pop()) as it:
            for e in it:
                st = e.stat(follow_symlinks=False)
                if stat.S_ISDIR(st.st_mode):
                    stack.append(e.path)
                else:
                    sizes.add(st)
    return sizes.total
