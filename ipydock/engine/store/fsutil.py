"""Crash-safe file writes and the one place where ``OSError`` from the disk becomes our error.

Every file the store keeps is written as: a temp file under ``ROOT/tmp`` (held with ``flock`` so
that ``system check --repair`` knows it is in use), data, ``fsync``, ``rename`` into place,
``fsync`` of the directory. A reader therefore sees the old or the new file, never half of one.
"""

from __future__ import annotations

import array
import contextlib
import errno
import fcntl
import json
import os
from collections.abc import Iterator
from typing import IO, Any

from ipydock.errors import NoSpace, StoreError

__all__ = [
    "TempFile",
    "atomic_write_bytes",
    "atomic_write_json",
    "disk_errors",
    "fsync_dir",
    "owner_alive_in",
    "owner_tag",
    "remove_tree",
    "spread_subdirs",
    "temp_dir",
]


@contextlib.contextmanager
def disk_errors(path: str) -> Iterator[None]:
    """Translate disk-level ``OSError`` (full disk, read-only fs, permissions) once."""
    try:
        yield
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise NoSpace(path) from exc
        if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            raise StoreError(
                f"cannot write {path}: {exc.strerror} (run as root or set IPYDOCK_ROOT "
                "to a directory you own)"
            ) from exc
        raise


def fsync_dir(path: str) -> None:
    """fsync a directory; ``""`` (the dirname of a bare file name) is the working directory."""
    fd = os.open(path or ".", os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class TempFile:
    """A locked temp file under ``tmp_dir`` that becomes ``dest`` on :meth:`commit`.

    Use as a context manager; if the block fails, the temp file is removed.
    """

    def __init__(self, tmp_dir: str, prefix: str = "blob-") -> None:
        fd, self.path = _mkstemp(tmp_dir, prefix)
        fcntl.flock(fd, fcntl.LOCK_EX)
        self.file: IO[bytes] = os.fdopen(fd, "wb")
        self._done = False

    def commit(self, dest: str, *, synced: bool = False) -> None:
        """fsync (unless the writer did: ``synced``) and rename the data into place (atomic on
        one filesystem)."""
        if not synced:
            self.file.flush()
            os.fsync(self.file.fileno())
        os.rename(self.path, dest)
        fsync_dir(os.path.dirname(dest))
        self._done = True
        self.file.close()

    def __enter__(self) -> TempFile:
        return self

    def __exit__(self, *exc: object) -> None:
        if not self._done:
            with contextlib.suppress(OSError):  # flushing what is thrown away (a full disk)
                self.file.close()
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)


def atomic_write_bytes(dest: str, data: bytes, tmp_dir: str) -> None:
    with disk_errors(dest), TempFile(tmp_dir, prefix="meta-") as tmp:
        tmp.file.write(data)
        tmp.commit(dest)


def atomic_write_json(dest: str, obj: Any, tmp_dir: str) -> None:
    atomic_write_bytes(dest, json.dumps(obj, separators=(",", ":")).encode(), tmp_dir)


@contextlib.contextmanager
def temp_dir(tmp_dir: str, prefix: str) -> Iterator[str]:
    """A locked temp directory; removed on exit unless it was renamed away. ``tmp_dir`` is
    marked as a parent of directory trees first (see :func:`spread_subdirs`): a temp dir is
    where a snapshot is made."""
    spread_subdirs(tmp_dir)
    path = _mkdtemp(tmp_dir, prefix)
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        yield path
    finally:
        os.close(fd)
        if os.path.lexists(path):
            remove_tree(path)


_FS_IOC_GETFLAGS = 0x80086601
_FS_IOC_SETFLAGS = 0x40086602
_FS_TOPDIR_FL = 0x00020000


