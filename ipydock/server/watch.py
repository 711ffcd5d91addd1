"""Tell the open event streams that something changed, as soon as it has.

For the bundled engine, inotify watches the few places every change goes through (writers
replace files by atomic rename, so a rename or a create/delete is the event):

    ROOT/                   index.json (images and tags), networks.json (user-defined
                            networks), containers/, volumes/ appear
    ROOT/containers/        a container made (renamed in from tmp/) or removed (renamed out)
    ROOT/containers/<id>/   state.json replaced (started, stopped, exited)
    ROOT/volumes/           a volume made or removed

For the docker engine a thread follows the engine's ``/events`` stream. Either way, bursts are
coalesced: one "changed" at most every ``DEBOUNCE`` seconds, the first ``DEBOUNCE`` after the
first event. Nothing is polled.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import errno
import os
import struct
import threading
from collections.abc import Callable
from typing import Any

__all__ = ["DEBOUNCE", "DockerWatch", "StoreWatch"]

DEBOUNCE = 0.1  # seconds

IN_MODIFY = 0x2
IN_CLOSE_WRITE = 0x8
IN_MOVED_FROM = 0x40
IN_MOVED_TO = 0x80
IN_CREATE = 0x100
IN_DELETE = 0x200
IN_DELETE_SELF = 0x400
IN_ISDIR = 0x40000000
IN_IGNORED = 0x8000
IN_NONBLOCK = os.O_NONBLOCK
IN_CLOEXEC = os.O_CLOEXEC
MASK = IN_CLOSE_WRITE | IN_MOVED_FROM | IN_MOVED_TO | IN_CREATE | IN_DELETE | IN_DELETE_SELF
HEADER = struct.Struct("iIII")  # wd, mask, cookie, len (struct inotify_event)
ROOT_NAMES = {
    "index.json",
    "containers",
    "volumes",
    "networks",
    "networks.json",
}  # networks.json: bridges

_libc: Any = None


def _inotify() -> Any:
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    return _libc


class StoreWatch:
    """inotify on a bundled store; ``on_change()`` runs in the event loop after a change."""

    def __init__(self, root: str, on_change: Callable[[], None]) -> None:
        self.root = root
        self.on_change = on_change
        self.fd = _inotify().inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
        if self.fd < 0:
            e = ctypes.get_errno()
            raise OSError(e, f"inotify_init1: {os.strerror(e)}")
        self.dirs: dict[int, str] = {}  # watch descriptor -> directory
        self.loop = asyncio.get_running_loop()
        self._pending: asyncio.TimerHandle | None = None
        self._add(root)
        for sub in ("containers", "volumes", "networks"):
            self._add_tree(os.path.join(root, sub))
        self.loop.add_reader(self.fd, self._read)

    def _add(self, path: str) -> None:
        wd = _inotify().inotify_add_watch(self.fd, os.fsencode(path), MASK)
        if wd >= 0:
            self.dirs[wd] = path
        elif ctypes.get_errno() not in (errno.ENOENT, errno.ENOTDIR):  # gone already: fine
            e = ctypes.get_errno()
            raise OSError(e, f"inotify_add_watch {path}: {os.strerror(e)}")

    def _add_tree(self, path: str) -> None:
        """``path`` and, for containers/, each container's directory (where state.json is)."""
        if not os.path.isdir(path):
            return
        self._add(path)
        if os.path.basename(path) == "containers":
            for name in os.listdir(path):
                self._add(os.path.join(path, name))

    def _read(self) -> None:
        try:
            data = os.read(self.fd, 65536)
        except BlockingIOError:
            return
        changed = False
        for wd, mask, name in _events(data):
            where = self.dirs.get(wd)
            if mask & IN_IGNORED:
                self.dirs.pop(wd, None)
            if where is None or name.startswith(".") or name.endswith(".tmp"):
                continue  # a temp file being written: its rename into place is the event
            if where == self.root:
                if name not in ROOT_NAMES:
                    continue
                if mask & IN_ISDIR and mask & (IN_CREATE | IN_MOVED_TO):
                    self._add_tree(os.path.join(where, name))
            elif os.path.basename(where) == "containers" and mask & IN_ISDIR:
                if mask & (IN_CREATE | IN_MOVED_TO):
                    self._add(os.path.join(where, name))
            elif os.path.basename(os.path.dirname(where)) == "containers" and (
                name != "state.json" or not mask & (IN_MOVED_TO | IN_CLOSE_WRITE)
            ):
                continue  # inside a container's dir only a new state.json matters
            changed = True
        if changed and self._pending is None:
            self._pending = self.loop.call_later(DEBOUNCE, self._fire)

    def _fire(self) -> None:
        self._pending = None
        self.on_change()

    def close(self) -> None:
        if self._pending is not None:
            self._pending.cancel()
        self.loop.remove_reader(self.fd)
        os.close(self.fd)


def _events(data: bytes) -> list[tuple[int, int, str]]:
    out, pos = [], 0
    while pos + HEADER.size <= len(data):
        wd, mask, _cookie, length = HEADER.unpack_from(data, pos)
        pos += HEADER.size
        name = data[pos : pos + length].rstrip(b"\0").decode(errors="replace")
        pos += length
        out.append((wd, mask, name))
    return out


class DockerWatch:
    """A thread that follows the Docker engine's ``/events`` (``api``: a docker APIClient)."""

    def __init__(self, api: Any, on_change: Callable[[], None]) -> None:
        self.loop = asyncio.get_running_loop()
        self.on_change = on_change
        self._pending: asyncio.TimerHandle | None = None
        self._stream = api.events(decode=True)
        self._thread = threading.Thread(target=self._follow, name="ipydock-events", daemon=True)
        self._thread.start()

    def _follow(self) -> None:
        with contextlib.suppress(Exception):  # the stream ends when closed or the engine goes
            for _event in self._stream:
                self.loop.call_soon_threadsafe(self._schedule)

    def _schedule(self) -> None:
        if self._pending is None:
            self._pending = self.loop.call_later(DEBOUNCE, self._fire)

    def _fire(self) -> None:
        self._pending = None
        self.on_change()

    def close(self) -> None:
        if self._pending is not None:
            self._pending.cancel()
        with contextlib.suppress(Exception):
            self._stream.close()
