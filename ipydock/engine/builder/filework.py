"""The per-file work of COPY/ADD: content digests and file copies, spread over a few threads.

When: a COPY hashes its sources (the cache key, :func:`digests`) and, on a cache miss, writes
them into the step's layer (:func:`copy_all`). A COPY of a large tree is per-file work: reading
a small cached file is cheap, creating one costs the kernel a lot more (~0.3 ms on this
project's CI disk), and both run in parallel in the kernel while Python holds no lock. A copy
reads, digests and writes each file in one pass, and checks what it read against the digest
the cache key was made from: the layer holds exactly the bytes that were hashed, and a source
that changed in between fails the copy (:class:`SourceChanged`) instead of being stored under
the wrong key. Sources are opened with ``O_NOFOLLOW``: an entry that was a file when it was
listed and is a symlink now is not followed out of the context.

::

    [(source, target, stat, mode, expected digest), ...]
        --> contiguous runs, one per thread: open source (O_NOFOLLOW), read + sha256 + write
            target (O_EXCL), owner, mode, times --> digest == expected? else SourceChanged
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

__all__ = ["CopyJob", "Digest", "SourceChanged", "copy_all", "digest", "digests"]

#: A file's content as a COPY hashes it: (bytes read, sha256 hex); a symlink's: (-1, target).
Digest = tuple[int, str]

_CHUNK = 1 << 20
_READ = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
#: Below this many files one thread does it all (starting threads costs more than it gives).
_PARALLEL_FROM = 64

T = TypeVar("T")
R = TypeVar("R")


class SourceChanged(Exception):
    """A COPY source is no longer what was hashed (changed, replaced or removed)."""

    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.path = path


@dataclass(frozen=True)
class CopyJob:
    """One non-directory entry to create: from ``src`` (metadata ``st`` as the view shows it)
    to the new path ``target`` with permission bits ``mode``; ``expected``: its digest when
    it was hashed (None: not checked)."""

    src: str
    target: str
    st: os.stat_result
    mode: int
    expected: Digest | None = None


def digest(path: str, st: os.stat_result) -> Digest:
    """The digest of the regular file or symlink at ``path`` (``st``: its lstat)."""
    if stat.S_ISLNK(st.st_mode):
        return -1, os.readlink(path)
    fd = _open_source(path)
    try:
        h = hashlib.sha256()
        size = 0
        while data := os.read(fd, _CHUNK):
            h.update(data)
            size += len(data)
    finally:
        os.close(fd)
    return size, h.hexdigest()


def digests(entries: Sequence[tuple[str, os.stat_result]]) -> dict[str, Digest]:
    """``{path: digest}`` of the regular files and symlinks among ``(path, lstat)``."""
    wanted = [(p, st) for p, st in entries if stat.S_ISREG(st.st_mode) or stat.S_ISLNK(st.st_mode)]
    found = _parallel(lambda item: digest(*item), wanted)
    return {path: d for (path, _), d in zip(wanted, found, strict=True)}


def copy_all(jobs: Sequence[CopyJob], owner: tuple[int, int] | None) -> None:
    """Create every job's target (parents exist; an existing non-directory is replaced).
    ``owner``: host ids to give each target (None: the caller gives them)."""
    _parallel(lambda job: _copy(job, owner), jobs)


def _copy(job: CopyJob, owner: tuple[int, int] | None) -> None:
    st = job.st
    times = (st.st_atime_ns, st.st_mtime_ns)
    got: Digest | None
    if stat.S_ISREG(st.st_mode):
        fd_in = _open_source(job.src)
        try:
            fd_out = _create(job.target)
            try:
                got = _pump(fd_in, fd_out)
                if owner is not None:
                    os.fchown(fd_out, *owner)
                os.fchmod(fd_out, job.mode)
                os.utime(fd_out, ns=times)
            finally:
                os.close(fd_out)
        finally:
            os.close(fd_in)
    else:
        _replace(job.target)
        if stat.S_ISLNK(st.st_mode):
            try:
                got = -1, os.readlink(job.src)
            except OSError:
                raise SourceChanged(job.src) from None
            os.symlink(got[1], job.target)
        else:  # a device or fifo (sockets never get here)
            got = None
            os.mknod(job.target, st.st_mode, st.st_rdev)
        if owner is not None:
            os.lchown(job.target, *owner)
        os.utime(job.target, ns=times, follow_symlinks=False)
    if job.expected is not None and got is not None and got != job.expected:
        raise SourceChanged(job.src)


def _open_source(path: str) -> int:
    """A regular file opened for reading, not through a symlink in its last component."""
    try:
        fd = os.open(path, _READ)
    except FileNotFoundError:
        raise SourceChanged(path) from None
    except OSError as exc:
        if exc.errno == 40:  # ELOOP: a symlink now (it was a file when listed)
            raise SourceChanged(path) from None
        raise
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise SourceChanged(path)
    return fd


def _create(target: str) -> int:
    try:
        return os.open(target, _CREATE, 0o600)
    except FileExistsError:
        _replace(target)
        return os.open(target, _CREATE, 0o600)


def _replace(target: str) -> None:
    """Make room for a new non-directory at ``target`` (an earlier source wrote one there)."""
    try:
        st = os.lstat(target)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        raise IsADirectoryError(21, "cannot overwrite a directory with a file", target)
    os.unlink(target)


def _pump(fd_in: int, fd_out: int) -> Digest:
    h = hashlib.sha256()
    size = 0
    while data := os.read(fd_in, _CHUNK):
        h.update(data)
        size += len(data)
        view = memoryview(data)
        while view:
            view = view[os.write(fd_out, view) :]
    return size, h.hexdigest()


def _parallel(fn: Callable[[T], R], items: Sequence[T]) -> list[R]:
    """``[fn(item) for item in items]``, in contiguous runs on a few threads (neighbours in
    a sorted walk share a directory; runs keep each thread mostly in its own); the first
    error is raised once every run has stopped."""
    threads = min(4, os.cpu_count() or 1)
    if threads < 2 or len(items) < _PARALLEL_FROM:
        return [fn(item) for item in items]
    runs = threads * 4
    size = -(-len(items) // runs)
    chunks = [items[i : i + size] for i in range(0, len(items), size)]
    failed: list[bool] = []

    def run(chunk: Sequence[T]) -> list[R]:
        out = []
        for item in chunk:
            if failed:  # another run failed: stop early, its error is the one raised
                break
            try:
                out.append(fn(item))
            except BaseException:
                failed.append(True)
                raise
        return out

    with ThreadPoolExecutor(threads, thread_name_prefix="ipydock-copy") as pool:
        futures = [pool.submit(run, chunk) for chunk in chunks]
        out: list[R] = []
        error: BaseException | None = None
        for future in futures:
            try:
                out += future.result()
            except BaseException as exc:  # noqa: BLE001 - re-raised below, after the others
                error = error or exc
        if error is not None:
            raise error
    return out
