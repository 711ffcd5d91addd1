"""Container logs in Docker's json-file format, and an inotify wait to follow them.

::

    supervisor: pipe (stdout|stderr) --LineSplitter--> {"log":"hi\\n","stream":"stdout",
                                                       "time":"2026-01-01T00:00:00.123456789Z"}
    reader:     <id>-json.log --read_entries(tail)--> (stream, text, time)
                                 follow: inotify IN_MODIFY on the file + "is it over?" callback

One JSON object per line, as ``docker logs`` reads
``/var/lib/docker/containers/<id>/<id>-json.log``.
A line is cut at 16 KiB without a newline, as Docker's log driver does.
"""

from __future__ import annotations

import ctypes
import json
import os
import select
import time
from collections import deque
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from json.encoder import encode_basestring  # type: ignore[attr-defined]

__all__ = ["Inotify", "LineSplitter", "LogWriter", "now_rfc3339", "read_entries"]

_MAX_LINE = 16 * 1024
IN_MODIFY = 0x2
IN_ATTRIB = 0x4
IN_MOVED_TO = 0x80
IN_CREATE = 0x100
IN_DELETE_SELF = 0x400
IN_MOVE_SELF = 0x800
_IN_CLOEXEC = 0o2000000
_IN_NONBLOCK = 0o4000


def now_rfc3339() -> str:
    """UTC now with nanoseconds, as Docker's ``time`` fields: ``…T12:00:00.123456789Z``."""
    ns = time.time_ns()
    base = datetime.fromtimestamp(ns // 1_000_000_000, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{base}.{ns % 1_000_000_000:09d}Z"


class LogWriter:
    """Appends entries to the json log; one ``write`` per batch of entries (O_APPEND keeps
    them whole; a reader keeps a torn last line for later)."""

    def __init__(self, path: str) -> None:
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)

    def write(self, stream: str, text: bytes) -> None:
        self.write_many(stream, [text])

    def write_many(self, stream: str, pieces: list[bytes]) -> None:
        """The pieces read at one time (one read of a pipe or terminal): one time stamp."""
        # what json.dumps({"log", "stream", "time"}, ensure_ascii=False) gives, byte for byte,
        # with the text alone encoded (a dict each: 14 times slower, for many short lines)
        tail = f', "stream": "{stream}", "time": "{now_rfc3339()}"}}\n'
        data = "".join(
            '{"log": ' + encode_basestring(p.decode("utf-8", "replace")) + tail for p in pieces
        ).encode()
        view = memoryview(data)
        while view:
            view = view[os.write(self.fd, view) :]

    def close(self) -> None:
        os.close(self.fd)


class LineSplitter:
    """Buffers one pipe's bytes and hands out whole lines (or 16 KiB pieces)."""

    def __init__(self, stream: str, writer: LogWriter) -> None:
        self.stream = stream
        self.writer = writer
        self.buf = b""

    def feed(self, data: bytes) -> None:
        buf, pos, pieces = self.buf + data, 0, []
        while True:  # by index: a chunk of many short lines is not copied once per line
            cut = buf.find(b"\n", pos, pos + _MAX_LINE)
            if cut >= 0:
                end = cut + 1
            elif len(buf) - pos >= _MAX_LINE:
                end = pos + _MAX_LINE
            else:
                break
            pieces.append(buf[pos:end])
            pos = end
        self.buf = buf[pos:]
        if pieces:
            self.writer.write_many(self.stream, pieces)

    def flush(self) -> None:
        if self.buf:
            self.writer.write(self.stream, self.buf)
            self.buf = b""


class Inotify:
    """A minimal inotify watch (no polling): :meth:`wait` returns on an event or the deadline.

    Closing an inotify instance that has seen events waits for an RCU grace period (2-15 ms
    here), so instances are kept in a per-process pool: :meth:`close` removes the watches and
    hands the instance back; the next follower reuses it.
    """

    _libc = ctypes.CDLL(None, use_errno=True)
    _pool: list[int] = []
    _pool_pid = 0

    def __init__(self, paths: dict[str, int]) -> None:
        self.fd = self._take()
        self.watches: list[int] = []
        for path, mask in paths.items():
            wd = self._libc.inotify_add_watch(self.fd, path.encode(), mask)
            if wd >= 0:
                self.watches.append(wd)

    @classmethod
    def _take(cls) -> int:
        if cls._pool_pid != os.getpid():  # a forked child must not share its parent's queue
            cls._pool, cls._pool_pid = [], os.getpid()
        if cls._pool:
            return cls._pool.pop()
        fd = int(cls._libc.inotify_init1(_IN_CLOEXEC | _IN_NONBLOCK))
        if fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1")
        return fd

    def _drain(self) -> None:
        try:
            while os.read(self.fd, 65536):
                pass
        except BlockingIOError:
            pass

    def wait(self, timeout: float | None, extra: tuple[int, ...] = ()) -> list[int]:
        """Block until an event (drained) or one of ``extra`` fds is readable; those fds."""
        ready, _, _ = select.select([self.fd, *extra], [], [], timeout)
        if self.fd in ready:
            self._drain()
        return [fd for fd in ready if fd != self.fd]

    def close(self) -> None:
        if self.fd < 0:
            return
        for wd in self.watches:
            self._libc.inotify_rm_watch(self.fd, wd)
        self._drain()  # queued events and the IN_IGNORED of each removed watch
        if self._pool_pid == os.getpid():
            self._pool.append(self.fd)
        else:
            os.close(self.fd)
        self.fd = -1


Entry = tuple[str, str, str]  # (stream, text, time)


def _parse(line: bytes) -> Entry | None:
    try:
        obj = json.loads(line)
    except ValueError:  # a torn last line of a crashed writer
        return None
    return obj.get("stream", "stdout"), obj.get("log", ""), obj.get("time", "")


def read_entries(
    fd: int, *, tail: int | None = None, follow: bool = False,
    done: Callable[[], bool] = lambda: True, watch: str | None = None, wake: tuple[int, ...] = (),
) -> Iterator[Entry]:  # fmt: skip
    """Entries of the log open as ``fd``; with ``follow``, wait for more until ``done()``.

    ``watch`` is the log's path (inotify wakes us when it grows); ``wake`` are fds that become
    readable when the writer ends (its pidfd, a pipe), so ``done()`` is asked again at once.
    Without ``wake`` fds, ``done()`` is also asked once a second.
    """
    with os.fdopen(os.dup(fd), "rb") as f:
        lines = f.readlines()
        if tail is not None:
            lines = list(deque(lines, maxlen=tail)) if tail > 0 else []
        yield from filter(None, map(_parse, lines))
        if not follow:
            return
        inotify = Inotify({watch: IN_MODIFY}) if watch else None
        try:
            partial = b""
            while True:
                finished = done()  # read after checking: the writer is done before "done"
                chunk = f.read()
                partial += chunk or b""
                *whole, partial = partial.split(b"\n")
                for line in whole:
                    entry = _parse(line)
                    if entry:
                        yield entry
                if finished:
                    return
                if not chunk and inotify is not None:
                    inotify.wait(None if wake else 1.0, wake)
        finally:
            if inotify is not None:
                inotify.close()
