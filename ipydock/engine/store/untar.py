"""Layer tar -> snapshot directory: ``apply_tar``, the safe extractor every layer goes through.

::

    tar stream --forward reader--> strict headers --clean names--> parents must be real dirs
       --> files / links / devices / xattrs / owners --> whiteouts (overlay 0/0 or delete)
       --> directory mtimes last

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
from typing import BinaryIO, Literal

from ipydock.engine.store.layerfmt import (
    CHUNK,
    NO_SPACE,
    OPAQUE_MARKER,
    USER_OVERLAY_PREFIX,
    WHITEOUT_META_PREFIX,
    WHITEOUT_PREFIX,
    XATTR_PAX,
    ApplyResult,
    SizeCounter,
    opaque_xattr,
)
from ipydock.engine.store.tarread import BadHeader, TarMembers
from ipydock.errors import ArchiveError, NoSpace, UnsafeArchiveEntry

__all__ = ["apply_tar"]

#: overlayfs's metadata, root's and rootless: never taken from an archive.
_NOT_FROM_ARCHIVES = (XATTR_PAX + "trusted.", XATTR_PAX + USER_OVERLAY_PREFIX)
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


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
        self,
        target: str,
        source: str,
        whiteouts: Literal["overlay", "delete", "files"],
        rootless: bool,
    ) -> None:
        if whiteouts not in ("overlay", "delete", "files"):
            raise ValueError(f"whiteouts must be 'overlay', 'delete' or 'files', not {whiteouts!r}")
        self.target = os.path.abspath(target)
        self.source = source
        self.delete = whiteouts == "delete"
        self.files = whiteouts == "files"
        self.rootless = rootless
        self.entries = 0
        self.ours: set[str] = {""}  # delete mode: paths this layer wrote, and their parents
        self.made: list[str] = []  # non-directories this layer wrote, for the size
        self.real_dirs: set[str] = {""}  # verified: real directories, no symlink on the way
        self.dir_mtimes: dict[str, float] = {}
        self.skipped_devices: list[str] = []  # rootless: device nodes not made
        # An empty target (a new overlay snapshot) holds only what this run wrote: clear()
        # need not lstat a path that is not among those (one syscall less per entry).
        self.fresh = not self.delete and not os.listdir(self.target)
        self.written: set[str] = {""}
        self.umask = _umask()

    def path(self, rel: str) -> str:
        return f"{self.target}/{rel}" if rel else self.target

    # ---- the loop

    def run(self, tar: TarMembers) -> ApplyResult:
        while (member := tar.next()) is not None:
            self.entry(member, tar)
        tar.fileobj.drain()
        self.finish()
        if self.skipped_devices:
            _warn_skipped(self.source, self.skipped_devices)
        sizes = SizeCounter()
        for rel in self.made:
            with contextlib.suppress(FileNotFoundError, NotADirectoryError):  # removed again
                sizes.add(os.lstat(self.path(rel)))
        return ApplyResult(size=sizes.total, entries=self.entries)

    def entry(self, m: tarfile.TarInfo, tar: TarMembers) -> None:
        rel = _clean(m.name, self.source)
        if not -(1 << 62) < m.mtime * 1_000_000_000 < 1 << 62:  # a PAX mtime of 1e99, inf, nan
            raise ArchiveError(self.source, f"entry {m.name!r} has an invalid mtime {m.mtime}")
        if m.size < 0:  # a PAX size of -1
            raise ArchiveError(self.source, f"entry {m.name!r} has an invalid size {m.size}")
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
            self.create(m, rel, tar)
        self.written.add(rel)

    def create(self, m: tarfile.TarInfo, rel: str, tar: TarMembers) -> None:
        if m.isreg():
            self.regular(m, rel, tar)
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
                self.written.add(rel)
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
        if self.fresh and rel not in self.written:
            return False  # nothing there: see __init__
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

    def regular(self, m: tarfile.TarInfo, rel: str, tar: TarMembers) -> None:
        perms = m.mode & 0o7777
        fd = os.open(self.path(rel), _CREATE, perms & 0o777)  # the usual file needs no chmod
        try:
            if m.sparse is not None:
                src = tar.extractfile(m)
                assert src is not None
                with open(fd, "wb", closefd=False) as dst:
                    shutil.copyfileobj(src, dst, CHUNK)
            elif m.size:
                self.copy_data(m, tar, fd)
            self.set_owner(fd, m)
            if perms & (0o7000 | self.umask):  # bits the umask took; setuid/setgid after
                os.chmod(fd, perms)  # chown, which clears them; sticky
            self.set_xattrs(fd, m)  # after chown, which clears security.capability
            os.utime(fd, ns=(_ns(m.mtime), _ns(m.mtime)))
        finally:
            os.close(fd)

    def copy_data(self, m: tarfile.TarInfo, tar: TarMembers, fd: int) -> None:
        tar.fileobj.seek(m.offset_data)
        if tar.fileobj.copy_to(fd, m.size) != m.size:
            raise ArchiveError(self.source, f"unexpected end of data in {m.name!r}")

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
        elif self.rootless:  # no mknod in a user namespace: skipped, as moby does there
            self.skipped_devices.append(rel)
            self.made.pop()  # ``entry`` counted it last
            return
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
        if self.skipped_devices and _linked(m.linkname) in self.skipped_devices:
            self.skipped_devices.append(rel)  # a link to a device node left out
            return
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
        if self.files:  # fuse-overlayfs reads .wh. files; no mknod needed, whatever the fs
            self._marker_file(f"{rel_dir}/{base}" if rel_dir else base)
        elif not self.delete:
            os.mknod(self.path(rel), stat.S_IFCHR, 0)
            self.written.add(rel)

    def _marker_file(self, rel: str) -> None:
        os.close(os.open(self.path(rel), os.O_CREAT | os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC,
                         0o000))  # fmt: skip

    def opaque(self, rel_dir: str) -> None:
        if self.files:
            self._marker_file(f"{rel_dir}/{OPAQUE_MARKER}" if rel_dir else OPAQUE_MARKER)
        elif self.delete:
            self.mark_ours(rel_dir)
            self.empty_older(rel_dir)
        else:
            os.setxattr(self.path(rel_dir), opaque_xattr(), b"y", follow_symlinks=False)

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
        if not (0 <= m.uid < 1 << 32 and 0 <= m.gid < 1 << 32):  # a PAX uid/gid out of range
            raise ArchiveError(self.source, f"entry {m.name!r} has an invalid owner "
                               f"{m.uid}:{m.gid}")  # fmt: skip
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
            if not key.startswith(XATTR_PAX) or key.startswith(_NOT_FROM_ARCHIVES):
                continue
            raw = value.encode("utf-8", "surrogateescape")
            try:
                if isinstance(ref, int):
                    os.setxattr(ref, key[len(XATTR_PAX) :], raw)
                else:
                    os.setxattr(ref, key[len(XATTR_PAX) :], raw, follow_symlinks=False)
            except OSError as e:
                if e.errno in NO_SPACE:
                    raise
                if e.errno not in lenient:  # a value the kernel refuses (a bad capability, a
                    # user.* xattr on a fifo or device): the archive's fault, as in docker
                    why = f"entry {m.name!r}: cannot set xattr {key[len(XATTR_PAX) :]!r}"
                    raise ArchiveError(self.source, f"{why}: {e.strerror}") from e

    def finish(self) -> None:
        for rel, mtime in self.dir_mtimes.items():
            with contextlib.suppress(FileNotFoundError, NotADirectoryError):  # removed again
                os.utime(self.path(rel), ns=(_ns(mtime), _ns(mtime)), follow_symlinks=False)


def _linked(linkname: str) -> str:
    """A hardlink's target as ``_clean`` spells names (``""`` if it is not clean)."""
    try:
        return _clean(linkname, "")
    except UnsafeArchiveEntry:
        return ""