def spread_subdirs(path: str) -> None:
    """Mark the directory ``path`` as the top of directory hierarchies (ext2/3/4's
    ``FS_TOPDIR_FL``, ``chattr +T``, as for /home): the allocator then puts each directory made
    in it in a block group of its own choosing (few directories, many free inodes) rather
    than beside its parent's, and the files of that tree follow it.

    A snapshot is such a tree. Made beside its parent's, it lands where the store's last
    deleted snapshots were; on ext4 without a journal, every new inode there first skips
    each inode freed within the last 5 minutes (``recently_deleted()``, up to 300 s while
    the inode table is not yet written back): a pull of 15k files right after removing a
    copy of them spent 10 s of kernel time in that scan, 1.2 s with the flag. Elsewhere
    (tmpfs, overlayfs, btrfs, xfs: no such flag) nothing is done."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return
    try:
        flags = array.array("i", [0])
        fcntl.ioctl(fd, _FS_IOC_GETFLAGS, flags, True)
        if not flags[0] & _FS_TOPDIR_FL:
            flags[0] |= _FS_TOPDIR_FL
            fcntl.ioctl(fd, _FS_IOC_SETFLAGS, flags, True)
    except OSError:
        pass  # a filesystem without inode flags, or one that refuses this one
    finally:
        os.close(fd)


def _unique(directory: str, prefix: str) -> str:
    return os.path.join(directory, owned_name(prefix))


def owned_name(prefix: str) -> str:
    """A temp name that says which process made it (``PREFIX<pid>_<start>-<random>``): the
    collector removes it once that process is gone, and never while it lives."""
    return f"{prefix}{owner_tag()}-{os.urandom(6).hex()}"


_SELF: tuple[int, str] = (0, "")


def process_start(pid: int) -> int | None:
    """The start time of process ``pid`` (clock ticks after boot), None if it is gone (or a
    zombie): with the pid, a name for a process that a reused pid cannot take."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    fields = data.rsplit(b")", 1)[-1].split()
    if len(fields) < 20 or fields[0] in (b"Z", b"X"):
        return None
    return int(fields[19])


def owner_tag() -> str:
    """``<pid>_<start time>`` of this process (computed again after a fork)."""
    global _SELF
    pid = os.getpid()
    if _SELF[0] != pid:
        _SELF = (pid, f"{pid}_{process_start(pid)}")
    return _SELF[1]


def owner_alive_in(name: str) -> bool | None:
    """Whether the process named in ``name`` (see :func:`owned_name`) still runs; None when the
    name carries no owner."""
    for part in reversed(name.split("-")):
        pid, sep, start = part.partition("_")
        if sep and pid.isdigit() and start.isdigit():
            return process_start(int(pid)) == int(start)
    return None


def _mkstemp(directory: str, prefix: str) -> tuple[int, str]:
    """``tempfile.mkstemp`` without importing tempfile (and shutil, bz2, lzma behind it):
    the CLI's start-up time is on every command."""
    while True:
        path = _unique(directory, prefix)
        try:
            return os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600), path
        except FileExistsError:
            continue


def _mkdtemp(directory: str, prefix: str) -> str:
    while True:
        path = _unique(directory, prefix)
        try:
            os.mkdir(path, 0o700)
            return path
        except FileExistsError:
            continue


def remove_tree(path: str) -> None:
    """Remove a file or directory tree, even one with read-only directories inside."""
    import shutil

    if os.path.isdir(path) and not os.path.islink(path):

        def onerror(func: Any, p: str, exc: Any) -> None:
            """Make the failing entry and its parent ours to change (a read-only directory in
            a layer; overlayfs's ``work/work``, mode 000), then try again."""
            if isinstance(exc[1], FileNotFoundError):
                return
            with contextlib.suppress(OSError):
                os.chmod(os.path.dirname(p), 0o700)
            if func in (os.open, os.scandir, os.listdir):  # a directory we could not read
                try:
                    os.chmod(p, 0o700)
                except PermissionError:  # another owner's (rootless id ranges): not here
                    raise exc[1] from None
                except OSError:
                    pass
                shutil.rmtree(p, onerror=onerror)
            else:
                with contextlib.suppress(FileNotFoundError):
                    func(p)

        try:
            shutil.rmtree(path, onerror=onerror)
        except PermissionError:
            from ipydock.engine.store import userns

            if not userns.delegates():
                raise
            userns.remove_tree(path)  # rootless with id ranges: a directory of the range's
    else:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