def _warn_skipped(source: str, paths: list[str]) -> None:
    """One warning per archive naming the device nodes a rootless extraction left out."""
    import warnings

    from ipydock.errors import IPyDockWarning

    shown = ", ".join("/" + p for p in paths[:8]) + (f" and {len(paths) - 8} more"
                                                   if len(paths) > 8 else "")  # fmt: skip
    text = (
        f"rootless mode: {len(paths)} device node(s) of {source} not extracted ({shown}); "
        "a container gets its /dev from the engine"
    )
    warnings.warn(IPyDockWarning(text), stacklevel=4)


def _umask() -> int:
    """This process's umask, read without changing it (``os.umask`` sets one: another
    thread could create a file meanwhile); 0o7777 (always chmod) where /proc does not say."""
    try:
        with open("/proc/self/status", "rb") as f:
            for line in f:
                if line.startswith(b"Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    return 0o7777


def _ns(mtime: float) -> int:
    return mtime * 1_000_000_000 if isinstance(mtime, int) else round(mtime * 1_000_000_000)


def apply_tar(
    stream: BinaryIO,
    target: str,
    *,
    source: str,
    whiteouts: Literal["overlay", "delete", "files"],
    rootless: bool | None = None,
) -> ApplyResult:
    """Unpack the uncompressed layer tar ``stream`` into the existing directory ``target``.

    Used for every layer that enters the store (pull, load, build step). The stream is read once,
    forward, to its end (so a digesting wrapper sees every byte). ``whiteouts="overlay"`` keeps
    deletions as overlayfs wants them (0/0 char devices, opaque xattr); ``"delete"`` carries them
    out on a full copy of the parent (vfs); ``"files"`` keeps them as the tar has them, empty
    ``.wh.`` files (the fuse-overlayfs driver: no mknod, whatever the filesystem). Ownership,
    modes (setuid, sticky), mtimes, xattrs, hardlinks, symlinks, fifos and devices are kept.
    ``rootless`` (default: not running as root) keeps what an unprivileged user can: owners it
    may not set stay its own, device nodes are left out with one
    :class:`~ipydock.errors.IPyDockWarning` naming them (moby skips them in a user namespace
    too; a container's ``/dev`` is made by the engine).

    Raises UnsafeArchiveEntry for an entry that would land or link outside ``target``,
    ArchiveError for a corrupt or truncated stream (one cut exactly between entries reads as a
    shorter archive, as in GNU tar and Go: the layer digest catches that), NoSpace when the disk
    fills. Nothing outside ``target`` is touched; on error the caller removes ``target``.
    An empty stream is an empty layer, as for Docker.
    """
    if rootless is None:
        rootless = os.geteuid() != 0
        from ipydock.engine.store import userns

        if rootless and not target.startswith("/proc/") and userns.delegates():
            return userns.apply_tar(stream, target, source=source, whiteouts=whiteouts)
    applier = _Applier(target, source, whiteouts, rootless)
    tar = TarMembers(stream)
    try:
        return applier.run(tar)
    except (tarfile.TarError, BadHeader) as e:
        if isinstance(e, tarfile.ReadError) and tar.fileobj.tell() == 0:
            return ApplyResult(size=0, entries=0)
        raise ArchiveError(source, str(e) or type(e).__name__) from e
    except OSError as e:
        if e.errno in NO_SPACE:
            raise NoSpace(target) from e
        if e.errno == errno.ENAMETOOLONG:  # a name this filesystem cannot hold
            name = os.path.relpath(str(e.filename), target) if e.filename else "?"
            raise ArchiveError(source, f"entry {name[:60]!r}… has a name too long for "
                               "this filesystem") from e  # fmt: skip
        raise
